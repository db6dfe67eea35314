"""Sinks: the virtual camera through a fake pyvirtualcam backend, files, null, window, letterbox."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import pyvirtualcam
from pyvirtualcam.util import encode_fourcc

from reenact.errors import ReenactError
from reenact.live import sinks
from reenact.live.sinks import (
    FileSink,
    NullSink,
    OutputInfo,
    VcamConfig,
    VirtualCameraSink,
    WindowSink,
    create_sink,
    draw_overlay,
    letterbox,
)


class FakeBackend:
    """A pyvirtualcam backend that records what it is sent (frames arrive flattened)."""

    instances: list[FakeBackend] = []
    send_delay = 0.0

    def __init__(self, *, width: int, height: int, fps: float, fourcc: int, device: str | None, **kw) -> None:
        self.width, self.height, self.fps, self.fourcc = width, height, fps, fourcc
        self.frames: list[np.ndarray] = []
        self.times: list[float] = []
        self.closed = False
        FakeBackend.instances.append(self)

    def send(self, frame: np.ndarray) -> None:
        if self.send_delay:
            time.sleep(self.send_delay)
        self.times.append(time.perf_counter())
        self.frames.append(frame.reshape(self.height, self.width, 3).copy())

    def close(self) -> None:
        self.closed = True

    def device(self) -> str:
        return "/dev/fake-reenact"

    def native_fourcc(self):
        return None


class SlowBackend(FakeBackend):
    send_delay = 0.2


@pytest.fixture
def fake_backend():
    """Register the fake backends for one test, then remove them (other tests try every backend)."""
    from pyvirtualcam.camera import BACKENDS

    FakeBackend.instances.clear()
    pyvirtualcam.register_backend("reenact-fake", FakeBackend)
    pyvirtualcam.register_backend("reenact-slow", SlowBackend)
    yield FakeBackend
    BACKENDS.pop("reenact-fake", None)
    BACKENDS.pop("reenact-slow", None)
    FakeBackend.instances.clear()


def test_vcam_resends_latest_frame_at_fps_while_processing_stalls(fake_backend) -> None:
    sink = VirtualCameraSink(VcamConfig(width=320, height=240, fps=50, backend="reenact-fake"))
    sink.open()
    try:
        backend = fake_backend.instances[-1]
        assert sink.device == "/dev/fake-reenact"
        assert backend.fourcc == encode_fourcc(pyvirtualcam.PixelFormat.BGR.value)
        blue = np.zeros((120, 160, 3), np.uint8)
        blue[:, :, 0] = 255  # pure blue in BGR
        sink.send(blue)
        n0 = len(backend.frames)
        time.sleep(0.5)  # processing stalls: no new frame for half a second
        n1 = len(backend.frames)
    finally:
        sink.close()
    sent = n1 - n0
    assert 15 <= sent <= 30, f"expected ~25 frames in 0.5 s at 50 fps, got {sent}"
    intervals = np.diff(backend.times[n0:n1])
    assert np.median(intervals) == pytest.approx(0.02, abs=0.006)
    for f in backend.frames[n0 + 1 : n1]:
        assert f.shape == (240, 320, 3) and f.dtype == np.uint8
        assert tuple(f[120, 160]) == (255, 0, 0)  # BGR kept, not swapped to RGB
    assert backend.closed
    assert sink.frames_received == 1
    assert not [t for t in threading.enumerate() if t.name == "reenact-vcam"]


def test_vcam_sends_black_before_first_frame_and_letterboxes(fake_backend) -> None:
    sink = VirtualCameraSink(VcamConfig(width=320, height=240, fps=100, backend="reenact-fake"))
    sink.open()
    try:
        backend = fake_backend.instances[-1]
        deadline = time.monotonic() + 2
        while not backend.frames and time.monotonic() < deadline:
            time.sleep(0.005)
        assert backend.frames and backend.frames[0].max() == 0
        sink.send(np.full((100, 100, 3), 200, np.uint8))  # square into 4:3 → bars left and right
        n = len(backend.frames)
        while len(backend.frames) < n + 3 and time.monotonic() < deadline:
            time.sleep(0.005)
    finally:
        sink.close()
    f = backend.frames[-1]
    assert f[:, :30].max() == 0 and f[:, -30:].max() == 0
    assert f[120, 160].tolist() == [200, 200, 200]


def test_vcam_send_never_blocks_on_a_slow_camera(fake_backend) -> None:
    sink = VirtualCameraSink(VcamConfig(width=64, height=48, fps=30, backend="reenact-slow"))
    sink.open()
    try:
        time.sleep(0.05)  # the resend thread is now inside a 200 ms backend send
        img = np.zeros((48, 64, 3), np.uint8)
        t0 = time.perf_counter()
        for _ in range(20):
            sink.send(img)
        assert time.perf_counter() - t0 < 0.1
    finally:
        sink.close()


def test_vcam_odd_width_made_even(fake_backend) -> None:
    sink = VirtualCameraSink(VcamConfig(width=641, height=480, fps=30, backend="reenact-fake"))
    assert sink.size == (642, 480)


def test_vcam_missing_device_error_has_backend_text_and_fix(monkeypatch) -> None:
    from pyvirtualcam.camera import BACKENDS

    class Broken:
        def __init__(self, **kw):
            raise RuntimeError("No v4l2 loopback device found at /dev/video[0-99].")

    monkeypatch.setitem(BACKENDS, "reenact-broken", Broken)
    monkeypatch.setattr(sinks.sys, "platform", "linux")
    sink = VirtualCameraSink(VcamConfig(width=64, height=48, backend="reenact-broken"))
    with pytest.raises(ReenactError) as info:
        sink.open()
    text = str(info.value)
    assert "No v4l2 loopback device found" in text
    assert "sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label=Reenact" in text
    monkeypatch.setattr(sinks.sys, "platform", "darwin")
    with pytest.raises(ReenactError, match="OBS"):
        sink.open()


def test_vcam_unknown_backend() -> None:
    with pytest.raises(ReenactError, match="unknown virtual camera backend"):
        VirtualCameraSink(VcamConfig(width=64, height=48, backend="no-such")).open()


def test_file_sink_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "out.avi"
    sink = create_sink(str(path), fps=20)
    assert isinstance(sink, FileSink)
    sink.open()
    for i in range(7):
        sink.send(np.full((48, 64, 3), 30 * i, np.uint8))
    sink.send(np.full((10, 10, 3), 250, np.uint8))  # another size: letterboxed into 64x48
    sink.close()
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(img)
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(20)
    cap.release()
    assert len(frames) == 8
    assert all(f.shape == (48, 64, 3) for f in frames)
    assert abs(int(frames[3].mean()) - 90) < 4
    assert frames[7][24, 32].mean() > 230 and frames[7][24, 2].mean() < 20


def test_file_sink_errors(tmp_path: Path) -> None:
    with pytest.raises(ReenactError, match="does not exist"):
        create_sink(str(tmp_path / "nope" / "out.mp4")).open()
    with pytest.raises(ReenactError, match="unknown output"):
        create_sink("out.gif")


def test_create_sink_names() -> None:
    assert isinstance(create_sink("null"), NullSink)
    vc = create_sink("vcam", fps=25)
    assert isinstance(vc, VirtualCameraSink) and vc.size == (1280, 720)
    assert isinstance(create_sink("window"), WindowSink)


def test_null_sink_counts_and_checks() -> None:
    s = NullSink()
    s.send(np.zeros((4, 6, 3), np.uint8))
    assert s.frames == 1 and s.last_shape == (4, 6, 3)
    with pytest.raises(TypeError):
        s.send(np.zeros((4, 6, 3), np.float32))
    with pytest.raises(ValueError, match=r"\[H,W,3\]"):
        s.send(np.zeros((4, 6), np.uint8))


def test_letterbox_keeps_aspect_and_centres() -> None:
    img = np.full((100, 200, 3), 255, np.uint8)  # 2:1 into 16:9
    out = letterbox(img, (160, 90))
    assert out.shape == (90, 160, 3)
    rows = np.where(out[:, 80, 0] > 128)[0]
    assert rows.min() == 5 and rows.max() == 84  # 80 rows of image, 5-row bars
    assert letterbox(img, (200, 100)) is img
    tall = letterbox(np.full((200, 100, 3), 255, np.uint8), (160, 90))
    cols = np.where(tall[45, :, 0] > 128)[0]
    assert cols.min() in (57, 58) and cols.max() in (101, 102)  # 45 columns of image, centred
    with pytest.raises(ValueError):
        letterbox(img, (0, 10))


def test_draw_overlay_is_a_copy() -> None:
    img = np.zeros((240, 320, 3), np.uint8)
    out = draw_overlay(img, ["30.0 fps  40 ms"])
    assert img.max() == 0 and out.max() > 150


def test_window_sink_shows_overlay_and_returns_hotkeys(monkeypatch) -> None:
    shown: list[np.ndarray] = []
    keys = iter([ord("o"), -1, ord("N"), 27, ord("x")])
    monkeypatch.setattr(sinks, "has_display", lambda: True)
    monkeypatch.setattr(sinks.cv2, "namedWindow", lambda *a: None)
    monkeypatch.setattr(sinks.cv2, "imshow", lambda title, img: shown.append(img))
    monkeypatch.setattr(sinks.cv2, "waitKey", lambda ms: next(keys, -1))
    monkeypatch.setattr(sinks.cv2, "getWindowProperty", lambda *a: 1.0)
    monkeypatch.setattr(sinks.cv2, "destroyWindow", lambda *a: None)
    w = WindowSink()
    w.open()
    w.send(np.zeros((240, 320, 3), np.uint8), OutputInfo(fps=29.5, latency_ms=42))
    assert shown[0].max() > 150  # overlay drawn
    w.send(np.zeros((240, 320, 3), np.uint8), OutputInfo(overlay=False))
    assert shown[1].max() == 0
    got = [w.poll_key() for _ in range(4)]
    assert got == ["o", "n", "q", None]  # Esc = q, unknown keys ignored
    w.close()


def test_window_sink_without_display(monkeypatch) -> None:
    monkeypatch.setattr(sinks, "has_display", lambda: False)
    with pytest.raises(ReenactError, match="no display"):
        WindowSink().open()


def test_vcam_pushes_a_new_frame_at_once_not_at_the_next_resend(fake_backend) -> None:
    """At 2 fps a resend is due every 500 ms; a frame handed over between two resends goes out at once
    (it used to wait for the next one: 250 ms on average here), and the wait is recorded."""
    sink = VirtualCameraSink(VcamConfig(width=64, height=48, fps=2, backend="reenact-fake"))
    sink.open()
    try:
        backend = fake_backend.instances[-1]
        time.sleep(0.3)  # after the first (black) push, inside the first period
        n = len(backend.frames)
        t0 = time.perf_counter()
        sink.send(np.full((48, 64, 3), 77, np.uint8))
        deadline = t0 + 1.0
        while len(backend.frames) == n and time.perf_counter() < deadline:
            time.sleep(0.002)
        assert len(backend.frames) > n and backend.frames[n][0, 0, 0] == 77
        assert backend.times[n] - t0 < 0.1, "the new frame waited for the resend schedule"
        time.sleep(0.6)  # no new frame: the latest is repeated a period later
        assert len(backend.frames) >= n + 2 and backend.frames[-1][0, 0, 0] == 77
    finally:
        sink.close()
    push = sink.timer.stats("push")
    assert push.count == 1 and push.max_ms < 100.0
