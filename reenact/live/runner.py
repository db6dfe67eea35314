"""The live runner: a capture thread, a processing thread and an output loop, joined by latest-frame slots.

::

    source ──capture thread──▶ [in slot] ──processing thread: process(frame)──▶ [out slot] ──output loop──▶ sinks

(When every sink may be called from any thread — the virtual camera, null — the processing thread
sends itself and the output loop only polls keys: one thread wake-up less between capture and output.)

The only module of the live path that owns threads. The newest frame wins: a frame not
taken before the next one arrives is dropped and counted (for a camera or a paced file);
an unpaced file is processed frame for frame instead (the slots block, nothing dropped).
The output loop runs on the thread that calls :meth:`LiveRunner.run` (the main thread in
the CLI), because preview windows need the main thread on macOS and with Qt, and Ctrl-C
arrives there. Hotkeys from a sink (the preview window) are handed to the processing
thread and run between two frames, so callbacks never race the processing.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

from reenact.live.capture import CaptureSource, Frame
from reenact.live.sinks import OutputInfo, Sink, check_bgr
from reenact.live.timing import Clock, FpsMeter, StageStats, StageTimer

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Stage names recorded by the runner, in pipeline order.
STAGES = ("capture", "wait", "process", "handoff", "output", "latency")
# capture: due → read (paced files only); wait: read → processing start; handoff: processed → output
# thread starts sending; output: the sinks; latency: read → sent


class LatestSlot(Generic[T]):
    """A one-item mailbox between two threads: the newest item wins and replaced ones are counted.

    ``put(block=True)`` waits for the reader instead of replacing (lossless mode).
    ``close()`` means no more items: a pending item can still be taken, then ``get`` returns None.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._has = False
        self._closed = False
        self.dropped = 0  # items replaced before anyone took them
        self.put_count = 0

    def put(self, item: T, block: bool = False) -> bool:
        """Store an item; returns False when the slot was closed (the item is discarded)."""
        with self._cond:
            if block:
                while self._has and not self._closed:
                    self._cond.wait()
            if self._closed:
                return False
            if self._has:
                self.dropped += 1
            self._item, self._has = item, True
            self.put_count += 1
            self._cond.notify_all()
            return True

    def get(self, timeout: float | None = None) -> T | None:
        """Take the item, waiting up to ``timeout`` seconds; None when there is none (or closed and empty)."""
        with self._cond:
            if not self._has and not self._closed:
                self._cond.wait(timeout)
            if not self._has:
                return None
            item, self._item, self._has = self._item, None, False
            self._cond.notify_all()
            return item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def finished(self) -> bool:
        """Closed and empty: nothing more will come out."""
        with self._cond:
            return self._closed and not self._has


class Processor(Protocol):
    """What the runner calls per frame; the Reenactor's ``__call__``. ``reset()`` is optional."""

    def __call__(self, frame: Frame) -> np.ndarray: ...


@dataclass(frozen=True)
class RunnerConfig:
    """How the live loop runs."""

    max_frames: int | None = None  # stop after this many frames were captured (None = until the source ends)
    drop_frames: bool | None = None  # None: drop stale frames for realtime sources only; True/False: force
    stop_timeout_s: float = 1.0  # how long shutdown waits for each thread
    poll_s: float = 0.02  # how often idle loops check for stop and hotkeys
    overlay: bool = True  # start with the preview overlay shown (hotkey o toggles)
    # Python's GIL switch interval while running (its default is 5 ms): a thread waking for a new frame
    # (capture → processing, processing → output) waits at most this long behind one holding the GIL
    switch_interval_s: float | None = 0.001
    # send from the processing thread when every sink allows it (``any_thread``: the virtual camera, null),
    # skipping the wake-up of the output loop (handoff: 13 ms p50 on a loaded 2-core machine); the
    # window (main thread only) and files (encoding would hold up processing) keep the output loop
    direct_output: bool = True


@dataclass(frozen=True)
class RunStats:
    """What happened in a run (or so far)."""

    frames_in: int  # frames read from the source
    frames_processed: int  # frames process() returned for
    frames_out: int  # frames handed to the sinks
    dropped_capture: int  # captured frames replaced before processing took them (stale)
    dropped_output: int  # processed frames replaced before the output loop took them
    fps: float  # processed frames per second over the run
    wall_s: float  # seconds from start to end (runner clock)
    timings: dict[str, StageStats] = field(default_factory=dict)  # per stage: see STAGES
    stopped_by: str = ""  # end | max_frames | stop | quit | interrupt | error

    @property
    def dropped(self) -> int:
        return self.dropped_capture + self.dropped_output


class LiveRunner:
    """Runs ``process`` on frames from ``source`` and sends the results to ``sinks``.

    ``hotkeys`` maps keys (c calibrate, n next, p previous, o overlay) to callbacks run on
    the processing thread between frames; q always stops, o always toggles the overlay.
    ``status`` gives extra overlay lines (default: ``process.status_lines()`` if it has one).
    The runner's ``clock`` must be the clock the source stamps ``t_capture`` with.
    ``source`` must already be open (``open_source`` opens it); the runner opens the sinks
    and closes both. ``keep_output`` says at the end whether the run made something worth
    keeping (e.g. a face was seen at least once); when it says no, or the run failed, sinks
    that can (``abort()``: video files) drop what they wrote instead of replacing a file.
    One runner runs once.
    """

    def __init__(
        self,
        source: CaptureSource,
        process: Processor | Callable[[Frame], np.ndarray],
        sinks: Sink | Sequence[Sink],
        *,
        config: RunnerConfig | None = None,
        hotkeys: Mapping[str, Callable[[], Any]] | None = None,
        status: Callable[[], Sequence[str]] | None = None,
        keep_output: Callable[[], bool] | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.keep_output = keep_output
        self.source = source
        self.process = process
        self.sinks: list[Sink] = list(sinks) if isinstance(sinks, Sequence) else [sinks]
        self.config = config or RunnerConfig()
        self.hotkeys = dict(hotkeys or {})
        self.status = status or getattr(process, "status_lines", None)
        self.clock = clock
        self.overlay = self.config.overlay
        self.timer = StageTimer(clock=clock)
        self._fps = FpsMeter()
        self._in: LatestSlot[Frame] = LatestSlot()
        self._out: LatestSlot[tuple[np.ndarray, Frame, float]] = LatestSlot()
        self._keys: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._error: BaseException | None = None
        self._stopped_by = ""
        self._frames_in = 0
        self._frames_processed = 0
        self._frames_out = 0
        self._t_start = 0.0
        self._t_end: float | None = None
        drop = self.config.drop_frames
        self.drop_frames = bool(getattr(source, "realtime", True)) if drop is None else drop
        self.direct = self.config.direct_output and all(getattr(s, "any_thread", False) for s in self.sinks)

    # -- control -------------------------------------------------------------------------

    def stop(self, reason: str = "stop") -> None:
        """Ask every thread to stop (any thread may call it); :meth:`run` then returns within ~1 s."""
        if not self._stopped_by:
            self._stopped_by = reason
        self._stop.set()
        self._in.close()
        self._out.close()

    def stats(self) -> RunStats:
        """A snapshot, usable while running."""
        end = self._t_end if self._t_end is not None else self.clock()
        return RunStats(
            frames_in=self._frames_in,
            frames_processed=self._frames_processed,
            frames_out=self._frames_out,
            dropped_capture=self._in.dropped,
            dropped_output=self._out.dropped,
            fps=self._fps.average_fps,
            wall_s=max(0.0, end - self._t_start),
            timings=self.timer.summary(),
            stopped_by=self._stopped_by,
        )

    # -- threads ---------------------------------------------------------------------------

    def _capture_loop(self) -> None:
        max_frames = self.config.max_frames
        try:
            while not self._stop.is_set():
                if max_frames is not None and self._frames_in >= max_frames:
                    if not self._stopped_by:
                        self._stopped_by = "max_frames"
                    break
                frame = self.source.read()
                if frame is None:
                    if getattr(self.source, "ended", False):
                        break
                    continue
                self._frames_in += 1
                if frame.t_due is not None:
                    self.timer.record("capture", frame.t_capture - frame.t_due)
                if not self._in.put(frame, block=not self.drop_frames):
                    break
        except BaseException as exc:  # noqa: BLE001 - re-raised by run()
            self._fail(exc)
        finally:
            self._in.close()

    def _run_hotkeys(self) -> None:
        while True:
            try:
                key = self._keys.get_nowait()
            except queue.Empty:
                return
            callback = self.hotkeys.get(key)
            if callback is None:
                log.info("hotkey %r has no action here", key)
                continue
            log.info("hotkey %r", key)
            callback()

    def _process_loop(self) -> None:
        reset = getattr(self.process, "reset", None)
        try:
            while not self._stop.is_set():
                self._run_hotkeys()
                frame = self._in.get(timeout=self.config.poll_s)
                if frame is None:
                    if self._in.finished:
                        break
                    continue
                if frame.new_segment and frame.index > 0 and callable(reset):
                    reset()  # camera reconnected or video looped: forget tracking and smoothing
                t0 = self.clock()
                image = self.process(frame)
                t1 = self.clock()
                check_bgr(image)
                self.timer.record("wait", t0 - frame.t_capture)
                self.timer.record("process", t1 - t0)
                self._frames_processed += 1
                self._fps.tick(t1)
                if self.direct:
                    if not self._stop.is_set():
                        self._send(image, frame)  # no handoff: this thread sends
                elif not self._out.put((image, frame, t1), block=not self.drop_frames):
                    break
        except BaseException as exc:  # noqa: BLE001 - re-raised by run()
            self._fail(exc)
        finally:
            self._out.close()

    def _fail(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc
        log.debug("live runner stopping on %r", exc)
        self.stop("error")

    def _handle_key(self, key: str) -> None:
        if key == "q":
            self.stop("quit")
        elif key == "o":
            self.overlay = not self.overlay
            if "o" in self.hotkeys:
                self._keys.put(key)
        else:
            self._keys.put(key)

    def _send(self, image: np.ndarray, frame: Frame, t_processed: float | None = None) -> None:
        t0 = self.clock()
        if t_processed is not None:
            self.timer.record("handoff", t0 - t_processed)
        lines = tuple(self.status()) if self.status is not None else ()
        info = OutputInfo(
            index=frame.index,
            latency_ms=(t0 - frame.t_capture) * 1000.0,
            fps=self._fps.fps,
            overlay=self.overlay,
            lines=lines,
        )
        for sink in self.sinks:
            sink.send(image, info)
        t1 = self.clock()
        self.timer.record("output", t1 - t0)
        self.timer.record("latency", t1 - frame.t_capture)
        self._frames_out += 1

    def _output_loop(self) -> None:
        while True:
            item = self._out.get(timeout=self.config.poll_s)
            if item is not None and not self._stop.is_set():
                self._send(*item)
            for sink in self.sinks:
                key = sink.poll_key()
                if key:
                    self._handle_key(key)
            if self._stop.is_set() or (item is None and self._out.finished):
                return

    # -- run -------------------------------------------------------------------------------

    def run(self) -> RunStats:
        """Open the sinks, run until the source ends, max_frames, q, stop() or Ctrl-C; always cleans up.

        Re-raises an error from the source, ``process`` or a sink after every thread is joined.
        """
        self._t_start = self.clock()
        opened: list[Sink] = []
        switch = sys.getswitchinterval()
        if self.config.switch_interval_s is not None:
            sys.setswitchinterval(self.config.switch_interval_s)
        try:
            for sink in self.sinks:
                sink.open()
                opened.append(sink)
            self._threads = [
                threading.Thread(target=self._capture_loop, name="reenact-capture", daemon=True),
                threading.Thread(target=self._process_loop, name="reenact-process", daemon=True),
            ]
            for t in self._threads:
                t.start()
            self._output_loop()
        except KeyboardInterrupt:
            log.info("interrupted")
            self.stop("interrupt")
        except BaseException as exc:
            self._fail(exc)
        finally:
            self._shutdown(opened)
            sys.setswitchinterval(switch)
        if not self._stopped_by:
            self._stopped_by = "end"
        stats = self.stats()
        if self._error is not None:
            raise self._error
        return stats

    def _shutdown(self, opened: list[Sink]) -> None:
        """Stop and join every thread, then release the camera and the sinks."""
        self._stop.set()
        self._in.close()
        self._out.close()
        for t in self._threads:
            t.join(timeout=self.config.stop_timeout_s)
            if t.is_alive():
                log.warning("thread %s did not stop within %.1f s", t.name, self.config.stop_timeout_s)
        self._t_end = self.clock()
        try:
            self.source.close()
        except Exception as exc:  # noqa: BLE001 - keep closing the rest
            log.warning("closing %s failed: %s", getattr(self.source, "name", "source"), exc)
        keep = self._error is None and (self.keep_output is None or self._frames_processed == 0 or self.keep_output())
        for sink in opened:
            try:
                abort = getattr(sink, "abort", None)
                if not keep and callable(abort):
                    abort()
                else:
                    sink.close()
            except Exception as exc:  # noqa: BLE001 - keep closing the rest
                log.warning("closing %s failed: %s", sink.name, exc)
