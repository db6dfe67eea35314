"""Output sinks behind one interface and a registry: virtual camera, preview window, video file, null.

Every sink has ``open()``, ``send(image, info)``, ``poll_key()`` and ``close()``; the live
runner calls them from one output thread. Only the virtual camera owns a thread: it resends
the latest frame at the camera's fps, so a slow frame never freezes a video call and
``send`` never blocks processing. Optional libraries (pyvirtualcam) are imported only when
their sink is opened.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from reenact.errors import ReenactError
from reenact.live.timing import StageTimer
from reenact.outputs import PendingFile

log = logging.getLogger(__name__)

#: The fix for a missing virtual camera, per platform.
VCAM_FIX_LINUX = "sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label=Reenact"
VCAM_FIX_OTHER = "install OBS Studio (https://obsproject.com) and start its Virtual Camera once"

FILE_SUFFIXES: dict[str, str] = {".mp4": "mp4v", ".avi": "MJPG", ".mkv": "XVID"}  # suffix -> fourcc

#: Preview-window hotkeys: key -> what it does (the runner calls a callback per key).
HOTKEYS: dict[str, str] = {
    "c": "calibrate: capture your neutral face",
    "o": "toggle the FPS/latency overlay",
    "n": "next target",
    "p": "previous target",
    "q": "quit (also Esc)",
}


def vcam_fix() -> str:
    """The command or step that provides a virtual camera on this platform."""
    return VCAM_FIX_LINUX if sys.platform.startswith("linux") else VCAM_FIX_OTHER


@dataclass(frozen=True)
class OutputInfo:
    """What a sink may show about a frame (the window overlay)."""

    index: int = 0  # capture index of the frame
    latency_ms: float = 0.0  # capture to output, this frame
    fps: float = 0.0  # processed frames per second, recent
    overlay: bool = True  # draw the overlay (preview window only)
    lines: tuple[str, ...] = ()  # extra overlay lines (e.g. "no face", "calibrated: anna")


class Sink(Protocol):
    """An output for processed frames.

    A sink with a true ``any_thread`` attribute may be sent to from any one thread (the runner then
    sends from its processing thread); others are only called from the runner's output loop.
    """

    name: str

    def open(self) -> None: ...

    def send(self, image: np.ndarray, info: OutputInfo | None = None) -> None: ...

    def poll_key(self) -> str | None: ...

    def close(self) -> None: ...

    def describe(self) -> str: ...


def check_bgr(image: np.ndarray) -> None:
    """A sink input must be an [H,W,3] uint8 BGR array."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"frame must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise TypeError(f"frame must be uint8, got {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"frame must be [H,W,3] BGR, got shape {image.shape}")


def even(n: int) -> int:
    """Round up to an even number (Chrome and most encoders need even widths)."""
    return n + (n % 2)


def letterbox(image: np.ndarray, size: tuple[int, int], color: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
    """Fit ``image`` inside ``size`` = (width, height) keeping its aspect ratio, centred, bars in ``color``.

    Returns the input itself when it already has that size (do not modify it in place).
    """
    check_bgr(image)
    w, h = int(size[0]), int(size[1])
    if w < 1 or h < 1:
        raise ValueError(f"letterbox size must be positive, got {size}")
    ih, iw = image.shape[:2]
    if (iw, ih) == (w, h):
        return image
    scale = min(w / iw, h / ih)
    nw, nh = max(1, round(iw * scale)), max(1, round(ih * scale))
    # area-averaging down (no aliasing); bicubic up: as fast as bilinear here (0.7 ms for 512² -> 720²), sharper
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    # a target prepared for this size (reenactor output_size) only needs its bars
    resized = image if (nw, nh) == (iw, ih) else cv2.resize(image, (nw, nh), interpolation=interp)
    x0, y0 = (w - nw) // 2, (h - nh) // 2
    # copyMakeBorder: 0.1 ms for 540x720 into 1280x720, where filling with `out[:] = color` took 11 ms
    return cv2.copyMakeBorder(resized, y0, h - nh - y0, x0, w - nw - x0, cv2.BORDER_CONSTANT, value=tuple(int(c) for c in color))


def draw_overlay(image: np.ndarray, lines: list[str] | tuple[str, ...]) -> np.ndarray:
    """A copy of ``image`` with text lines in the top-left corner (outlined, readable on any face)."""
    check_bgr(image)
    out = image.copy()
    scale = max(0.8, min(out.shape[:2]) / 600)
    y = int(22 * scale) + 4
    for line in lines:
        for color, thick in (((0, 0, 0), 3), ((255, 255, 255), 1)):
            cv2.putText(out, line, (8, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, color, thick, cv2.LINE_AA)
        y += int(24 * scale) + 2
    return out


def overlay_lines(info: OutputInfo) -> list[str]:
    return [f"{info.fps:4.1f} fps  {info.latency_ms:5.0f} ms", *info.lines]


class NullSink:
    """Discards frames (benchmarks); counts them and remembers the last shape."""

    name = "null"
    any_thread = True

    def __init__(self, **_: Any) -> None:
        self.frames = 0
        self.last_shape: tuple[int, ...] | None = None

    def open(self) -> None:
        pass

    def send(self, image: np.ndarray, info: OutputInfo | None = None) -> None:
        check_bgr(image)
        self.frames += 1
        self.last_shape = image.shape

    def poll_key(self) -> str | None:
        return None

    def close(self) -> None:
        pass

    def describe(self) -> str:
        return "null output (frames are discarded)"


class FileSink:
    """Writes frames to a video file with ``cv2.VideoWriter`` (.mp4 mp4v, .avi MJPG, .mkv XVID).

    The file's size is ``size`` or the first frame's (rounded up to even); later frames of
    another size (a different target) are letterboxed into it. Frames go to a temporary file
    beside ``path`` (:class:`~reenact.outputs.PendingFile`), which ``close()`` finishes and
    renames over ``path``; ``abort()`` (a failed run) removes it, so an existing file is only
    ever replaced by a complete, playable one.
    """

    name = "file"

    def __init__(self, path: str | os.PathLike, fps: float = 30.0, size: tuple[int, int] | None = None, **_: Any) -> None:
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in FILE_SUFFIXES:
            raise ReenactError(f"cannot write video {self.path}: unknown type {suffix!r}", hint="use .mp4, .avi or .mkv")
        self.fourcc = FILE_SUFFIXES[suffix]
        if not fps > 0:
            raise ReenactError(f"cannot write video {self.path} at {fps:g} fps", hint="give --fps a number above 0, e.g. 30")
        self.fps = float(fps)
        self.size = (even(size[0]), even(size[1])) if size else None
        self.frames = 0
        self._writer: cv2.VideoWriter | None = None
        self._pending: PendingFile | None = None

    def open(self) -> None:
        if not self.path.parent.is_dir():
            raise ReenactError(f"cannot write video {self.path}: folder {self.path.parent} does not exist")
        self._pending = PendingFile(self.path)

    def _start(self, size: tuple[int, int]) -> None:
        if self._pending is None:
            raise RuntimeError(f"{self.describe()} is not open; call open() first")
        writer = cv2.VideoWriter(str(self._pending.temp), cv2.VideoWriter_fourcc(*self.fourcc), self.fps, size)
        if not writer.isOpened():
            raise ReenactError(f"cannot write video {self.path} ({self.fourcc}, {size[0]}x{size[1]})")
        self._writer = writer
        self.size = size
        log.info("writing %s at %dx%d, %.1f fps", self.path, *size, self.fps)

    def send(self, image: np.ndarray, info: OutputInfo | None = None) -> None:
        check_bgr(image)
        if self._writer is None:
            self._start(self.size or (even(image.shape[1]), even(image.shape[0])))
        assert self._writer is not None and self.size is not None
        self._writer.write(letterbox(image, self.size))
        self.frames += 1

    def poll_key(self) -> str | None:
        return None

    def close(self) -> None:
        """Finish the file and move it over ``path`` (nothing is written when no frame came)."""
        self._release()
        if self._pending is not None:
            self._pending.commit()
            self._pending = None

    def abort(self) -> None:
        """Drop what was written; an existing file at ``path`` stays as it was."""
        self._release()
        if self._pending is not None:
            self._pending.discard()
            self._pending = None
            log.warning("%s not written%s", self.path, " (the file already there is kept)" if self.path.exists() else "")

    def _release(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def describe(self) -> str:
        return f"video file {self.path}" + (" (replaced when the run ends)" if self.path.exists() else "")


def has_display() -> bool:
    """Whether a window can be shown (Linux needs X11 or Wayland; Qt aborts the process without one)."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


class WindowSink:
    """A ``cv2.imshow`` preview with an FPS/latency overlay; keys pressed come back from ``poll_key``.

    Use it from one thread only (the runner's output loop, on the main thread: HighGUI
    windows need the main thread on macOS and with Qt).
    """

    name = "window"

    def __init__(self, title: str = "reenact", size: tuple[int, int] | None = None, **_: Any) -> None:
        self.title = title
        self.size = size  # letterbox to this (width, height); None = the frame's own size
        self.frames = 0
        self._keys: list[str] = []
        self._open = False

    def open(self) -> None:
        if not has_display():
            raise ReenactError(
                "no display for the preview window (DISPLAY and WAYLAND_DISPLAY are unset)",
                hint="use --output vcam, --output out.mp4 or --output null on a machine without a screen",
            )
        cv2.namedWindow(self.title, cv2.WINDOW_NORMAL)
        self._open = True

    def _wait_key(self) -> None:
        code = cv2.waitKey(1)
        if code is None or code < 0:
            return
        key = "q" if (code & 0xFF) == 27 else chr(code & 0xFF).lower()
        if key in HOTKEYS:
            self._keys.append(key)

    def send(self, image: np.ndarray, info: OutputInfo | None = None) -> None:
        check_bgr(image)
        if self.size:
            image = letterbox(image, self.size)
        if info is not None and info.overlay:
            image = draw_overlay(image, overlay_lines(info))
        cv2.imshow(self.title, image)
        self.frames += 1
        self._wait_key()

    def poll_key(self) -> str | None:
        """The next hotkey pressed (c/o/n/p/q), or None. Closing the window counts as q."""
        if not self._open:
            return None
        self._wait_key()
        try:
            if cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
                self._keys.append("q")
        except cv2.error:
            self._keys.append("q")
        return self._keys.pop(0) if self._keys else None

    def close(self) -> None:
        if self._open:
            try:
                cv2.destroyWindow(self.title)
                cv2.waitKey(1)
            except cv2.error:
                pass
            self._open = False

    def describe(self) -> str:
        return f"preview window '{self.title}'"


@dataclass(frozen=True)
class VcamConfig:
    """The virtual camera's format."""

    width: int = 1280  # rounded up to even (Chrome needs it); 1280x720 is the safest size
    height: int = 720
    fps: float = 30.0  # rate the latest frame is (re)sent at
    backend: str | None = None  # pyvirtualcam backend name; None = try all
    device: str | None = None  # a specific device (/dev/video2, "OBS Virtual Camera"); None = any


class VirtualCameraSink:
    """Sends frames to a virtual camera through pyvirtualcam (BGR), letterboxed to its size.

    ``send`` only stores the newest frame; a thread of this sink pushes it to the camera at once
    (no sooner than half a frame period after the previous push), and repeats the latest frame at
    the camera's fps while no new one comes (black before the first), so apps never see the camera
    freeze or stall. ``timer`` records "push": how long a new frame waited for that thread.
    """

    name = "vcam"
    any_thread = True  # send() only stores the frame, under a lock

    def __init__(self, config: VcamConfig | None = None, *, clock: Callable[[], float] = time.perf_counter, **kw: Any) -> None:
        cfg = config or VcamConfig(**{k: v for k, v in kw.items() if k in VcamConfig.__dataclass_fields__ and v is not None})
        if cfg.width < 2 or cfg.height < 2 or cfg.fps <= 0:
            raise ValueError(f"virtual camera needs width, height >= 2 and fps > 0, got {cfg}")
        if cfg.width % 2:
            log.info("virtual camera width %d is odd; using %d", cfg.width, even(cfg.width))
            cfg = VcamConfig(even(cfg.width), cfg.height, cfg.fps, cfg.backend, cfg.device)
        self.config = cfg
        self.size = (cfg.width, cfg.height)
        self._clock = clock
        self._cam: Any = None
        self._latest = np.zeros((cfg.height, cfg.width, 3), np.uint8)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._new = threading.Event()  # a frame not yet pushed is waiting
        self._t_new = 0.0  # when it was handed over (this sink's clock)
        self._thread: threading.Thread | None = None
        self.timer = StageTimer(clock=clock)
        self.device = ""
        self.frames_received = 0
        self.frames_sent = 0
        self.error: BaseException | None = None

    def open(self) -> None:
        """Open the virtual camera and start the resend thread; no device → ReenactError with the fix."""
        import pyvirtualcam
        import pyvirtualcam.camera

        c = self.config
        if c.backend is not None and c.backend not in pyvirtualcam.camera.BACKENDS:
            raise ReenactError(
                f"unknown virtual camera backend {c.backend!r}; "
                f"expected one of {', '.join(pyvirtualcam.camera.BACKENDS)} (or none to try all)"
            )
        try:
            self._cam = pyvirtualcam.Camera(
                c.width, c.height, c.fps, fmt=pyvirtualcam.PixelFormat.BGR, backend=c.backend, device=c.device
            )
        except (RuntimeError, ValueError) as exc:
            detail = str(exc).strip()
            raise ReenactError(
                f"no virtual camera could be opened:\n{detail}",
                hint=f"{vcam_fix()}  (then run `reenact doctor`; or use --output window / out.mp4 / null)",
            ) from exc
        self.device = str(self._cam.device)
        log.info("virtual camera: %s (%s backend, %dx%d @ %.0f fps)", self.device, self._cam.backend, *self.size, c.fps)
        self._stop.clear()
        self._thread = threading.Thread(target=self._resend_loop, name="reenact-vcam", daemon=True)
        self._thread.start()

    def send(self, image: np.ndarray, info: OutputInfo | None = None) -> None:
        """Store the newest frame (letterboxed); returns at once, never waits for the camera."""
        check_bgr(image)
        if self.error is not None:
            raise ReenactError(f"virtual camera {self.device} failed: {self.error}")
        boxed = letterbox(image, self.size)
        if boxed is image:
            boxed = image.copy()  # the caller may reuse its buffer
        with self._lock:
            self._latest = boxed
            self._t_new = self._clock()
            self.frames_received += 1
            self._new.set()

    def _resend_loop(self) -> None:
        """Push a new frame as soon as it comes (it waited up to a whole period before 2026-11-30,
        16 ms on average at 30 fps); repeat the latest one a period after the last push."""
        period = 1.0 / self.config.fps
        last: float | None = None
        try:
            while not self._stop.is_set():
                if last is not None:
                    fresh = self._new.is_set()
                    wait = last + (0.5 * period if fresh else period) - self._clock()
                    if wait > 0:
                        (self._stop if fresh else self._new).wait(wait)  # a new frame ends the wait
                        continue
                with self._lock:
                    frame, fresh, t_new = self._latest, self._new.is_set(), self._t_new
                    self._new.clear()
                self._cam.send(frame)
                last = self._clock()
                self.frames_sent += 1
                if fresh:
                    self.timer.record("push", last - t_new)
        except Exception as exc:  # noqa: BLE001 - reported to the runner through send()
            log.error("virtual camera thread stopped: %s", exc)
            self.error = exc

    def poll_key(self) -> str | None:
        return None

    def close(self) -> None:
        self._stop.set()
        self._new.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        if self._cam is not None:
            self._cam.close()
            self._cam = None

    def describe(self) -> str:
        return f"virtual camera {self.device or '(not open)'} at {self.size[0]}x{self.size[1]}, {self.config.fps:.0f} fps"


SinkFactory = Callable[..., Sink]

#: sink name -> factory(**options). Files are chosen by suffix (see :func:`create_sink`).
SINKS: dict[str, SinkFactory] = {
    "vcam": VirtualCameraSink,
    "window": WindowSink,
    "null": NullSink,
}


def register_sink(name: str, factory: SinkFactory) -> None:
    """Add or replace a sink by name (tests, plugins)."""
    SINKS[name] = factory


def create_sink(spec: str, *, size: tuple[int, int] | None = None, fps: float = 30.0, **options: Any) -> Sink:
    """A sink from a CLI value: vcam | window | null | a path ending in .mp4/.avi/.mkv.

    ``size`` is (width, height): the virtual camera's size (default 1280x720), the window's
    letterbox size, or the file's frame size (default: the first frame's).
    """
    suffix = Path(spec).suffix.lower()
    if suffix in FILE_SUFFIXES:
        return FileSink(spec, fps=fps, size=size)
    if spec not in SINKS:
        raise ReenactError(
            f"unknown output {spec!r}; expected one of {', '.join(SINKS)} or a path ending in {', '.join(FILE_SUFFIXES)}"
        )
    if spec == "vcam" and SINKS["vcam"] is VirtualCameraSink:
        w, h = size or (1280, 720)
        return VirtualCameraSink(VcamConfig(width=w, height=h, fps=fps, backend=options.get("backend"),
                                            device=options.get("device")))
    return SINKS[spec](size=size, fps=fps, **options)
