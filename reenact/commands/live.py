"""`reenact live`: make a target face copy your expression, live, into a virtual camera."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import click
import cv2

from reenact.commands.weights_option import WEIGHTS, WEIGHTS_HELP
from reenact.errors import InputError, NoFaceError, ReenactError
from reenact.live.capture import VideoFileSource, parse_source
from reenact.live.sinks import FILE_SUFFIXES
from reenact.outputs import check_input_file, check_outputs

log = logging.getLogger(__name__)

_HOTKEY_HELP = "Hotkeys in the preview window: c calibrate, o overlay, n/p next/previous target, q or Esc quit."


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
    from reenact.live.sinks import FILE_SUFFIXES

    return Path(spec).suffix.lower() in FILE_SUFFIXES


def output_box(outputs, size: tuple[int, int] | None) -> tuple[int, int]:
    """(width, height) of the largest picture any output shows: the target photo is scaled down to
    fit it once, at load, so each frame costs what the output shows, not what the photo holds.

    The virtual camera, window and null show ``size`` (default 1280x720); a video file ``size``,
    or without it the photo's own size up to FILE_LONG_SIDE on its long side.
    """
    boxes = [size or ((FILE_LONG_SIDE, FILE_LONG_SIDE) if is_file_output(o) else (1280, 720)) for o in outputs]
    return max(b[0] for b in boxes), max(b[1] for b in boxes)


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
    lm = detector.detect(img)
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
            status = self.capture.update(self.reenactor.last_points, frame.t_media)  # stream time: a file calibrates alike at any speed
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


@click.command("live")
@click.option("--target", "targets", multiple=True, required=True, type=click.Path(path_type=Path),
              help="Target face photo (repeat for several; n/p switch between them).")
@click.option("--source", default="0", show_default=True, help="Camera index (0, 1, …), /dev/videoN, or a video file.")
@click.option("--output", "outputs", multiple=True, default=("vcam",), show_default=True,
              help="vcam (virtual camera), window (preview), a file (.mp4/.avi/.mkv) or null; repeat for several.")
@click.option("--backend", default="auto", show_default=True,
              help="auto (TensorRT engines if built, else ONNX Runtime, else PyTorch), onnx, torch or tensorrt.")
@click.option("--weights", type=WEIGHTS, default=None, help=WEIGHTS_HELP + " (default: default).")
@click.option("--landmarks", "landmarks", type=click.Choice(["dlib", "mediapipe"]), default="dlib", show_default=True)
@click.option("--calibration", default=None,
              help="Calibration profile name or path (default: the 'default' profile when it exists).")
@click.option("--calibration-dir", default=None, help="Folder of calibration profiles.")
@click.option("--auto-calibrate/--no-auto-calibrate", default=True, show_default=True,
              help="Without a saved profile: take the first second you hold still with a relaxed face "
                   "(lips closed, no smile, brows and eyes as they usually are) as your neutral face "
                   "(this session only; until then your own recent frames stand in, the lips from those with "
                   "your mouth closed, following a held expression only slowly). "
                   "--no-auto-calibrate: the mean neutral face.")
@click.option("--engines-dir", default=None, help="Folder of built TensorRT engines.")
@click.option("--head-motion", is_flag=True,
              help="Also apply your in-plane head rotation, scale and shift (not turning: yaw/pitch are not transferred).")
@click.option("--no-smoothing", is_flag=True, help="Turn off One Euro smoothing of your landmarks.")
@click.option("--color-match", is_flag=True, help="Paper variant: match the generated face's colour to the target's.")
@click.option("--loop", is_flag=True, help="Loop a video-file source (demos, soak tests).")
@click.option("--max-frames", type=click.IntRange(min=1), default=None, help="Stop after N frames.")
@click.option("--size", default=None,
              help="Output size WIDTHxHEIGHT (even numbers, at most 7680 a side), the target letterboxed into it: "
                   "the virtual camera and window (default 1280x720) and, only when given, a video file (default: the "
                   f"target photo's size, its long side capped at {FILE_LONG_SIDE}). A larger photo is scaled down to "
                   "it once, at load.")
@click.option("--fps", type=click.FloatRange(min=0, min_open=True), default=30.0, show_default=True,
              help="Camera and virtual-camera frame rate.")
@click.option("--camera-size", default="640x480", show_default=True, help="Webcam capture size.")
@click.option("--threads", type=click.IntRange(min=1), default=2, show_default=True, help="CPU threads for inference.")
@click.option("--device", default=None, help="Backend device: cpu | cuda (backend default when omitted).")
def live(targets, source, outputs, backend, weights, landmarks, calibration, calibration_dir, auto_calibrate, engines_dir, head_motion,
         no_smoothing, color_match, loop, max_frames, size, fps, camera_size, threads, device):
    """Make the face in a photo copy your expression, live.

    \b
    Examples:
      reenact live --target face.png                          # webcam 0 -> virtual camera
      reenact live --target face.png --output window          # preview only
      reenact live --target a.png --target b.png --output vcam --output window
      reenact live --target face.png --source talk.mp4 --output out.mp4

    A video file as --source plays at its own speed into vcam or window (frames that come too
    late are dropped, as from a camera); into a video file or null it runs as fast as it can and
    keeps every frame. An existing output file is replaced only when the new one is complete; an
    output that is an input (the source or a target) is refused.

    Hotkeys in the preview window: c calibrate (hold a relaxed, neutral face for a second),
    o overlay, n/p next/previous target, q or Esc quit. Ctrl-C, SIGTERM and SIGHUP stop too: the
    file is finished and the exit status is 0. A run that never found a face exits 2.
    Without a calibration profile the first second you hold still with a relaxed face (lips
    closed, no smile, brows and eyes as they usually are) becomes your neutral face for the
    session (until then, your own recent frames stand in;
    --no-auto-calibrate: the mean neutral face); run `reenact calibrate` first, or press c, to
    save one.
    """
    from reenact.calibration import DEFAULT_NAME, list_profiles, load_profile
    from reenact.face.landmarks import create_detector
    from reenact.inference.backend import create_backend
    from reenact.inference.reenactor import Reenactor, ReenactorOptions
    from reenact.live.capture import open_source
    from reenact.live.runner import LiveRunner, RunnerConfig
    from reenact.live.sinks import create_sink
    from reenact.live.timing import format_summary
    from reenact.paths import WEIGHTS_DIR

    file_size = parse_size(size) if size else None  # a file keeps the target's size unless asked
    out_size = file_size or (1280, 720)
    cam_size = parse_size(camera_size, "--camera-size")
    set_threads(threads)
    for t in targets:  # fail fast on paths before loading models
        check_input_file(t, "target image", hint="give a photo of one face (.jpg, .png)")
    source_path = parse_source(source)
    if isinstance(source_path, Path) and not str(source_path).startswith("/dev/video"):
        check_input_file(source_path, "video file", hint="give a video file, or a camera index such as 0")
    file_outputs = [o for o in outputs if Path(o).suffix.lower() in FILE_SUFFIXES]
    check_outputs(file_outputs, [*targets, *([source_path] if isinstance(source_path, Path) else [])], "output video")
    weights = weights or WEIGHTS_DIR
    opts = {"threads": threads} if backend in ("onnx", "torch", "auto") else {}
    be = create_backend(backend, weights, device=device, engines_dir=engines_dir, **opts)
    click.echo(f"model: {be.describe()}")
    detector = create_detector(landmarks)
    target_detector = create_detector("dlib", detect_width=1000) if landmarks == "dlib" else detector

    neutral = None
    name = calibration or DEFAULT_NAME
    if calibration or DEFAULT_NAME in list_profiles(calibration_dir):
        neutral = load_profile(name, calibration_dir).points
        click.echo(f"calibration: {name}")
    elif auto_calibrate:
        click.echo("calibration: none saved — hold still with a relaxed face for a second to calibrate this session "
                   "(press c in the preview or run `reenact calibrate` to save one)")
    else:
        click.echo("calibration: none — using the mean neutral face; press c in the preview or run `reenact calibrate`")

    options = ReenactorOptions(smoothing=not no_smoothing, head_motion=head_motion, color_match=color_match,
                               output_size=output_box(outputs, file_size))
    reenactor = Reenactor(be, detector, neutral=neutral, options=options)
    for t in targets:
        load_target(Path(t), target_detector, reenactor)
    capped = [t for t in reenactor.targets if max(t.photo_size) > FILE_LONG_SIDE]
    if file_size is None and capped and any(is_file_output(o) for o in outputs):
        t = capped[0]
        click.echo(f"output file: the target photo is {t.photo_size[0]}x{t.photo_size[1]}; written at "
                   f"{t.size[0]}x{t.size[1]}, the long side capped at {FILE_LONG_SIDE} (--size WxH sets the size)")
    processor = LiveProcessor(reenactor, calibration or DEFAULT_NAME, calibration_dir,
                              auto_calibrate=auto_calibrate and neutral is None)

    # pacing is for what a person watches (vcam, window); a file into a file keeps every frame
    watched = any(o in ("vcam", "window") for o in outputs)
    src = open_source(source, size=cam_size, fps=fps, paced=watched and max_frames is None, loop=loop)
    sinks = []
    try:
        for o in outputs:
            sinks.append(create_sink(o, size=out_size if o in ("vcam", "window") else file_size, fps=fps))
    except ReenactError:
        src.close()
        raise
    click.echo(f"source: {getattr(src, 'name', source)}")
    for s in sinks:
        click.echo(f"output: {s.describe()}")
    if any(o == "window" for o in outputs):
        click.echo(_HOTKEY_HELP)
    hotkeys = {"c": processor.calibrate, "n": lambda: reenactor.select(1), "p": lambda: reenactor.select(-1)}
    # a video file into a video file keeps every frame (even paced for a window); a camera drops stale ones
    config = RunnerConfig(max_frames=max_frames, drop_frames=False if file_outputs and isinstance(src, VideoFileSource) else None)
    runner = LiveRunner(src, processor, sinks, config=config, hotkeys=hotkeys,
                        keep_output=lambda: processor.frames_with_face > 0)
    stats = runner.run()
    if stats.frames_processed and not processor.frames_with_face:
        raise NoFaceError(f"no face found in any of the {stats.frames_processed} frames from {src.name}"
                          + (f"; {', '.join(file_outputs)} not written" if file_outputs else ""),
                          hint="check that a face is in view and lit (a frame of it through `reenact landmarks`)")
    click.echo(f"stopped ({stats.stopped_by}): {stats.frames_processed} frames processed, {stats.dropped} dropped, "
               f"{stats.fps:.1f} FPS")
    click.echo(format_summary(stats.timings))
    for s in sinks:  # the virtual camera's own thread: how long a new frame waited to be pushed
        timer = getattr(s, "timer", None)
        if timer is not None and timer.stages():
            click.echo(f"{s.name}: " + format_summary(timer.summary()))
    return 0
