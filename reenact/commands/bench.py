"""`reenact bench`: the FPS benchmark mode (no camera, no window)."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import click
import cv2

from reenact.commands.session_options import pipeline_fields, pipeline_options
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


def _target_image(target: Path | None):
    """The target photo as pixels: ``target``, or the astronaut when none is given."""
    if target is None:
        return default_target()
    img = cv2.imread(str(target), cv2.IMREAD_COLOR)
    if img is None:
        raise InputError(f"cannot read target image {target} (not an image, or corrupt)")
    return img


def _driving_frames(source: str, target: Path | None, n_frames: int) -> tuple[list, float]:
    """The frames that drive the bench and their rate: 'synthetic' (the target letterboxed to a 640x480
    camera frame, talking) or a video file's first ``n_frames``, read as `reenact live` reads it."""
    if source == "synthetic":
        from reenact.face.landmarks import create_detector
        from reenact.live.sinks import letterbox
        from reenact.synthetic import talking_frames

        face = letterbox(_target_image(target), (640, 480))  # a camera-sized driver, whatever the target's size
        lm = create_detector("dlib").detect(face)
        if not lm.found:
            raise InputError("no face in the target image", hint="check it with `reenact landmarks`")
        return talking_frames(face, lm.points, min(n_frames, 120))[0], 30.0
    from reenact.live.capture import open_source

    src = open_source(source, paced=False)
    frames = []
    try:
        while len(frames) < n_frames and (frame := src.read()) is not None:
            frames.append(frame.image)
        return frames, src.fps
    finally:
        src.close()


def _record(source: str, target: Path | None, n_frames: int, record: Path) -> None:
    """Track the target and the source's frames with dlib once and save them as a replay.npz."""
    from reenact import bench as B
    from reenact.face.landmarks import create_detector

    frames, _ = _driving_frames(source, target, n_frames)
    rep = B.record_replay(_target_image(target), frames, create_detector("dlib"))
    rep.save(record)
    click.echo(f"recorded {len(rep.source_points)} frames of landmarks to {record}")


def _bench_one(config, replay, frames: list | None, fps: float, n: int, warmup: int, paced: float | None,
               preset: str | None, source: str):
    """One backend's run over the pipeline `reenact live` builds from ``config`` (session.open_pipeline)."""
    from reenact import bench as B
    from reenact.paths import WEIGHTS_DIR
    from reenact.session import open_pipeline

    target = None
    if replay is not None:  # the target as recorded: no detector (a GPU machine without the dlib model)
        from reenact.face.landmarks import FaceLandmarks

        target = (replay.target, FaceLandmarks(points=replay.target_points, found=True, n_faces=1), source)
    pipe = open_pipeline(config, say=lambda line: click.echo(line, err=True), target=target)
    if preset and pipe.backend.cfg.preset != preset:
        raise ReenactError(f"the weights in {config.weights or WEIGHTS_DIR} are preset {pipe.backend.cfg.preset!r}, "
                           f"not {preset!r}", hint="pass --weights for that preset, or --untrained to time random weights")
    run = B.run_one(pipe.reenactor, frames, replay.source_points if replay else None, n, warmup, paced, config.backend,
                    output_size=config.size, process=pipe.processor, fps=fps)
    if run.face_frames == 0:
        raise InputError(f"no face in any of the {run.frames} measured frames of {source}: the figures would "
                         "time landmark detection alone", hint="bench on a video with a face in view, or on 'synthetic'")
    if run.face_frames < run.frames:
        click.echo(f"warning: a face in only {run.face_frames} of {run.frames} frames; the others time "
                   "landmark detection alone", err=True)
    return run


@click.command("bench")
@click.option("--source", default="synthetic", show_default=True,
              help="video.mp4 (landmarks tracked live), 'synthetic' (the target, letterboxed to 640x480, opening its mouth) or replay.npz.")
@click.option("--target", type=click.Path(path_type=Path), default=None,
              help="Target face photo (default: the astronaut, 512x512). Bench with the photo you go live with: "
                   "it is loaded and checked as `reenact live` loads it (a large photo is scaled to --size once).")
@click.option("--size", default="1280x720", show_default=True,
              help="Output size WIDTHxHEIGHT (as `reenact live --size`): the target is prepared for it and each "
                   "result letterboxed to it (stage 'output'), as the virtual camera does.")
@click.option("--frames", type=click.IntRange(min=1), default=200, show_default=True, help="Frames measured after warm-up.")
@click.option("--warmup", type=click.IntRange(min=0), default=10, show_default=True)
@click.option("--backend", "backends", default="onnx", show_default=True,
              help="Comma-separated backends, benched side by side: onnx, torch, tensorrt, auto.")
@pipeline_options
@click.option("--preset", type=click.Choice(["lite", "paper"]), default=None,
              help="With --untrained: the preset to build. Otherwise it must match the weights.")
@click.option("--variant", type=click.Choice(["guided", "paper"]), default="guided", show_default=True,
              help="With --untrained: the variant to build.")
@click.option("--untrained", is_flag=True, help="Random-initialised networks of --variant/--preset (speed only; needs torch).")
@click.option("--paced", type=click.FloatRange(min=0, min_open=True), default=None, help="Simulate a camera at this fps (latest frame wins, drops counted).")
@click.option("--precision", type=click.Choice(["fp32", "fp16"]), default=None)
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None, help="Write the results as JSON.")
@click.option("--record", type=click.Path(path_type=Path), default=None,
              help="Save the source's landmarks as a replay.npz (for benching on a machine without dlib) and exit.")
def bench(source, target, size, frames, warmup, backends, preset, variant, untrained, paced, precision, json_out, record,
          **pipeline):
    """Measure frames per second and per-stage latency of the full pipeline.

    The pipeline is the one `reenact live` builds with the same options (weights, backend,
    landmarks, calibration, smoothing, head motion, threads, --size, the target): each frame
    goes through live's per-frame processor, with no camera and no window.

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
    from reenact.session import SessionConfig, parse_size

    out_size = parse_size(size)
    names = [b.strip() for b in backends.split(",") if b.strip()]
    inputs = [p for p in (target, None if source == "synthetic" else Path(source)) if p is not None]
    for p in inputs:
        check_input_file(p, "target image" if p is target else "benchmark source",
                         hint=None if p is target else "pass a video file, 'synthetic' or a replay.npz")
    check_outputs([p for p in (json_out, record) if p is not None], inputs)
    if record:
        _record(source, target, frames + warmup, record)
        return 0
    fields = pipeline_fields(**pipeline)
    replay = B.Replay.load(source) if source.endswith(".npz") else None
    with tempfile.TemporaryDirectory(prefix="reenact-bench-") as tmp:
        if untrained:
            fields["weights"] = untrained_weights(variant, preset or "lite", Path(tmp), onnx="onnx" in names or "auto" in names)
        if replay is None and target is None:  # the astronaut, as a photo file live could be given
            target = Path(tmp) / "astronaut.png"
            cv2.imwrite(str(target), default_target())
        driving, fps = (None, 30.0) if replay is not None else _driving_frames(source, target, frames + warmup)
        runs = [_bench_one(SessionConfig(targets=(target,) if replay is None else (), source=source, outputs=("null",), backend=name,
                                         size=out_size, precision=precision, **fields),
                           replay, driving, fps, frames, warmup, paced, preset, source) for name in names]
    click.echo(B.format_table(runs))
    if json_out:
        B.write_json(json_out, runs)
        click.echo(f"wrote {json_out}")
    return 0
