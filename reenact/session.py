"""A live session: the pipeline `reenact live` runs, from a typed config to a running runner.

Above ``reenact.live`` (capture, sinks, runner) and ``reenact.inference`` (backends, the
Reenactor): :class:`SessionConfig` says what to run, :func:`open_session` builds the backend,
detectors, reenactor with its targets, the per-frame :class:`LiveProcessor`, source, sinks and
runner from it, and :meth:`LiveSession.run` runs it. :func:`open_pipeline` builds the
per-frame part alone (backend, reenactor with its targets, processor): `reenact bench` and
``scripts/soak_live.py`` time it and `reenact eval`'s expressive sets score it, so each measures
the pipeline `reenact live` runs.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2

from reenact.errors import InputError, NoFaceError, ReenactError
from reenact.live.sinks import FILE_SUFFIXES

if TYPE_CHECKING:
    from reenact.inference.backend import Backend
    from reenact.inference.reenactor import Reenactor
    from reenact.live.runner import LiveRunner

log = logging.getLogger(__name__)

#: Largest output side --size takes (8K); a bigger frame is a typo, not a video.
MAX_SIDE = 7680


def parse_size(value: str, flag: str = "--size") -> tuple[int, int]:
    """WIDTHxHEIGHT: positive, even (encoders and Chrome need even sizes) and at most MAX_SIDE."""
    try:
        w, h = (int(v) for v in value.lower().split("x"))
        if w <= 0 or h <= 0:
            raise ValueError
    except ValueError:
        raise ReenactError(f"{flag} must be WIDTHxHEIGHT such as 1280x720, got {value!r}") from None
    if max(w, h) > MAX_SIDE:
        raise ReenactError(f"{flag} {value} is too large (at most {MAX_SIDE} a side)", hint="e.g. 1280x720 or 1920x1080")
    if w % 2 or h % 2:
        raise ReenactError(f"{flag} {value}: width and height must be even (video encoders and Chrome need it)",
                           hint=f"e.g. {w + w % 2}x{h + h % 2}")
    return w, h


#: A video file written without --size keeps the target photo's size, its long side capped at this.
FILE_LONG_SIDE = 1920


def is_file_output(spec: str) -> bool:
    return Path(spec).suffix.lower() in FILE_SUFFIXES


def output_box(outputs, size: tuple[int, int] | None) -> tuple[int, int]:
    """(width, height) of the largest picture any output shows: the target photo is scaled down to
    fit it once, at load, so each frame costs what the output shows, not what the photo holds.

    The virtual camera, window and null show ``size`` (default 1280x720); a video file ``size``,
    or without it the photo's own size up to FILE_LONG_SIDE on its long side.
    """
    boxes = [size or ((FILE_LONG_SIDE, FILE_LONG_SIDE) if is_file_output(o) else (1280, 720)) for o in outputs]
    return max(b[0] for b in boxes), max(b[1] for b in boxes)


def backend_options(name: str, threads: int) -> dict:
    """The keyword options ``create_backend`` takes for backend ``name``: CPU backends take a thread count."""
    return {"threads": threads} if name in ("onnx", "torch", "auto") else {}


def set_threads(threads: int) -> None:
    """Fix the thread counts of OpenCV (and torch when it is already loaded) so they do not fight."""
    cv2.setNumThreads(max(1, threads // 2))
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    import sys

    if sys.modules.get("torch") is not None:
        sys.modules["torch"].set_num_threads(threads)


def load_target(path: Path, detector, reenactor) -> None:
    """Read and prepare one target photo; a missing, unreadable, face-less or many-faced photo is an error."""
    if not path.is_file():
        raise InputError(f"target image not found: {path}")
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise InputError(f"cannot read target image {path} (not an image, or corrupt)")
    add_target(img, detector.detect(img), reenactor, path)


def add_target(img, lm, reenactor, path: Path) -> None:
    """Give ``reenactor`` the target photo ``img`` (from ``path``) with its landmarks ``lm``: no face
    or several faces is an error; a face that is not at rest is warned about (it stays so)."""
    if not lm.found:
        raise NoFaceError(f"no face found in target {path}", hint="use a clear, frontal photo of one face; check it with `reenact landmarks`")
    if lm.n_faces > 1:
        raise InputError(f"target {path} shows {lm.n_faces} faces; reenact needs exactly one",
                         hint="crop the photo to the one face you want to animate")
    from reenact.face.expression import expression_warning

    warning = expression_warning(lm.points)
    if warning is not None:
        log.warning("target %s: %s", path.name, warning)
    reenactor.add_target(img, lm)


class LiveProcessor:
    """The runner's ``process``: the reenactor plus the calibrate hotkey.

    With ``auto_calibrate`` (no saved profile), the first second the actor holds still with a face
    at rest (lips closed, no smile) becomes the neutral face for this session only, so their own
    face shape does not leak into the target while they have never calibrated; until then their
    own recent frames stand in (:class:`~reenact.calibration.RunningNeutral`). The c hotkey
    recalibrates and saves a profile.
    """

    def __init__(self, reenactor, calibration_name: str, calibration_dir: str | None, auto_calibrate: bool = False) -> None:
        self.reenactor = reenactor
        self.calibration_name = calibration_name
        self.calibration_dir = calibration_dir
        self.capture = None
        self.save = True
        self.message = ""
        self.running = None  # RunningNeutral until the first capture completes (auto mode only)
        self.frames_with_face = 0  # a run that never saw a face made nothing worth keeping
        if auto_calibrate:
            from reenact.calibration import RunningNeutral

            self.running = RunningNeutral()
            self.calibrate(save=False)

    def __call__(self, frame):
        out = self.reenactor(frame)
        self.frames_with_face += bool(self.reenactor.face_found)
        if self.capture is not None:
            status = self.capture.update(self.reenactor.last_points, frame.t_stream)  # stream time: a file calibrates alike at any speed
            self.message = f"calibrating: {status.message}"
            if self.capture.done:
                from reenact.calibration import save_profile

                profile = self.capture.profile(self.calibration_name)
                self.reenactor.set_neutral(profile.points)
                if self.save:
                    path = save_profile(profile, self.calibration_dir)
                    self.message = f"calibrated; saved {path.name}"
                    log.warning("calibration saved to %s", path)
                    if self.capture.findings:
                        self.message += f" — but {self.capture.findings[0]}: press c again with a relaxed face"
                        log.warning("the calibrated face is not at rest (%s); if that is not your relaxed face, "
                                    "press c again with a relaxed face and closed lips", "; ".join(self.capture.findings))
                else:
                    self.message = "calibrated from your first still second (not saved; c to redo and save)"
                    log.warning("calibrated from the first second you held still (this session only; press c in "
                                "the preview or run `reenact calibrate` to save a profile)")
                self.capture = None
                self.running = None
        if self.running is not None:  # applies from the next frame on
            neutral = self.running.update(self.reenactor.last_points)
            if neutral is not None:
                self.reenactor.set_neutral(neutral, provisional=True)
        return out

    def calibrate(self, save: bool = True) -> None:
        """Start a capture: ``save`` (the c hotkey) keeps whatever still face it gets and saves it;
        the automatic one (not saved) waits for a face at rest, so a still smile is not taken."""
        from reenact.calibration import CaptureConfig, NeutralCapture

        self.capture = NeutralCapture(CaptureConfig(require_rest=not save), reference=None if save else self.running)
        self.save = save
        self.message = "calibrating: hold still with a relaxed face"

    def reset(self) -> None:
        self.reenactor.reset()

    def status_lines(self) -> list[str]:
        lines = self.reenactor.status_lines()
        return lines + ([self.message] if self.message else [])


HOTKEY_HELP = "Hotkeys in the preview window: c calibrate, o overlay, n/p next/previous target, q or Esc quit."


@dataclass(frozen=True)
class SessionConfig:
    """What a live session runs: `reenact live`'s options, parsed and typed."""

    targets: tuple[Path, ...]  # target face photos; n/p switch between them
    source: str = "0"  # camera index, /dev/videoN or a video file (as given on the command line)
    outputs: tuple[str, ...] = ("vcam",)  # vcam, window, null or a video file path; one sink each
    backend: str = "auto"  # backend registry name: auto, onnx, torch or tensorrt
    weights: Path | None = None  # weights folder (None: the shipped default weights)
    landmarks: str = "dlib"  # landmark detector for the camera frames: dlib or mediapipe
    calibration: str | None = None  # calibration profile name or path (None: 'default' when it exists)
    calibration_dir: str | None = None  # folder of calibration profiles (None: the standard one)
    auto_calibrate: bool = True  # without a profile, calibrate from the first still, relaxed second
    engines_dir: str | None = None  # folder of built TensorRT engines (None: the standard one)
    head_motion: bool = False  # also apply the actor's in-plane head rotation, scale and shift
    smoothing: bool = True  # One Euro smoothing of the actor's landmarks
    color_match: bool = False  # paper variant: match the generated face's colour to the target's
    loop: bool = False  # loop a video-file source
    max_frames: int | None = None  # stop after this many frames (None: until stopped)
    size: tuple[int, int] | None = None  # (width, height) of every output; None: 1280x720, a file the photo's size
    fps: float = 30.0  # camera and virtual-camera frame rate
    camera_size: tuple[int, int] = (640, 480)  # (width, height) asked of a webcam
    threads: int = 2  # CPU threads for inference (OpenCV gets half)
    device: str | None = None  # backend device, cpu or cuda (None: the backend's default)
    precision: str | None = None  # backend precision, fp32 or fp16 (None: the backend's default)
    # guided weights: 'driver' lays the actor's own mouth interior into the generated mouth (their pixels
    # reach the output, inside the mouth only), 'generated' shows Ω's; the paper variant always paints it
    mouth_interior: str = "driver"


@dataclass
class Pipeline:
    """The per-frame part of a session, built by :func:`open_pipeline`: what `reenact live` runs on
    each frame, and what `reenact bench` and the soak script time."""

    backend: Backend  # Φ and Ω on the chosen backend
    reenactor: Reenactor  # one frame in, one frame out; every target loaded
    processor: LiveProcessor  # the runner's per-frame call (reenactor plus calibration)


@dataclass
class LiveSession:
    """A session ready to run: every part :func:`open_session` built, kept for callers that watch or steer it."""

    config: SessionConfig
    backend: Backend  # Φ and Ω on the chosen backend
    reenactor: Reenactor  # one frame in, one frame out; every target loaded
    processor: LiveProcessor  # the runner's per-frame call (reenactor plus calibration)
    source: object  # the camera or video-file source (reenact.live.capture)
    sinks: list  # one per output (reenact.live.sinks)
    runner: LiveRunner  # capture, process and output threads

    @property
    def file_outputs(self) -> list[str]:
        return [o for o in self.config.outputs if is_file_output(o)]

    def run(self):
        """Run until stopped; the runner's stats. A run that never found a face is a NoFaceError."""
        stats = self.runner.run()
        if stats.frames_processed and not self.processor.frames_with_face:
            files = self.file_outputs
            raise NoFaceError(f"no face found in any of the {stats.frames_processed} frames from {self.source.name}"
                              + (f"; {', '.join(files)} not written" if files else ""),
                              hint="check that a face is in view and lit (a frame of it through `reenact landmarks`)")
        return stats

    def summary_lines(self, stats) -> list[str]:
        """What a finished run did: frames, drops, FPS, and per-stage timing (the virtual camera's thread too)."""
        from reenact.live.timing import format_summary

        lines = [f"stopped ({stats.stopped_by}): {stats.frames_processed} frames processed, {stats.dropped} dropped, "
                 f"{stats.fps:.1f} FPS", format_summary(stats.timings)]
        for s in self.sinks:  # the virtual camera's own thread: how long a new frame waited to be pushed
            timer = getattr(s, "timer", None)
            if timer is not None and timer.stages():
                lines.append(f"{s.name}: " + format_summary(timer.summary()))
        return lines


def _check_paths(config: SessionConfig) -> None:
    """Fail fast on the targets, source and output files, before any model is loaded."""
    from reenact.live.capture import parse_source
    from reenact.outputs import check_input_file, check_outputs

    for t in config.targets:
        check_input_file(t, "target image", hint="give a photo of one face (.jpg, .png)")
    source_path = parse_source(config.source)
    if isinstance(source_path, Path) and not str(source_path).startswith("/dev/video"):
        check_input_file(source_path, "video file", hint="give a video file, or a camera index such as 0")
    check_outputs([o for o in config.outputs if is_file_output(o)],
                  [*config.targets, *([source_path] if isinstance(source_path, Path) else [])], "output video")


def _neutral(config: SessionConfig, say: Callable[[str], None]):
    """The saved neutral face J_s the config names (or the default profile), else None; says which."""
    from reenact.calibration import DEFAULT_NAME, list_profiles, load_profile

    name = config.calibration or DEFAULT_NAME
    if config.calibration or DEFAULT_NAME in list_profiles(config.calibration_dir):
        say(f"calibration: {name}")
        return load_profile(name, config.calibration_dir).points
    if config.auto_calibrate:
        say("calibration: none saved — hold still with a relaxed face for a second to calibrate this session "
            "(press c in the preview or run `reenact calibrate` to save one)")
    else:
        say("calibration: none — using the mean neutral face; press c in the preview or run `reenact calibrate`")
    return None


def mouth_interior_line(cfg, interior: str) -> str:
    """What the session says about the mouth interior it shows."""
    if getattr(cfg, "variant", "guided") != "guided":
        return "mouth interior: generated (the paper variant paints it)"
    if interior == "driver":
        return "mouth interior: driver — your own mouth's pixels (teeth, tongue) reach the output, inside the mouth only"
    return "mouth interior: generated (--mouth-interior generated)"


def _build_reenactor(config: SessionConfig, backend, say: Callable[[str], None], target=None):
    """The Reenactor with every target loaded (a target detector that looks harder than on camera frames);
    ``target`` (image, landmarks, name): one target already detected instead (no detector is loaded)."""
    from reenact.face.landmarks import create_detector
    from reenact.inference.reenactor import Reenactor, ReenactorOptions

    detector = create_detector(config.landmarks) if target is None else None
    neutral = _neutral(config, say)
    options = ReenactorOptions(smoothing=config.smoothing, head_motion=config.head_motion,
                               color_match=config.color_match, output_size=output_box(config.outputs, config.size),
                               mouth_interior=config.mouth_interior)
    reenactor = Reenactor(backend, detector, neutral=neutral, options=options)
    if target is not None:
        add_target(target[0], target[1], reenactor, Path(target[2]))
    else:
        target_detector = create_detector("dlib", detect_width=1000) if config.landmarks == "dlib" else detector
        for t in config.targets:
            load_target(Path(t), target_detector, reenactor)
    capped = [t for t in reenactor.targets if max(t.photo_size) > FILE_LONG_SIDE]
    if config.size is None and capped and any(is_file_output(o) for o in config.outputs):
        t = capped[0]
        say(f"output file: the target photo is {t.photo_size[0]}x{t.photo_size[1]}; written at "
            f"{t.size[0]}x{t.size[1]}, the long side capped at {FILE_LONG_SIDE} (--size WxH sets the size)")
    return reenactor, neutral


def _open_io(config: SessionConfig):
    """The source and one sink per output; the source is closed again when a sink cannot be made."""
    from reenact.live.capture import open_source
    from reenact.live.sinks import create_sink

    # pacing is for what a person watches (vcam, window); a file into a file keeps every frame
    watched = any(o in ("vcam", "window") for o in config.outputs)
    src = open_source(config.source, size=config.camera_size, fps=config.fps,
                      paced=watched and config.max_frames is None, loop=config.loop)
    screen_size = config.size or (1280, 720)
    sinks = []
    try:
        for o in config.outputs:
            sinks.append(create_sink(o, size=screen_size if o in ("vcam", "window") else config.size, fps=config.fps))
    except ReenactError:
        src.close()
        raise
    return src, sinks


def open_pipeline(config: SessionConfig, say: Callable[[str], None] = log.info, target=None,
                  backend: Backend | None = None) -> Pipeline:
    """The per-frame part of the session ``config`` describes: backend, detectors, reenactor with its
    targets and the processor, built as `reenact live` builds them (no source, sinks or runner).

    ``target`` (image, landmarks, name) is for a bench replay recorded where dlib ran: that one
    target, already detected, instead of ``config.targets``, and no landmark detector.
    ``backend``: one already loaded (`reenact eval` runs each method's on many targets) instead of
    the one ``config.backend`` and ``config.weights`` name.
    """
    from reenact.calibration import DEFAULT_NAME
    from reenact.inference.backend import create_backend
    from reenact.paths import WEIGHTS_DIR

    set_threads(config.threads)
    be = backend if backend is not None else create_backend(
        config.backend, config.weights or WEIGHTS_DIR, device=config.device, engines_dir=config.engines_dir,
        precision=config.precision, **backend_options(config.backend, config.threads))
    say(f"model: {be.describe()}")
    say(mouth_interior_line(be.cfg, config.mouth_interior))
    reenactor, neutral = _build_reenactor(config, be, say, target)
    processor = LiveProcessor(reenactor, config.calibration or DEFAULT_NAME, config.calibration_dir,
                              auto_calibrate=config.auto_calibrate and neutral is None)
    return Pipeline(be, reenactor, processor)


def open_session(config: SessionConfig, say: Callable[[str], None] = log.info) -> LiveSession:
    """Build a running session from ``config``: the pipeline (:func:`open_pipeline`), source, sinks
    and runner. ``say`` gets each line a user should read (the CLI prints them)."""
    from reenact.live.capture import VideoFileSource
    from reenact.live.runner import LiveRunner, RunnerConfig

    _check_paths(config)
    pipeline = open_pipeline(config, say)
    reenactor, processor = pipeline.reenactor, pipeline.processor
    src, sinks = _open_io(config)
    say(f"source: {getattr(src, 'name', config.source)}")
    for s in sinks:
        say(f"output: {s.describe()}")
    if "window" in config.outputs:
        say(HOTKEY_HELP)
    hotkeys = {"c": processor.calibrate, "n": lambda: reenactor.select(1), "p": lambda: reenactor.select(-1)}
    files = [o for o in config.outputs if is_file_output(o)]
    # a video file into a video file keeps every frame (even paced for a window); a camera drops stale ones
    runner_config = RunnerConfig(max_frames=config.max_frames,
                                 drop_frames=False if files and isinstance(src, VideoFileSource) else None)
    runner = LiveRunner(src, processor, sinks, config=runner_config, hotkeys=hotkeys,
                        keep_output=lambda: processor.frames_with_face > 0)
    return LiveSession(config, pipeline.backend, reenactor, processor, src, sinks, runner)
