"""Capture sources: a webcam and a video file behind one small interface.

A source's :meth:`~CaptureSource.read` returns the next :class:`Frame`, or ``None`` when no
frame is available right now (a camera reconnecting) or ever again (check ``ended``). No
threads inside: the live runner owns the capture thread. Pacing and reconnect waits are
short (at most ``max_wait_s`` per call) so the runner can stop within a second.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from reenact.errors import InputError, ReenactError

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], None]

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")


@dataclass(frozen=True)
class Frame:
    """One captured frame."""

    image: np.ndarray  # [H,W,3] BGR uint8
    index: int  # 0, 1, 2, ... in capture order (counts every frame read, dropped or not)
    t_capture: float  # seconds, monotonic clock, when the frame was read (latency origin)
    t_media: float | None = None  # seconds into the stream: file position, or time since the camera opened
    new_segment: bool = False  # first frame after opening, a reconnect or a loop: reset trackers
    t_due: float | None = None  # paced file: when the frame was due (t_capture - t_due = the capture thread's delay)

    @property
    def t_stream(self) -> float:
        """The stream's own clock: ``t_media`` where the source knows it, else ``t_capture``.

        Time-based filtering (smoothing, calibration) reads this, so a file gives the same output
        however fast it is read; hold and ease after a lost face read the wall clock, ``t_capture``.
        """
        return self.t_capture if self.t_media is None else self.t_media

    def __post_init__(self) -> None:
        if not isinstance(self.image, np.ndarray):
            raise TypeError(f"Frame.image must be a numpy array, got {type(self.image).__name__}")
        if self.image.dtype != np.uint8:
            raise TypeError(f"Frame.image must be uint8, got {self.image.dtype}")
        if self.image.ndim != 3 or self.image.shape[2] != 3:
            raise ValueError(f"Frame.image must be [H,W,3] BGR, got shape {self.image.shape}")


class CaptureSource(Protocol):
    """What the live runner needs from a source of frames."""

    name: str  # for logs: "camera 0", "video clip.mp4"
    realtime: bool  # True: frames come at the world's pace, drop stale ones; False: process every frame
    ended: bool  # True once no more frames will come

    def open(self) -> None: ...

    def read(self) -> Frame | None: ...

    def close(self) -> None: ...

    @property
    def fps(self) -> float: ...


class VideoCaptureLike(Protocol):
    """The part of ``cv2.VideoCapture`` used here (tests pass a fake)."""

    def isOpened(self) -> bool: ...  # noqa: N802

    def read(self) -> tuple[bool, np.ndarray | None]: ...

    def set(self, prop: int, value: float) -> bool: ...

    def get(self, prop: int) -> float: ...

    def release(self) -> None: ...


def _to_bgr(image: np.ndarray) -> np.ndarray:
    """Grey or BGRA camera frames to BGR uint8."""
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def _release(source) -> None:
    """Close an OpenCV-backed source: release its capture once and mark it ended."""
    if source._cap is not None:
        source._cap.release()
        source._cap = None
    source.ended = True


def open_camera(index: int | str) -> cv2.VideoCapture:
    """cv2.VideoCapture(index) without OpenCV's own console noise.

    A missing camera makes OpenCV print a warning or error for each backend it tries (and again at
    every reconnect attempt); our own message says what is wrong and what to do. Kept with -vv.
    """
    if log.isEnabledFor(logging.DEBUG):
        return cv2.VideoCapture(index)
    cvlog = cv2.utils.logging
    level = cvlog.getLogLevel()
    cvlog.setLogLevel(cvlog.LOG_LEVEL_SILENT)
    try:
        return cv2.VideoCapture(index)
    finally:
        cvlog.setLogLevel(level)


@dataclass(frozen=True)
class WebcamConfig:
    """How to open a webcam."""

    index: int | str = 0  # OpenCV camera index, or a device path such as /dev/video2
    width: int = 640  # requested frame size; the camera may pick another (logged)
    height: int = 480
    fps: float = 30.0  # requested frame rate; the real one is measured
    fourcc: str = "MJPG"  # compressed USB transfer: 30 fps at 720p where raw YUYV manages 5-10
    backoff_s: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)  # waits between reopen attempts (last repeats)
    max_wait_s: float = 0.1  # longest a single read() blocks while waiting to reopen
    fail_after: int = 5  # consecutive failed reads before the camera counts as disconnected


class WebcamSource:
    """A webcam through ``cv2.VideoCapture``; reopens with backoff when it disconnects.

    The frame rate the driver reports (``CAP_PROP_FPS``) is often wrong, so :attr:`fps`
    is measured from the frames actually read (an exponential average of the intervals).
    """

    realtime = True

    def __init__(
        self,
        config: WebcamConfig | None = None,
        *,
        opener: Callable[[int | str], VideoCaptureLike] | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        self.config = config or WebcamConfig()
        self.name = f"camera {self.config.index}"
        self._opener = opener or self._cv2_open
        self._clock = clock
        self._sleep = sleep
        self._cap: VideoCaptureLike | None = None
        self._index = 0
        self._failures = 0
        self._retry = 0
        self._next_retry_t = 0.0
        self._t_open = 0.0
        self._t_last: float | None = None
        self._interval: float | None = None
        self._new_segment = True
        self.reconnects = 0
        self.ended = False
        self.size: tuple[int, int] = (self.config.width, self.config.height)

    @staticmethod
    def _cv2_open(index: int | str) -> cv2.VideoCapture:
        return open_camera(index)

    def _try_open(self) -> bool:
        c = self.config
        cap = self._opener(c.index)
        if not cap.isOpened():
            cap.release()
            return False
        cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*c.fourcc))
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, c.width)
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, c.height)
        cap.set(cv2.CAP_PROP_FPS, c.fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # keep the driver from queueing stale frames
        self.size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) or c.width, int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) or c.height)
        if self.size != (c.width, c.height):
            log.warning("%s gives %dx%d, not the requested %dx%d", self.name, *self.size, c.width, c.height)
        self._cap = cap
        self._failures = 0
        self._retry = 0
        self._t_open = self._clock()
        self._t_last = None
        self._new_segment = True
        log.info("opened %s at %dx%d (driver reports %.1f fps)", self.name, *self.size, cap.get(cv2.CAP_PROP_FPS))
        return True

    def open(self) -> None:
        """Open the camera; a camera that cannot be opened is a ReenactError."""
        if not self._try_open():
            raise ReenactError(
                f"cannot open {self.name}",
                hint="check that the camera is connected and not used by another program "
                "(run `reenact doctor`); pick another one with --source 1, or use a video file",
            )

    @property
    def fps(self) -> float:
        """Measured frame rate; the requested one until frames have come."""
        return 1.0 / self._interval if self._interval else float(self.config.fps)

    def _disconnect(self) -> None:
        log.warning("%s stopped giving frames; reopening", self.name)
        if self._cap is not None:
            self._cap.release()
        self._cap = None
        self._next_retry_t = self._clock()

    def read(self) -> Frame | None:
        """The next frame, or None while the camera is (re)connecting. Blocks at most for one frame or max_wait_s."""
        if self.ended:
            return None
        if self._cap is None:
            now = self._clock()
            if now < self._next_retry_t:
                self._sleep(min(self.config.max_wait_s, self._next_retry_t - now))
                return None
            if not self._try_open():
                waits = self.config.backoff_s
                wait = waits[min(self._retry, len(waits) - 1)]
                self._retry += 1
                self._next_retry_t = self._clock() + wait
                log.info("%s not back yet; next try in %.1f s", self.name, wait)
                return None
            self.reconnects += 1
            log.warning("%s reconnected", self.name)
        assert self._cap is not None
        ok, image = self._cap.read()
        if not ok or image is None:
            self._failures += 1
            if self._failures >= self.config.fail_after:
                self._disconnect()
            return None
        self._failures = 0
        t = self._clock()
        if self._t_last is not None and t > self._t_last:
            dt = t - self._t_last
            self._interval = dt if self._interval is None else 0.9 * self._interval + 0.1 * dt
        self._t_last = t
        frame = Frame(
            image=_to_bgr(image), index=self._index, t_capture=t, t_media=t - self._t_open, new_segment=self._new_segment
        )
        self._new_segment = False
        self._index += 1
        return frame

    def close(self) -> None:
        _release(self)


@dataclass(frozen=True)
class VideoFileConfig:
    """How to play a video file as a source."""

    path: str | Path = ""
    paced: bool = True  # True: deliver at the file's own fps (like a camera); False: as fast as read
    loop: bool = False  # start again at the end (benchmarks, long runs)
    max_wait_s: float = 0.1  # longest a single read() sleeps for pacing


class VideoFileSource:
    """A video file read with ``cv2.VideoCapture``, paced at its own fps or unpaced."""

    def __init__(
        self,
        config: VideoFileConfig,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        self.config = config
        self.path = Path(config.path)
        self.name = f"video {self.path.name}"
        self.realtime = config.paced
        self._clock = clock
        self._sleep = sleep
        self._cap: Any = None
        self._fps = 30.0
        self._index = 0
        self._pos = 0  # frame position inside the file (restarts when looping)
        self._t0 = 0.0
        self._new_segment = True
        self._pending: np.ndarray | None = None
        self.frame_count = 0
        self.size: tuple[int, int] = (0, 0)
        self.ended = False

    def open(self) -> None:
        """Open the file; a missing or unreadable file is an InputError."""
        from reenact.outputs import check_input_file

        check_input_file(self.path, "video file", hint="give a video file, or a camera index such as 0")
        cap = cv2.VideoCapture(str(self.path))
        ok, first = (cap.read() if cap.isOpened() else (False, None))
        if not ok or first is None:
            cap.release()
            raise InputError(
                f"cannot read video {self.path}", hint="is it a video OpenCV's FFmpeg can decode (mp4/H.264, avi/MJPG)?"
            )
        fps = cap.get(cv2.CAP_PROP_FPS)
        self._fps = float(fps) if fps and 1.0 <= fps <= 1000.0 else 30.0
        self.frame_count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.size = (first.shape[1], first.shape[0])
        self._cap = cap
        self._pending = first
        self._t0 = self._clock()
        log.info("opened %s: %dx%d at %.2f fps, %d frames", self.name, *self.size, self._fps, self.frame_count)

    @property
    def fps(self) -> float:
        return self._fps

    def _next_image(self) -> np.ndarray | None:
        if self._pending is not None:
            img, self._pending = self._pending, None
            return img
        ok, img = self._cap.read()
        if ok and img is not None:
            return img
        if not self.config.loop or self._pos == 0:
            return None
        self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        ok, img = self._cap.read()
        if not ok or img is None:
            return None
        self._pos = 0
        self._new_segment = True
        return img

    def read(self) -> Frame | None:
        """The next frame; None when pacing says not yet, or at the end (then ``ended`` is True)."""
        if self.ended:
            return None
        if self._cap is None:
            raise RuntimeError(f"{self.name} is not open; call open() first")
        if self.config.paced:
            due = self._t0 + self._index / self._fps
            wait = due - self._clock()
            if wait > 0:
                self._sleep(min(wait, self.config.max_wait_s))
                if due - self._clock() > 0:
                    return None
        image = self._next_image()
        if image is None:
            self.ended = True
            return None
        frame = Frame(
            image=_to_bgr(image),
            index=self._index,
            t_capture=self._clock(),
            t_media=self._pos / self._fps,
            new_segment=self._new_segment,
            t_due=self._t0 + self._index / self._fps if self.config.paced else None,
        )
        self._new_segment = False
        self._index += 1
        self._pos += 1
        return frame

    def close(self) -> None:
        _release(self)


def parse_source(spec: str | int) -> int | Path:
    """``"0"`` / ``0`` → camera index 0; ``/dev/videoN`` stays a device path; anything else is a file path."""
    if isinstance(spec, int):
        return spec
    s = str(spec).strip()
    if s.isdigit():
        return int(s)
    return Path(s).expanduser()


def open_source(
    spec: str | int,
    *,
    size: tuple[int, int] = (640, 480),
    fps: float = 30.0,
    paced: bool = True,
    loop: bool = False,
    clock: Clock = time.monotonic,
) -> WebcamSource | VideoFileSource:
    """Build and open a source from a CLI value: a camera index, a /dev/video path, or a video file."""
    target = parse_source(spec)
    if isinstance(target, int) or str(target).startswith("/dev/video"):
        cam = WebcamSource(WebcamConfig(index=target if isinstance(target, int) else str(target), width=size[0],
                                        height=size[1], fps=fps), clock=clock)
        cam.open()
        return cam
    src = VideoFileSource(VideoFileConfig(path=target, paced=paced, loop=loop), clock=clock)
    src.open()
    return src


@dataclass
class ListSource:
    """Frames from a list of images, for tests and demos: unpaced, ends after the last one."""

    images: list[np.ndarray]
    name: str = "list"
    realtime: bool = False
    fps: float = 30.0
    clock: Clock = time.monotonic
    ended: bool = False
    _i: int = field(default=0, repr=False)

    def open(self) -> None:
        self._i = 0
        self.ended = False

    def read(self) -> Frame | None:
        if self._i >= len(self.images):
            self.ended = True
            return None
        f = Frame(self.images[self._i], self._i, self.clock(), self._i / self.fps, new_segment=self._i == 0)
        self._i += 1
        return f

    def close(self) -> None:
        self.ended = True
