"""``reenact calibrate``: capture the actor's neutral face and save it as a profile."""

from __future__ import annotations

import sys

import click

from reenact.errors import ReenactError


@click.command()
@click.option("--source", default="0", show_default=True, help="Camera index (0, 1, ...) or a video file.")
@click.option("--name", default="default", show_default=True, help="Profile name (reenact live --calibration NAME).")
@click.option("--calibration-dir", type=click.Path(file_okay=False), default=None,
              help="Folder for profiles (default: the calibration folder; REENACT_HOME overrides).")
@click.option("--detector", type=click.Choice(["dlib", "mediapipe"]), default="dlib", show_default=True,
              help="Landmark detector; use the same one as in live mode.")
@click.option("--size", default="640x480", show_default=True, help="Camera frame size WIDTHxHEIGHT.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=30.0, show_default=True,
              help="Give up after this many seconds without a still face.")
def calibrate(source: str, name: str, calibration_dir: str | None, detector: str, size: str, timeout: float) -> None:
    """Capture your neutral face: look into the camera with a relaxed face and keep still for a second.

    Live mode then transfers your expression relative to this face, so your own face
    shape does not leak into the target. Redo it when the camera, lighting or your
    position changes a lot.
    """
    from reenact.calibration import NeutralCapture, check_name, save_profile
    from reenact.face.landmarks import create_detector
    from reenact.live.capture import open_source
    from reenact.session import parse_size

    check_name(name)
    det = create_detector(detector)
    src = open_source(source, size=parse_size(size), paced=False)
    capture = NeutralCapture(detector=detector)
    click.echo(f"calibrating from {src.name}: look into the camera with a relaxed, neutral face and keep still", err=True)
    frames = 0
    live_bar = sys.stderr.isatty()  # a redrawn bar on a terminal; one line per change of state in a log
    last_message = None
    try:
        while not capture.done:
            frame = src.read()
            if frame is None:
                if src.ended:
                    raise ReenactError(
                        f"{src.name} ended before the face was still for {capture.config.hold_s:.0f} s",
                        hint="use a video (or the camera) with a steady, neutral face for at least a second",
                    )
                continue
            frames += 1
            if frame.t_stream > timeout:
                raise ReenactError(
                    f"no still face within {timeout:.0f} s",
                    hint="face the camera in good light, relax your face and keep still; check `reenact doctor`",
                )
            lm = det.track(frame.image)
            status = capture.update(lm.points if lm.found else None, frame.t_stream)
            if live_bar:
                bar = "#" * int(status.progress * 20)
                click.echo(f"\r[{bar:<20}] {status.message:<45}", nl=False, err=True)
            elif status.message != last_message:
                click.echo(status.message, err=True)
            last_message = status.message
    finally:
        if live_bar:
            click.echo("", err=True)
        src.close()
    profile = capture.profile(name)
    path = save_profile(profile, calibration_dir)
    click.echo(f"saved calibration '{name}' ({profile.frames} frames, {frames} read) to {path}")
    if capture.findings:
        click.echo(f"warning: {' and '.join(capture.findings)} in the captured face; your expressions are measured "
                   "from it, so if that is not your relaxed face, run this again with a relaxed face and closed lips",
                   err=True)
