"""The options `reenact live` and `reenact bench` share: everything that sets up the per-frame pipeline.

Both commands take them from here and map them onto :class:`~reenact.session.SessionConfig` with
:func:`pipeline_fields`, so a bench with the same options times the pipeline live runs.
"""

from __future__ import annotations

import click

from reenact.commands.weights_option import WEIGHTS, WEIGHTS_HELP
from reenact.config import MOUTH_INTERIORS

_OPTIONS = (
    click.option("--weights", type=WEIGHTS, default=None, help=WEIGHTS_HELP + " (default: default)."),
    click.option("--landmarks", "landmarks", type=click.Choice(["dlib", "mediapipe"]), default="dlib", show_default=True),
    click.option("--calibration", default=None,
                 help="Calibration profile name or path (default: the 'default' profile when it exists)."),
    click.option("--calibration-dir", default=None, help="Folder of calibration profiles."),
    click.option("--auto-calibrate/--no-auto-calibrate", default=True, show_default=True,
                 help="Without a saved profile: take the first second you hold still with a relaxed face "
                      "(lips closed, no smile, brows and eyes as they usually are) as your neutral face "
                      "(this session only; until then your own recent frames stand in, the lips from those with "
                      "your mouth closed, following a held expression only slowly). "
                      "--no-auto-calibrate: the mean neutral face."),
    click.option("--engines-dir", default=None, help="Folder of built TensorRT engines."),
    click.option("--head-motion", is_flag=True,
                 help="Also apply your in-plane head rotation, scale and shift (not turning: yaw/pitch are not transferred)."),
    click.option("--no-smoothing", is_flag=True, help="Turn off One Euro smoothing of your landmarks."),
    click.option("--color-match", is_flag=True, help="Paper variant: match the generated face's colour to the target's."),
    click.option("--threads", type=click.IntRange(min=1), default=2, show_default=True,
                 help="CPU threads for inference (OpenCV gets half)."),
    click.option("--device", default=None, help="Backend device: cpu | cuda (backend default when omitted)."),
    click.option("--mouth-interior", type=click.Choice(MOUTH_INTERIORS), default="driver", show_default=True,
                 help="Guided weights: 'driver' shows your own mouth interior (teeth, tongue), warped into the "
                      "target's lips and colour-matched — your mouth's pixels reach the output; 'generated' lets "
                      "the network paint it (no teeth). No pixel of yours is shown once your face is lost."),
)


def pipeline_options(command):
    """Add the shared pipeline options to a click command (its function takes them as keywords)."""
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


def pipeline_fields(weights, landmarks, calibration, calibration_dir, auto_calibrate, engines_dir, head_motion,
                    no_smoothing, color_match, threads, device, mouth_interior) -> dict:
    """The shared options' values as :class:`~reenact.session.SessionConfig` keyword arguments."""
    return {"weights": weights, "landmarks": landmarks, "calibration": calibration, "calibration_dir": calibration_dir,
            "auto_calibrate": auto_calibrate, "engines_dir": engines_dir, "head_motion": head_motion,
            "smoothing": not no_smoothing, "color_match": color_match, "threads": threads, "device": device,
            "mouth_interior": mouth_interior}
