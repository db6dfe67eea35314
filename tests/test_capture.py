"""Capture sources: video files read back frame for frame, pacing, webcam reconnect with a fake camera."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from reenact.errors import ReenactError
from reenact.live.capture import (
    Frame,
    VideoFileConfig,
    VideoFileSource,
    WebcamConfig,
    WebcamSource,
    open_source,
    parse_source,
)


class FakeClock:
    """A clock that moves only when slept on (or advanced by hand)."""

    def __init__(self, t: float = 100.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += max(0.0, s)


def write_video(path: Path, n: int = 12, fps: float = 25.0, size: tuple[int, int] = (64, 48)) -> list[np.ndarray]:
    """A video whose frame i has grey level 20*i (MJPG keeps flat colours to a few levels)."""
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    assert w.isOpened()
    frames = []
    for i in range(n):
        img = np.full((size[1], size[0], 3), 10 + 20 * i, np.uint8)
        img[:, :, 2] = 200  # one channel constant: BGR order survives
        frames.append(img)
        w.write(img)
    w.release()
    return frames


def read_all(src) -> list[Frame]:
    out = []
    for _ in range(10_000):
        f = src.read()
        if f is not None:
            out.append(f)
        elif src.ended:
            break
    return out


def test_video_file_read_back_frame_for_frame(tmp_path: Path) -> None:
    path = tmp_path / "clip.avi"
    written = write_video(path)
    src = VideoFileSource(VideoFileConfig(path=path, paced=False))
    src.open()
    assert src.fps == pytest.approx(25.0)
    assert src.size == (64, 48)
    frames = read_all(src)
    src.close()
    assert [f.index for f in frames] == list(range(len(written)))
    for f, w in zip(frames, written, strict=True):
        assert f.image.dtype == np.uint8 and f.image.shape == (48, 64, 3)
        assert np.abs(f.image.astype(int) - w.astype(int)).mean() < 4
    assert frames[0].new_segment and not any(f.new_segment for f in frames[1:])
    assert [f.t_media for f in frames] == pytest.approx([i / 25.0 for i in range(len(written))])


def test_video_file_paced_at_its_fps(tmp_path: Path) -> None:
    path = tmp_path / "clip.avi"
    write_video(path, n=10, fps=25.0)
    clock = FakeClock()
    src = VideoFileSource(VideoFileConfig(path=path, paced=True), clock=clock, sleep=clock.sleep)
    src.open()
    frames = read_all(src)
    assert len(frames) == 10
    t = np.array([f.t_capture for f in frames])
    np.testing.assert_allclose(np.diff(t), 1 / 25.0, atol=1e-9)
    assert src.realtime


def test_video_file_loops(tmp_path: Path) -> None:
    path = tmp_path / "clip.avi"
    write_video(path, n=4)
    src = VideoFileSource(VideoFileConfig(path=path, paced=False, loop=True))
    src.open()
    frames = [src.read() for _ in range(10)]
    assert all(f is not None for f in frames)
    assert [f.index for f in frames] == list(range(10))
    assert [f.new_segment for f in frames] == [True, False, False, False] * 2 + [True, False]


def test_unreadable_and_missing_video(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"this is not a video")
    with pytest.raises(ReenactError, match="cannot read video"):
        open_source(str(bad))
    with pytest.raises(ReenactError, match="not found"):
        open_source(str(tmp_path / "missing.mp4"))


def test_parse_source() -> None:
    assert parse_source("0") == 0
    assert parse_source(2) == 2
    assert parse_source("clip.mp4") == Path("clip.mp4")


class FakeCapture:
    """A cv2.VideoCapture stand-in: gives `good` frames, then fails (unplugged)."""

    def __init__(self, good: int, opened: bool = True) -> None:
        self.good = good
        self.opened = opened
        self.props: dict[int, float] = {}
        self.released = False
        self.reads = 0

    def isOpened(self) -> bool:  # noqa: N802
        return self.opened

    def read(self):
        self.reads += 1
        if self.reads <= self.good:
            return True, np.full((480, 640, 3), self.reads, np.uint8)
        return False, None

    def set(self, prop: int, value: float) -> bool:
        self.props[prop] = value
        return True

    def get(self, prop: int) -> float:
        return self.props.get(prop, 0.0)

    def release(self) -> None:
        self.released = True


def test_webcam_requests_mjpg_size_fps_and_measures_fps() -> None:
    clock = FakeClock()
    caps = [FakeCapture(good=100)]
    cam = WebcamSource(WebcamConfig(width=640, height=480, fps=60), opener=lambda i: caps[0], clock=clock, sleep=clock.sleep)
    cam.open()
    props = caps[0].props
    assert props[cv2.CAP_PROP_FOURCC] == cv2.VideoWriter_fourcc(*"MJPG")
    assert props[cv2.CAP_PROP_FRAME_WIDTH] == 640 and props[cv2.CAP_PROP_FPS] == 60
    for _ in range(50):
        f = cam.read()
        assert f is not None
        clock.t += 1 / 24  # the camera really delivers 24 fps, not the 60 asked for
    assert cam.fps == pytest.approx(24.0, rel=0.01)


def test_webcam_reopens_with_backoff_after_disconnect() -> None:
    clock = FakeClock()
    opened: list[FakeCapture] = []
    plan = [FakeCapture(good=3), FakeCapture(0, opened=False), FakeCapture(0, opened=False), FakeCapture(good=5)]

    def opener(index):
        cap = plan[len(opened)]
        opened.append(cap)
        return cap

    cfg = WebcamConfig(backoff_s=(0.5, 1.0), fail_after=2)
    cam = WebcamSource(cfg, opener=opener, clock=clock, sleep=clock.sleep)
    cam.open()
    frames = []
    attempts_t = []
    for _ in range(200):
        n_before = len(opened)
        f = cam.read()
        if len(opened) > n_before:
            attempts_t.append(clock.t)
        if f is not None:
            frames.append(f)
        if len(frames) == 8:
            break
    assert len(frames) == 8
    assert cam.reconnects == 1
    assert plan[0].released
    # reopen attempts spaced by the backoff: immediately, +0.5 s, +1.0 s
    assert np.diff(attempts_t) == pytest.approx([0.5, 1.0], abs=0.11)
    assert frames[3].new_segment and frames[3].index == 3  # indices keep counting across the reconnect
    cam.close()
    assert plan[3].released


def test_webcam_that_cannot_open() -> None:
    cam = WebcamSource(WebcamConfig(index=7), opener=lambda i: FakeCapture(0, opened=False))
    with pytest.raises(ReenactError, match="cannot open camera 7"):
        cam.open()


def test_frame_checks_input() -> None:
    with pytest.raises(TypeError):
        Frame(np.zeros((4, 4, 3), np.float32), 0, 0.0)
    with pytest.raises(ValueError, match=r"\[H,W,3\]"):
        Frame(np.zeros((4, 4), np.uint8), 0, 0.0)


@pytest.mark.camera
def test_real_webcam_gives_frames() -> None:
    try:
        src = open_source(0)
    except ReenactError:
        pytest.skip("no webcam at index 0")
    try:
        frames = [f for f in (src.read() for _ in range(30)) if f is not None]
        assert frames and frames[0].image.ndim == 3
    finally:
        src.close()


def test_opening_a_missing_camera_is_quiet_on_the_console() -> None:
    """OpenCV's own per-backend warnings for a camera that is not there stay off the console
    (real OpenCV; no camera on the test machine); our message says what to do instead."""
    import subprocess
    import sys

    code = "from reenact.live.capture import open_camera\ncap = open_camera(7)\nprint('opened', cap.isOpened())\n"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    if "opened True" in res.stdout:
        pytest.skip("this machine has a camera 7")
    assert "WARN" not in res.stderr and "ERROR" not in res.stderr, res.stderr
