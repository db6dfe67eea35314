"""`reenact landmarks IMAGE`: check whether a target photo works before going live.

Finds the face, draws its 68 landmarks, saves the aligned 256x256 crop the networks will
see, and warns about what makes a poor target: a small face, a turned or tilted head,
a smile or an open mouth (the target's own expression is where yours is added); refuses a photo
with several faces, as `reenact live` does.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import click
import numpy as np

from reenact.errors import InputError, NoFaceError
from reenact.face.expression import expression_warning
from reenact.outputs import check_output, check_outputs, huge_target_warning, write_image

log = logging.getLogger(__name__)

#: Below this distance between the eye centres (image px) the crop is mostly upscaled blur.
MIN_INTEROCULAR_PX = 40.0
#: Below this distance between the eye centres *in the output* (after the photo is scaled to the
#: output size) the face looks small in a video call and its paste-back has few pixels to work with.
MIN_OUTPUT_INTEROCULAR_PX = 80.0
#: Above these the face is turned/tilted enough that the frontal model does worse.
MAX_YAW_DEG = 25.0
MAX_ROLL_DEG = 20.0

#: BGR colour per face part for the annotated image.
_PART_COLOURS = {
    "jaw": (255, 200, 0),
    "right_brow": (0, 200, 255),
    "left_brow": (0, 200, 255),
    "nose_bridge": (0, 255, 0),
    "nose_bottom": (0, 255, 0),
    "right_eye": (255, 0, 255),
    "left_eye": (255, 0, 255),
    "outer_lip": (0, 0, 255),
    "inner_lip": (80, 80, 255),
}


@dataclass
class FaceReport:
    """What `reenact landmarks` found out about one photo (the --json summary)."""

    image: str
    width: int
    height: int
    detector: str
    found: bool = False
    n_faces: int = 0
    box: list[int] = field(default_factory=list)  # x0, y0, x1, y1 of the landmarks, image px
    interocular_px: float = 0.0  # distance between the eye centres
    roll_deg: float = 0.0  # in-plane tilt of the face, positive = clockwise on screen
    yaw_estimate: float = 0.0  # rough head turn in degrees (+ = nose towards image right), +-10 deg
    output_size: list[int] = field(default_factory=list)  # width, height of the output it was checked for
    used_size: list[int] = field(default_factory=list)  # width, height the photo is composed at (scaled down once)
    shown_scale: float = 0.0  # output px per photo px once letterboxed into the output
    output_interocular_px: float = 0.0  # distance between the eye centres in the output
    warnings: list[str] = field(default_factory=list)
    points: list[list[float]] = field(default_factory=list)  # [68][x, y] image px
    annotated: str | None = None
    crop: str | None = None


def read_image(path: Path) -> np.ndarray:
    """Read an image file as BGR uint8; a clear InputError when it is not a readable image."""
    import cv2

    try:
        data = np.fromfile(str(path), dtype=np.uint8)  # also works for non-ASCII paths
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise InputError(f"{path} is not a readable image (corrupt, empty or an unsupported format)",
                         hint="use a JPEG or PNG photo")
    return image


def yaw_estimate_deg(points_crop: np.ndarray) -> float:
    """Rough head yaw from the nose tip's position between the jaw sides and the outer eye corners.

    In the aligned crop (roll removed), a frontal face has the nose tip (30) midway between
    jaw points 0/16 and eye corners 36/45. Turning the head by θ moves the nose tip by about
    d·sinθ while the face half-width shrinks to (W/2)·cosθ; with the nose standing out
    d ≈ W/4, the asymmetry a = (2r - 1) ≈ tanθ / 2, so θ ≈ atan(2a). Good to about ±10°.
    """
    x = points_crop[:, 0]
    ratios = []
    for left, right in ((0, 16), (36, 45)):
        span = x[right] - x[left]
        if span > 1e-3:
            ratios.append((x[30] - x[left]) / span)
    if not ratios:
        return 90.0
    asym = 2.0 * float(np.mean(ratios)) - 1.0
    return float(np.degrees(np.arctan(2.0 * asym)))


def analyse(image: np.ndarray, landmarks, report: FaceReport) -> None:
    """Fill the report's geometry and warnings from found landmarks."""
    from reenact.face.align import align_points
    from reenact.face.topology import interocular

    pts = landmarks.points
    al = align_points(pts)
    report.found = True
    report.n_faces = int(max(landmarks.n_faces, 1))
    report.box = [int(v) for v in landmarks.box]
    report.interocular_px = round(interocular(pts), 2)
    report.roll_deg = round(-al.angle_deg, 2)
    report.yaw_estimate = round(yaw_estimate_deg(al.to_crop(pts)), 1)
    report.points = [[round(float(x), 2), round(float(y), 2)] for x, y in pts]
    if report.interocular_px < MIN_INTEROCULAR_PX:
        report.warnings.append(
            f"the face is small ({report.interocular_px:.0f} px between the eyes, want >= {MIN_INTEROCULAR_PX:.0f}): "
            "the 256x256 crop will be upscaled and blurry; use a closer or larger photo")
    if abs(report.yaw_estimate) > MAX_YAW_DEG:
        side = "right" if report.yaw_estimate > 0 else "left"
        report.warnings.append(
            f"the head looks turned (about {abs(report.yaw_estimate):.0f} deg, nose towards the image {side}): "
            "a frontal photo works best")
    if abs(report.roll_deg) > MAX_ROLL_DEG:
        report.warnings.append(
            f"the head is tilted {report.roll_deg:+.0f} deg in the picture: it is levelled in the crop, "
            "but an upright photo works best")
    expression = expression_warning(pts)
    if expression is not None:
        report.warnings.append(expression)
    huge = huge_target_warning(report.image, (report.width, report.height))
    if huge is not None:
        report.warnings.append(huge)


def check_output_size(report: FaceReport, output_size: tuple[int, int]) -> None:
    """Fill in the size the target is used at in an output of ``output_size`` and warn when the face is
    too small there (`reenact live` scales a larger photo down to the output once, and the output
    letterboxes the result)."""
    from reenact.inference.reenactor import fit_size

    ow, oh = output_size
    report.output_size = [ow, oh]
    report.used_size = list(fit_size((report.width, report.height), output_size))
    report.shown_scale = round(min(ow / report.width, oh / report.height), 4)
    report.output_interocular_px = round(report.interocular_px * report.shown_scale, 1)
    if report.found and report.output_interocular_px < MIN_OUTPUT_INTEROCULAR_PX:
        report.warnings.append(
            f"in a {ow}x{oh} output the face is only {report.output_interocular_px:.0f} px between the eyes "
            f"(want >= {MIN_OUTPUT_INTEROCULAR_PX:.0f}): it will look small and soft; use a photo where the face "
            "fills more of the picture (crop it closer)")


def draw_landmarks(image: np.ndarray, points: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """A copy of the image with the face box, the part outlines and the 68 points drawn."""
    import cv2

    from reenact.face.topology import CLOSED_PARTS, PARTS, interocular

    out = image.copy()
    scale = max(interocular(points) / 60.0, 0.5)
    r = max(1, int(round(2 * scale)))
    t = max(1, int(round(scale)))
    x0, y0, x1, y1 = box
    cv2.rectangle(out, (x0, y0), (x1, y1), (200, 200, 200), t, cv2.LINE_AA)
    shift = 4
    fixed = np.round(points * (1 << shift)).astype(np.int32)
    for part, (a, b) in PARTS.items():
        colour = _PART_COLOURS[part]
        cv2.polylines(out, [fixed[a:b]], part in CLOSED_PARTS, colour, t, cv2.LINE_AA, shift)
        for p in fixed[a:b]:
            cv2.circle(out, (int(p[0]), int(p[1])), r << shift, colour, -1, cv2.LINE_AA, shift)
    return out


@click.command("landmarks")
@click.argument("image", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Annotated image to write. Default: IMAGE_landmarks.png beside IMAGE. "
                   "The aligned 256x256 crop goes beside it as IMAGE_crop.png.")
@click.option("--crop", "crop_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write the aligned 256x256 crop. Default: IMAGE_crop.png beside the annotated image.")
@click.option("--json", "as_json", is_flag=True,
              help="Print a JSON summary (found, n_faces, box, interocular_px, roll_deg, yaw_estimate, warnings, "
                   "points) on stdout instead of text.")
@click.option("--detector", type=click.Choice(["dlib", "mediapipe"]), default="dlib", show_default=True,
              help="Landmark detector (mediapipe needs the optional extra).")
@click.option("--size", default="1280x720", show_default=True,
              help="Output size WIDTHxHEIGHT the target will be used at (as `reenact live --size`).")
def landmarks(image: Path, out: Path | None, crop_path: Path | None, as_json: bool, detector: str, size: str) -> int:
    """Check whether a target photo works: find the face and draw its 68 landmarks.

    \b
    Writes two files (unless told otherwise):
      IMAGE_landmarks.png   the photo with the face box and the 68 points drawn
      IMAGE_crop.png        the aligned 256x256 crop the networks see
    and says the size the photo is used at in the output (--size, default 1280x720, as `reenact
    live`). Warns when the face is small (< 40 px between the eyes in the photo, or < 80 px once
    scaled to the output), turned or tilted, smiling or open-mouthed (the target keeps its own
    expression under yours), or far larger than any output shows (over about 4K). Exits 2, writing
    nothing, when there is no face or several (`reenact live` needs exactly one), when the file is
    not a readable image, or when --out or --crop names IMAGE itself. Existing files are replaced
    only by complete ones.

    \b
    Examples:
      reenact landmarks face.jpg
      reenact landmarks face.jpg --json --out /tmp/check.png
    """
    from reenact.face.align import align_points
    from reenact.face.landmarks import create_detector
    from reenact.session import parse_size

    output_size = parse_size(size)
    out = out if out is not None else image.with_name(f"{image.stem}_landmarks.png")
    crop_path = crop_path if crop_path is not None else out.with_name(f"{image.stem}_crop.png")
    check_output(out, [image], what="annotated image", flag="--out", create_folder=True)
    check_output(crop_path, [image], what="crop", flag="--crop", create_folder=True)
    check_outputs([out, crop_path], [], what="output image", create_folder=True)  # --out and --crop naming one file
    img = read_image(image)
    h, w = img.shape[:2]
    report = FaceReport(image=str(image), width=w, height=h, detector=detector)
    kwargs = {"detect_width": min(w, 1000)} if detector == "dlib" else {}  # a photo: look harder than live
    det = create_detector(detector, **kwargs)
    lm = det.detect(img)
    if not lm.found:
        if as_json:
            click.echo(json.dumps(report.__dict__, indent=2))
        raise NoFaceError(f"no face found in {image}",
                          hint="use a photo of one face, roughly frontal, at least ~80 px wide (eyes >= 40 px apart)")
    analyse(img, lm, report)
    if report.n_faces > 1:
        if as_json:
            click.echo(json.dumps(report.__dict__, indent=2))
        raise InputError(f"{image} shows {report.n_faces} faces; reenact live needs exactly one",
                         hint="crop the photo to the one face you want to animate")
    check_output_size(report, output_size)
    write_image(out, draw_landmarks(img, lm.points, lm.box))
    write_image(crop_path, align_points(lm.points).crop(img))
    report.annotated, report.crop = str(out), str(crop_path)
    if as_json:
        click.echo(json.dumps(report.__dict__, indent=2))
        return 0
    faces = "1 face" if report.n_faces == 1 else f"{report.n_faces} faces"
    click.echo(f"{image}: {faces} found ({detector}); box {tuple(report.box)}, "
               f"{report.interocular_px:.0f} px between the eyes, roll {report.roll_deg:+.0f} deg, "
               f"yaw about {report.yaw_estimate:+.0f} deg")
    ow, oh = report.output_size
    uw, uh = report.used_size
    used = (f"scaled {report.shown_scale:.2f}x to {uw}x{uh} once, at load" if (uw, uh) != (w, h)
            else f"upscaled {report.shown_scale:.2f}x by the output" if report.shown_scale > 1 else "used as it is")
    click.echo(f"in a {ow}x{oh} output: {w}x{h} photo {used}; "
               f"{report.output_interocular_px:.0f} px between the eyes there")
    click.echo(f"wrote {out} (68 landmarks) and {crop_path} (aligned 256x256 crop)")
    for msg in report.warnings:
        click.echo(f"warning: {msg}")
    if not report.warnings:
        click.echo("looks good as a target")
    return 0
