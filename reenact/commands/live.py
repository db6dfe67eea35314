"""`reenact live`: make a target face copy your expression, live, into a virtual camera."""

from __future__ import annotations

from pathlib import Path

import click

from reenact.commands.session_options import pipeline_fields, pipeline_options
from reenact.session import FILE_LONG_SIDE, parse_size


@click.command("live")
@click.option("--target", "targets", multiple=True, required=True, type=click.Path(path_type=Path),
              help="Target face photo (repeat for several; n/p switch between them).")
@click.option("--source", default="0", show_default=True, help="Camera index (0, 1, …), /dev/videoN, or a video file.")
@click.option("--output", "outputs", multiple=True, default=("vcam",), show_default=True,
              help="vcam (virtual camera), window (preview), a file (.mp4/.avi/.mkv) or null; repeat for several.")
@click.option("--backend", default="auto", show_default=True,
              help="auto (TensorRT engines if built, else ONNX Runtime, else PyTorch), onnx, torch or tensorrt.")
@pipeline_options
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
def live(targets, source, outputs, backend, loop, max_frames, size, fps, camera_size, **pipeline):
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
    from reenact.session import SessionConfig, open_session

    file_size = parse_size(size) if size else None  # a file keeps the target's size unless asked
    cam_size = parse_size(camera_size, "--camera-size")
    config = SessionConfig(targets=tuple(targets), source=source, outputs=tuple(outputs), backend=backend, loop=loop,
                           max_frames=max_frames, size=file_size, fps=fps, camera_size=cam_size,
                           **pipeline_fields(**pipeline))
    session = open_session(config, say=click.echo)
    stats = session.run()
    for line in session.summary_lines(stats):
        click.echo(line)
    return 0
