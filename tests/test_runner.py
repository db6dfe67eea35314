"""Live runner: stale frames dropped and counted, lossless files, hotkeys, shutdown joins every thread."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from reenact.live.capture import Frame, ListSource, VideoFileConfig, VideoFileSource
from reenact.live.runner import LatestSlot, LiveRunner, RunnerConfig
from reenact.live.sinks import FileSink, NullSink, OutputInfo
from reenact.live.timing import FpsMeter, StageTimer


class FakeClock:
    """Thread-safe manual clock."""

    def __init__(self, t: float = 1000.0) -> None:
        self.t = t
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.t

    def advance(self, s: float) -> None:
        with self._lock:
            self.t += s


def img(i: int, size: tuple[int, int] = (32, 24)) -> np.ndarray:
    return np.full((size[1], size[0], 3), i % 256, np.uint8)


def runner_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("reenact-")]


class GatedSource:
    """A realtime source: frame 0 at once; frames 1..n-1 only after processing started, then it ends."""

    name = "gated"
    realtime = True
    fps = 30.0

    def __init__(self, n: int, clock: FakeClock, started: threading.Event) -> None:
        self.n, self.clock, self.started = n, clock, started
        self.i = 0
        self.ended = False
        self.all_read = threading.Event()
        self.closed = False

    def read(self) -> Frame | None:
        if self.i >= self.n:
            self.ended = True
            self.all_read.set()
            return None
        if self.i == 1:
            assert self.started.wait(5)
        f = Frame(img(self.i), self.i, self.clock(), new_segment=self.i == 0)
        self.i += 1
        return f

    def close(self) -> None:
        self.closed = True


class RecordingSink(NullSink):
    any_thread = False  # sent to from the output loop, as a window or a file is

    def __init__(self, keys: list[str] | None = None) -> None:
        super().__init__()
        self.keys = list(keys or [])
        self.values: list[int] = []
        self.infos: list[OutputInfo] = []
        self.opened = self.closed = False
        self.sent_one = threading.Event()

    def open(self) -> None:
        self.opened = True

    def send(self, image, info=None) -> None:
        super().send(image, info)
        self.values.append(int(image[0, 0, 0]))
        self.infos.append(info)
        self.sent_one.set()

    def poll_key(self):
        return self.keys.pop(0) if self.keys else None

    def close(self) -> None:
        self.closed = True


def test_slow_processing_drops_stale_frames_and_counts_them() -> None:
    clock = FakeClock()
    started = threading.Event()
    source = GatedSource(10, clock, started)
    seen: list[int] = []
    sink = RecordingSink()

    def process(frame: Frame) -> np.ndarray:
        seen.append(frame.index)
        if frame.index == 0:
            started.set()
            assert source.all_read.wait(5)  # a slow frame: the camera delivers 9 more meanwhile
        else:
            assert sink.sent_one.wait(5)  # keep the output side out of this test
        clock.advance(0.1)
        return frame.image

    stats = LiveRunner(source, process, sink, clock=clock).run()
    assert seen == [0, 9]  # the newest frame wins
    assert stats.frames_in == 10
    assert stats.frames_processed == 2
    assert stats.dropped_capture == 8 and stats.dropped == 8
    assert sink.values == [0, 9]
    assert stats.timings["process"].p50_ms == pytest.approx(100.0)
    assert stats.timings["wait"].max_ms == pytest.approx(100.0)  # frame 9 waited while frame 0 was processed
    assert stats.timings["latency"].count == 2 and 100.0 - 1e-6 <= stats.timings["latency"].p50_ms <= 200.0 + 1e-6
    assert stats.stopped_by == "end"
    assert source.closed and sink.opened and sink.closed
    assert runner_threads() == []


def test_unpaced_file_is_processed_frame_for_frame(tmp_path: Path) -> None:
    path = tmp_path / "in.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    for i in range(15):
        writer.write(img(16 * i, (64, 48)))
    writer.release()
    source = VideoFileSource(VideoFileConfig(path=path, paced=False))
    source.open()

    def slow_invert(frame: Frame) -> np.ndarray:
        time.sleep(0.005)
        return 255 - frame.image

    out_path = tmp_path / "out.avi"
    stats = LiveRunner(source, slow_invert, FileSink(out_path, fps=25)).run()
    assert stats.frames_in == stats.frames_processed == stats.frames_out == 15
    assert stats.dropped == 0
    cap = cv2.VideoCapture(str(out_path))
    means = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        means.append(frame.mean())
    cap.release()
    assert len(means) == 15
    np.testing.assert_allclose(means, [255 - 16 * i for i in range(15)], atol=5)


def test_max_frames() -> None:
    source = ListSource([img(i) for i in range(50)])
    stats = LiveRunner(source, lambda f: f.image, NullSink(), config=RunnerConfig(max_frames=7)).run()
    assert stats.frames_in == 7 and stats.frames_out == 7
    assert stats.stopped_by == "max_frames"


class EndlessSource:
    """A camera-like source that never ends (2 ms per frame)."""

    name = "endless"
    realtime = True
    fps = 500.0
    ended = False

    def __init__(self) -> None:
        self.i = 0
        self.closed = False

    def read(self) -> Frame:
        time.sleep(0.002)
        self.i += 1
        return Frame(img(self.i), self.i - 1, time.monotonic())

    def close(self) -> None:
        self.closed = True


def test_stop_returns_within_a_second_and_joins_every_thread() -> None:
    source = EndlessSource()
    sink = RecordingSink()
    runner = LiveRunner(source, lambda f: f.image, sink)
    result: dict = {}
    t = threading.Thread(target=lambda: result.setdefault("stats", runner.run()))
    t.start()
    deadline = time.monotonic() + 5
    while runner.stats().frames_out < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(runner_threads()) == 2  # capture + process; output runs on the caller's thread
    t0 = time.monotonic()
    runner.stop()
    t.join(2)
    assert time.monotonic() - t0 < 1.0
    assert not t.is_alive()
    assert runner_threads() == []
    stats = result["stats"]
    assert stats.stopped_by == "stop" and stats.frames_out >= 5
    assert source.closed and sink.closed
    assert stats.timings["latency"].count == stats.frames_out


def test_ctrl_c_stops_cleanly() -> None:
    class InterruptingSink(RecordingSink):
        def send(self, image, info=None) -> None:
            super().send(image, info)
            if len(self.values) == 3:
                raise KeyboardInterrupt

    source = EndlessSource()
    sink = InterruptingSink()
    stats = LiveRunner(source, lambda f: f.image, sink).run()
    assert stats.stopped_by == "interrupt"
    assert source.closed and sink.closed
    assert runner_threads() == []


def test_hotkeys_run_callbacks_on_processing_thread_and_q_quits() -> None:
    source = EndlessSource()
    sink = RecordingSink(keys=["c", "n", "o", "p", "x", "q"])
    calls: list[tuple[str, str]] = []

    def cb(name: str):
        return lambda: calls.append((name, threading.current_thread().name))

    runner = LiveRunner(source, lambda f: f.image, sink, hotkeys={k: cb(k) for k in "cnp"})
    stats = runner.run()
    assert stats.stopped_by == "quit"
    assert [c[0] for c in calls] in (["c", "n", "p"], ["c", "n"], ["c"], [])  # all queued before q
    assert all(c[1] == "reenact-process" for c in calls)
    assert runner.overlay is False  # o toggled it
    assert runner_threads() == []


def test_hotkeys_all_run_before_next_frame() -> None:
    source = ListSource([img(i) for i in range(40)], realtime=False)
    sink = RecordingSink(keys=["c", "n", "p"])
    calls: list[str] = []
    LiveRunner(source, lambda f: f.image, sink, hotkeys={k: (lambda k=k: calls.append(k)) for k in "cnp"}).run()
    assert calls == ["c", "n", "p"]


def test_process_error_is_raised_after_cleanup() -> None:
    source = EndlessSource()
    sink = RecordingSink()

    def broken(frame: Frame) -> np.ndarray:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        LiveRunner(source, broken, sink).run()
    assert source.closed and sink.closed
    assert runner_threads() == []


def test_reset_called_on_new_segment_and_status_lines_reach_sink() -> None:
    class Proc:
        def __init__(self) -> None:
            self.resets = 0

        def __call__(self, frame: Frame) -> np.ndarray:
            return frame.image

        def reset(self) -> None:
            self.resets += 1

        def status_lines(self) -> list[str]:
            return ["no face"]

    class Segmented(ListSource):
        def read(self):
            f = super().read()
            if f is not None and f.index == 5:
                f = Frame(f.image, f.index, f.t_capture, new_segment=True)
            return f

    proc = Proc()
    sink = RecordingSink()
    LiveRunner(Segmented([img(i) for i in range(8)]), proc, sink).run()
    assert proc.resets == 1
    assert sink.infos[0].lines == ("no face",)


def test_process_must_return_bgr() -> None:
    with pytest.raises(TypeError):
        LiveRunner(ListSource([img(0)]), lambda f: f.image.astype(np.float32), NullSink()).run()


def test_latest_slot() -> None:
    slot: LatestSlot[int] = LatestSlot()
    assert slot.get(timeout=0.0) is None
    slot.put(1)
    slot.put(2)
    assert slot.dropped == 1 and slot.get() == 2
    slot.put(3)
    slot.close()
    assert not slot.finished and slot.get() == 3 and slot.finished
    assert slot.put(4) is False and slot.get(timeout=0.0) is None


def test_latest_slot_blocking_put_waits_for_reader() -> None:
    slot: LatestSlot[int] = LatestSlot()
    slot.put(1)
    done = threading.Event()
    threading.Thread(target=lambda: (slot.put(2, block=True), done.set()), daemon=True).start()
    assert not done.wait(0.05)
    assert slot.get() == 1
    assert done.wait(1) and slot.get() == 2 and slot.dropped == 0


def test_stage_timer_with_fake_clock() -> None:
    clock = FakeClock()
    timer = StageTimer(clock=clock)
    for ms in range(1, 101):
        with timer.time("stage"):
            clock.advance(ms / 1000)
    st = timer.stats("stage")
    assert st.count == 100
    assert st.p50_ms == pytest.approx(50.5)
    assert st.p95_ms == pytest.approx(95.05)
    assert st.max_ms == pytest.approx(100.0)
    assert timer.stats("missing").count == 0


def test_fps_meter() -> None:
    m = FpsMeter(window=10)
    assert m.fps == 0.0
    for i in range(50):
        m.tick(i / 25.0)
    assert m.fps == pytest.approx(25.0) and m.average_fps == pytest.approx(25.0)


def test_sinks_that_allow_any_thread_are_sent_to_from_the_processing_thread() -> None:
    """The virtual camera and null accept frames from any thread: the processing thread sends them itself
    (no wake-up of the output loop between processing and output); a window or file sink keeps the loop."""

    class ThreadSink(RecordingSink):
        def __init__(self, any_thread: bool) -> None:
            super().__init__()
            self.any_thread = any_thread
            self.threads: set[str] = set()

        def send(self, image, info=None) -> None:
            super().send(image, info)
            self.threads.add(threading.current_thread().name)

    for any_thread, expect in ((True, "reenact-process"), (False, threading.current_thread().name)):
        sink = ThreadSink(any_thread)
        runner = LiveRunner(ListSource([img(i) for i in range(6)]), lambda f: f.image, sink)
        stats = runner.run()
        assert runner.direct is any_thread
        assert sink.threads == {expect}
        assert sink.values == list(range(6)) and stats.frames_out == 6
        assert ("handoff" in stats.timings) is not any_thread
    mixed = LiveRunner(ListSource([img(0)]), lambda f: f.image, [ThreadSink(True), ThreadSink(False)])
    assert mixed.direct is False
