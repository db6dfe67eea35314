"""`reenact live`: make a target face copy your expression, live, into a virtual camera."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import click
import cv2

from reenact.errors import InputError, NoFaceError, ReenactError

log = logging.getLogger(__name__)

_HOTKEY_HELP = "Hotkeys in the preview window: c calibrate, o overlay, n/p next/previous target, q or Esc quit."


def parse_size(value: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in value.lower().split("x"))
        if w <= 0 or h <= 0:
            raise ValueError
    except ValueError:
        raise ReenactError(f"--size must be WIDTHxHEIGHT such as 1280x720, got {value!r}") from None
    return w, h


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
    from reenact.commands.landmarks import expression_warning

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
        if auto_calibrate:
            from reenact.calibration import RunningNeutral

            self.running = RunningNeutral()
            self.calibrate(save=False)

    def __call__(self, frame):
        out = self.reenactor(frame)
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
@click.option("--weights", type=click.Path(path_type=Path), default=None, help="Weights folder (default: the shipped weights).")
@click.option("--landmarks", "landmarks", type=click.Choice(["dlib", "mediapipe"]), default="dlib", show_default=True)
@click.option("--calibration", default=None,
              help="Calibration profile name or path (default: the 'default' profile when it exists).")
@click.option("--calibration-dir", default=None, help="Folder of calibration profiles.")
@click.option("--auto-calibrate/--no-auto-calibrate", default=True, show_default=True,
              help="Without a saved profile: take the first second you hold still with a relaxed face "
                   "(lips closed, no smile) as your neutral face "
                   "(this session only; until then your own recent frames stand in, the lips from those with "
                   "your mouth closed). "
                   "--no-auto-calibrate: the mean neutral face.")
@click.option("--engines-dir", default=None, help="Folder of built TensorRT engines.")
@click.option("--head-motion", is_flag=True,
              help="Also apply your in-plane head rotation, scale and shift (not turning: yaw/pitch are not transferred).")
@click.option("--no-smoothing", is_flag=True, help="Turn off One Euro smoothing of your landmarks.")
@click.option("--color-match", is_flag=True, help="Paper variant: match the generated face's colour to the target's.")
@click.option("--loop", is_flag=True, help="Loop a video-file source (demos, soak tests).")
@click.option("--max-frames", type=int, default=None, help="Stop after N frames (a video file then runs as fast as possible).")
@click.option("--size", default=None,
              help="Output size WIDTHxHEIGHT, the target letterboxed into it: the virtual camera and window "
                   "(default 1280x720) and, only when given, a video file (default: the target photo's size).")
@click.option("--fps", type=float, default=30.0, show_default=True, help="Camera and virtual-camera frame rate.")
@click.option("--camera-size", default="640x480", show_default=True, help="Webcam capture size.")
@click.option("--threads", type=int, default=2, show_default=True, help="CPU threads for inference.")
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

    Hotkeys in the preview window: c calibrate (hold a relaxed, neutral face for a second),
    o overlay, n/p next/previous target, q or Esc quit. Ctrl-C stops too.
    Without a calibration profile the first second you hold still with a relaxed face (lips
    closed, no smile) becomes your neutral face for the session (until then, your own recent
    frames stand in;
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
    cam_size = parse_size(camera_size)
    set_threads(threads)
    for t in targets:  # fail fast on paths before loading models
        if not Path(t).is_file():
            raise InputError(f"target image not found: {t}")
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

    options = ReenactorOptions(smoothing=not no_smoothing, head_motion=head_motion, color_match=color_match)
    reenactor = Reenactor(be, detector, neutral=neutral, options=options)
    for t in targets:
        load_target(Path(t), target_detector, reenactor)
    processor = LiveProcessor(reenactor, calibration or DEFAULT_NAME, calibration_dir,
                              auto_calibrate=auto_calibrate and neutral is None)

    src = open_source(source, size=cam_size, fps=fps, paced=max_frames is None, loop=loop)
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
    runner = LiveRunner(src, processor, sinks, config=RunnerConfig(max_frames=max_frames), hotkeys=hotkeys)
    stats = runner.run()
    click.echo(f"stopped ({stats.stopped_by}): {stats.frames_processed} frames processed, {stats.dropped} dropped, "
               f"{stats.fps:.1f} FPS")
    click.echo(format_summary(stats.timings))
    return 0
