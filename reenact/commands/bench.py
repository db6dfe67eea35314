"""`reenact bench`: the FPS benchmark mode (no camera, no window)."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import click
import cv2

from reenact.commands.weights_option import WEIGHTS, WEIGHTS_HELP
from reenact.errors import InputError, ReenactError
from reenact.outputs import check_input_file, check_outputs

log = logging.getLogger(__name__)


def default_target():
    """The public-domain astronaut face from scikit-image, when it is installed."""
    try:
        from skimage import data
    except ImportError as exc:
        raise InputError("no --target given and scikit-image (for the default astronaut face) is not installed",
                         hint="pass --target face.png") from exc
    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def untrained_weights(variant: str, preset: str, folder: Path, onnx: bool) -> Path:
    """Random-initialised weights of a preset (speed only: `--untrained`), exported to ONNX if asked."""
    from reenact.config import model_config
    from reenact.models import build_omega, build_phi
    from reenact.weights_io import save_state, write_config

    cfg = model_config(variant, preset)
    save_state(folder / "phi.safetensors", build_phi(cfg).state_dict(), "phi", cfg)
    save_state(folder / "omega.safetensors", build_omega(cfg).state_dict(), "omega", cfg)
    write_config(folder, cfg, {"untrained": True})
    if onnx:
        from reenact.inference.export import export_onnx

        export_onnx(folder)
    return folder


def _load_source(source: str, target: Path | None, n_frames: int):
    """(replay, target image, driving frames, detector) for a bench source: a replay.npz (no detector),
    'synthetic' (the target letterboxed to a camera frame, talking) or a video file (its first frames)."""
    from reenact import bench as B

    replay = None
    video_frames = None
    detector = None
    if source.endswith(".npz"):
        replay = B.Replay.load(source)
        target_img = replay.target
    else:
        from reenact.face.landmarks import create_detector

        detector = create_detector("dlib")
        target_img = cv2.imread(str(target)) if target else default_target()
        if target_img is None:
            raise InputError(f"cannot read target image {target}")
        if source == "synthetic":
            from reenact.live.sinks import letterbox
            from reenact.synthetic import talking_frames

            face = letterbox(target_img, (640, 480))  # a camera-sized driver, whatever the target's size
            lm = detector.detect(face)
            if not lm.found:
                raise InputError("no face in the target image", hint="check it with `reenact landmarks`")
            video_frames, _ = talking_frames(face, lm.points, min(n_frames, 120))
        else:
            cap = cv2.VideoCapture(source)
            video_frames = []
            while len(video_frames) < n_frames:
                ok, img = cap.read()
                if not ok:
                    break
                video_frames.append(img)
            cap.release()
            if not video_frames:
                raise InputError(f"cannot read any frame from {source}")
    return replay, target_img, video_frames, detector


@click.command("bench")
@click.option("--source", default="synthetic", show_default=True,
              help="video.mp4 (landmarks tracked live), 'synthetic' (the target, letterboxed to 640x480, opening its mouth) or replay.npz.")
@click.option("--target", type=click.Path(path_type=Path), default=None,
              help="Target face photo (default: the astronaut, 512x512). Bench with the photo you go live with: "
                   "a large photo is scaled to --size once, at load, as in `reenact live`.")
@click.option("--size", default="1280x720", show_default=True,
              help="Output size WIDTHxHEIGHT (as `reenact live --size`): the target is prepared for it and each "
                   "result letterboxed to it (stage 'output'), as the virtual camera does.")
@click.option("--frames", type=click.IntRange(min=1), default=200, show_default=True, help="Frames measured after warm-up.")
@click.option("--warmup", type=click.IntRange(min=0), default=10, show_default=True)
@click.option("--backend", "backends", default="onnx", show_default=True,
              help="Comma-separated backends, benched side by side: onnx, torch, tensorrt, auto.")
@click.option("--weights", type=WEIGHTS, default=None, help=WEIGHTS_HELP + " (default: default).")
@click.option("--preset", type=click.Choice(["lite", "paper"]), default=None,
              help="With --untrained: the preset to build. Otherwise it must match the weights.")
@click.option("--variant", type=click.Choice(["guided", "paper"]), default="guided", show_default=True,
              help="With --untrained: the variant to build.")
@click.option("--untrained", is_flag=True, help="Random-initialised networks of --variant/--preset (speed only; needs torch).")
@click.option("--paced", type=click.FloatRange(min=0, min_open=True), default=None, help="Simulate a camera at this fps (latest frame wins, drops counted).")
@click.option("--device", default=None, help="cpu | cuda (backend default when omitted).")
@click.option("--precision", type=click.Choice(["fp32", "fp16"]), default=None)
@click.option("--threads", type=click.IntRange(min=1), default=2, show_default=True, help="CPU threads for ONNX Runtime / torch / OpenCV.")
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None, help="Write the results as JSON.")
@click.option("--record", type=click.Path(path_type=Path), default=None,
              help="Save the source's landmarks as a replay.npz (for benching on a machine without dlib) and exit.")
def bench(source, target, size, frames, warmup, backends, weights, preset, variant, untrained, paced, device, precision, threads,
          json_out, record):
    """Measure frames per second and per-stage latency of the full pipeline.

    \b
    Examples:
      reenact bench                                   # shipped weights, ONNX Runtime, synthetic driver
      reenact bench --backend onnx,torch --json out.json
      reenact bench --source driver.mp4 --paced 30
      reenact bench --source driver.mp4 --target phone_photo.jpg --size 1280x720
      reenact bench --record replay.npz               # then, on a GPU machine:
      reenact bench --source replay.npz --backend torch --device cuda --precision fp16
    """
    from reenact import bench as B
    from reenact.inference.backend import create_backend
    from reenact.inference.reenactor import Reenactor, ReenactorOptions
    from reenact.paths import WEIGHTS_DIR
    from reenact.session import backend_options, parse_size

    out_size = parse_size(size)
    cv2.setNumThreads(threads)
    names = [b.strip() for b in backends.split(",") if b.strip()]
    inputs = [p for p in (target, None if source == "synthetic" else Path(source)) if p is not None]
    for p in inputs:
        check_input_file(p, "target image" if p is target else "benchmark source",
                         hint=None if p is target else "pass a video file, 'synthetic' or a replay.npz")
    check_outputs([p for p in (json_out, record) if p is not None], inputs)
    replay, target_img, video_frames, detector = _load_source(source, target, frames + warmup)
    if record:
        rep = B.record_replay(target_img, video_frames, detector)
        rep.save(record)
        click.echo(f"recorded {len(rep.source_points)} frames of landmarks to {record}")
        return 0

    tmp = None
    if untrained:
        tmp = tempfile.TemporaryDirectory(prefix="reenact-bench-")
        weights = untrained_weights(variant, preset or "lite", Path(tmp.name), onnx="onnx" in names or "auto" in names)
    weights = weights or WEIGHTS_DIR
    runs = []
    target_lm = None
    try:
        for name in names:
            be = create_backend(name, weights, device=device, precision=precision, **backend_options(name, threads))
            if preset and be.cfg.preset != preset:
                raise ReenactError(f"the weights in {weights} are preset {be.cfg.preset!r}, not {preset!r}",
                                   hint="pass --weights for that preset, or --untrained to time random weights")
            r = Reenactor(be, detector, options=ReenactorOptions(output_size=out_size))
            if replay is not None:
                from reenact.face.landmarks import FaceLandmarks

                r.add_target(target_img, FaceLandmarks(points=replay.target_points, found=True, n_faces=1))
            else:
                from reenact.face.landmarks import create_detector

                if target_lm is None:  # as `reenact live` loads a target: look harder than on camera frames
                    target_lm = create_detector("dlib", detect_width=1000).detect(target_img)
                r.add_target(target_img, target_lm)
            click.echo(f"benching {be.describe()} …", err=True)
            run = B.run_one(r, video_frames, replay.source_points if replay else None, frames, warmup, paced, name,
                            output_size=out_size)
            if run.face_frames == 0:
                raise InputError(f"no face in any of the {run.frames} measured frames of {source}: the figures would "
                                 "time landmark detection alone", hint="bench on a video with a face in view, or on 'synthetic'")
            if run.face_frames < run.frames:
                click.echo(f"warning: a face in only {run.face_frames} of {run.frames} frames; the others time "
                           "landmark detection alone", err=True)
            runs.append(run.to_dict())
    finally:
        if tmp is not None:
            tmp.cleanup()
    click.echo(B.format_table(runs))
    if json_out:
        B.write_json(json_out, runs)
        click.echo(f"wrote {json_out}")
    return 0
