"""Eye-opening retargeting (issue 17): a driver's blink closes the target's lids whatever the two eye sizes.

J_gen = L_t + (L_s − J_s) moves the target's lids by the driver's displacement in pixels, so a
small-eyed driver who closes their eyes only squeezes a large-eyed target's. Here an eye that the
driver closes (opening below their neutral's) is set to the target's opening times the driver's
opening relative to their neutral: ``gap(J_gen) = gap(L_t) · gap(L_s) / gap(J_s)``, per lid pair,
measured across the eye (perpendicular to its corner line); an eye opened as wide or wider keeps
Φ's displacement (a ratio would tie a target photographed with narrow eyes to narrow eyes: on
GRID's self-reenactment pairs, whose target frames are sometimes mid-blink, it raised the landmark
error). Only the upper lid moves (a blink is the upper lid's); corners, lower lids and every other
point stay as Φ left them.

Pure geometry on [68,2] canonical-crop points. A warp cannot shut an eye, only squeeze it, so the
lids are also painted (``paint_lids``, ``draw_lashes``: the target's skin inpainted over the eye
and a lash line, faded in as the eye closes), in the crop for Ω and at full resolution for the paste-back.
"""

from __future__ import annotations

import cv2
import numpy as np

from reenact.face.rasterize import polygon_mask
from reenact.face.topology import LID_PAIRS

#: Per eye: its corner points (outer/inner, along the eye line) and its lid pairs (upper, lower;
#: ``topology.LID_PAIRS``): the subject's right eye (image left), then the left.
EYES: tuple[tuple[tuple[int, int], tuple[tuple[int, int], ...]], ...] = (((36, 39), LID_PAIRS[0]), ((42, 45), LID_PAIRS[1]))
#: Largest driver opening over neutral passed on (wide-open, surprised eyes), and the smallest
#: neutral opening (crop px) a ratio is taken over (a neutral captured mid-blink gives no ratio).
MAX_RATIO = 1.5
MIN_NEUTRAL_GAP = 1.0


def _down(points: np.ndarray, corners: tuple[int, int]) -> np.ndarray:
    """Unit vector across an eye, pointing down in the image (its corner line turned by +90°)."""
    ex = points[corners[1]] - points[corners[0]]
    n = float(np.hypot(*ex))
    if n < 1e-6:
        return np.array([0.0, 1.0])
    ex = ex / n
    return np.array([-ex[1], ex[0]])


def lid_gaps(points: np.ndarray) -> np.ndarray:
    """[2,2] lid gaps (lower lid minus upper lid, across the eye; px) per eye and lid pair."""
    p = np.asarray(points, np.float64)
    return np.array([[float((p[b] - p[a]) @ _down(p, corners)) for a, b in pairs] for corners, pairs in EYES])


def eye_ratios(L_s: np.ndarray, J_s: np.ndarray, max_ratio: float = MAX_RATIO) -> np.ndarray:
    """[2] each eye's opening in L_s over that in the neutral J_s, clipped to [0, max_ratio]
    (1 where the neutral eye is closed or degenerate: no ratio can be read from it)."""
    s, n = lid_gaps(L_s).mean(1), lid_gaps(J_s).mean(1)
    ok = n >= MIN_NEUTRAL_GAP
    return np.where(ok, np.clip(s / np.where(ok, n, 1.0), 0.0, max_ratio), 1.0)


def retarget_eyes(jgen: np.ndarray, L_t: np.ndarray, L_s: np.ndarray, J_s: np.ndarray,
                  max_ratio: float = MAX_RATIO) -> np.ndarray:
    """J_gen [68,2] with each closing eye's lid gaps set to L_t's times the driver's opening ratio (L_s over J_s).

    For an eye whose :func:`eye_ratios` is below 1, each upper lid point (37, 38, 43, 44) moves
    across the eye so that its gap to the lower lid becomes the target's gap times the ratio; an
    eye at or above its neutral opening, and every other point, stay as Φ left them. A new array, float32.
    """
    out = np.asarray(jgen, np.float64).copy()
    if out.shape != (68, 2):
        raise ValueError(f"J_gen must be [68,2], got {out.shape}")
    ratios = eye_ratios(L_s, J_s, max_ratio)
    want = np.maximum(lid_gaps(L_t), 0.0) * ratios[:, None]  # the target's open-eye gaps, scaled
    for e, (corners, pairs) in enumerate(EYES):
        if ratios[e] >= 1.0:
            continue
        down = _down(out, corners)
        for k, (a, b) in enumerate(pairs):
            gap = float((out[b] - out[a]) @ down)
            out[a] += (gap - want[e, k]) * down
    return out.astype(np.float32)




# --------------------------------------------------------------------------- lids
#: An eye's lid is painted over it as its opening (J_gen's lid gap over the target's) falls from
#: ``LID_FROM`` to ``LID_FULL`` (linear between): a warp only squeezes an eye, the iris and lash line
#: stay visible, so a closing eye is faded to the target's own skin, inpainted where the eye was, and
#: a lash line is drawn along the closed lid. dlib reads a shut eye at ~0.4-0.5 of its open gap.
LID_FROM, LID_FULL = 0.7, 0.45
#: The closed lid's lash line: its colour (BGR) and opacity, and its width (crop px at 256²) at the
#: middle of the lid; it thins to ``LASH_TAPER`` of that at the corners and follows a smooth curve
#: through the corners and the lid pairs. Above it the lid margin's shadow: ``LID_SHADOW`` px high,
#: darkening the skin by up to ``LID_SHADOW_DARKEN``. A closed eye is a thin curved line under a
#: shaded lid margin, not a drawn band: dlib reads the band's two edges as two open lids. Chosen on
#: 72 training-split London targets (``scripts/lid_probe.py``) and checked on validation (MODEL_CARD).
LASH_COLOUR = (45, 40, 50)
LASH_OPACITY = 0.8
LASH_WIDTH = 1.4
LASH_TAPER = 0.35
LID_SHADOW = 2.5
LID_SHADOW_DARKEN = 0.5
#: The painted lid also covers this far (crop px at 256²) above the open eye's upper lid points: its
#: lashes and liner lie above them, and left uncovered they show as a dark arc that dlib takes for an
#: open upper lid.
LID_COVER = 3.0
LASH_HEIGHT = 0.35  # where the line runs between the lower lid (0) and the upper (1)


def lid_amounts(jgen: np.ndarray, L_t: np.ndarray) -> np.ndarray:
    """[2] how far each eye's lid is painted (0 open … 1 shut), from J_gen's lid gaps over L_t's."""
    t = np.maximum(lid_gaps(L_t).mean(1), MIN_NEUTRAL_GAP)
    r = lid_gaps(jgen).mean(1) / t
    return np.clip((LID_FROM - r) / (LID_FROM - LID_FULL), 0.0, 1.0)


def eye_region(points: np.ndarray, eye: int, shape: tuple[int, int], scale: float = 1.0) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A feathered mask over one eye (its outline, the upper lid raised by ``LID_COVER``, grown by ~2.5 px
    at 256², ``scale`` times that in other pixels), float32 in [0,1], and its box x0, y0, x1, y1 inside
    ``shape`` (height, width)."""
    lo, hi = (36, 42) if eye == 0 else (42, 48)
    p = np.asarray(points, np.float64)[lo:hi].copy()
    p[1:3] -= LID_COVER * scale * _down(np.asarray(points, np.float64), EYES[eye][0])  # the upper lid's lashes
    pad = int(np.ceil((6 + LID_COVER) * scale))
    h, w = shape
    x0, y0 = max(0, int(np.floor(p[:, 0].min())) - pad), max(0, int(np.floor(p[:, 1].min())) - pad)
    x1, y1 = min(w, int(np.ceil(p[:, 0].max())) + pad + 1), min(h, int(np.ceil(p[:, 1].max())) + pad + 1)
    m = np.zeros((max(0, y1 - y0), max(0, x1 - x0)), np.uint8)
    if m.size:
        cv2.fillPoly(m, [np.round((p - (x0, y0)) * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
        k = max(1, int(round(2.5 * scale)))
        m = cv2.dilate(m, np.ones((2 * k + 1, 2 * k + 1), np.uint8))
        s = max(1, int(round(1.5 * scale))) * 2 + 1
        m = cv2.GaussianBlur(m, (s, s), 0)
    return m.astype(np.float32) / 255.0, (x0, y0, x1, y1)


def closed_eyes(image: np.ndarray, points: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """The picture with both eyes inpainted with the skin around them (once per target): what a shut lid
    covers. ``points`` in the picture's pixels; ``scale``: its pixels per 256² crop pixel."""
    mask = np.zeros(image.shape[:2], np.uint8)
    for eye in (0, 1):
        m, (x0, y0, x1, y1) = eye_region(points, eye, image.shape[:2], scale)
        mask[y0:y1, x0:x1] |= (m > 0.05).astype(np.uint8) * 255
    return cv2.inpaint(image, mask, max(3, int(round(5 * scale))), cv2.INPAINT_TELEA)


def paint_lids(image: np.ndarray, closed: np.ndarray, points: np.ndarray, amounts: np.ndarray,
               scale: float = 1.0) -> np.ndarray:
    """``image`` with each eye faded to ``closed`` (``closed_eyes``) by its amount, before the warp (a new
    array; ``image`` itself when no lid shows)."""
    if not np.any(amounts > 0):
        return image
    out = image.copy()
    for eye in (0, 1):
        if amounts[eye] <= 0:
            continue
        m, (x0, y0, x1, y1) = eye_region(points, eye, image.shape[:2], scale)
        a = (amounts[eye] * m)[..., None]
        out[y0:y1, x0:x1] = (image[y0:y1, x0:x1] * (1 - a) + closed[y0:y1, x0:x1] * a + 0.5).astype(np.uint8)
    return out


def _spline(p: np.ndarray, n: int = 16) -> np.ndarray:
    """A Catmull-Rom curve through the [k,2] points ``p`` (ends included), ``n`` samples per span."""
    q = np.vstack([2 * p[0] - p[1], p, 2 * p[-1] - p[-2]])
    t = np.linspace(0, 1, n, endpoint=False)[:, None]
    spans = []
    for i in range(1, len(q) - 2):
        p0, p1, p2, p3 = q[i - 1:i + 3]
        spans.append(0.5 * (2 * p1 + (p2 - p0) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t ** 2
                            + (3 * p1 - p0 - 3 * p2 + p3) * t ** 3))
    return np.vstack(spans + [p[-1:]])


def draw_lashes(image: np.ndarray, points: np.ndarray, amounts: np.ndarray, scale: float = 1.0,
                offset: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """The closed lids drawn into ``image`` in place, with opacity ``amounts``: per eye, the lid margin's
    shadow and a tapered lash line on a curve from corner to corner, ``LASH_HEIGHT`` of the way from
    the lower lid to the upper of ``points`` (J_gen, after the warp); ``offset``: the image's origin in
    ``points``' pixels. Returns ``image``."""
    q = np.asarray(points, np.float64)
    for eye, (corners, pairs) in enumerate(EYES):
        if amounts[eye] <= 0:
            continue
        down = _down(q, corners)
        # a shut lid's edge lies low, near the lower lid
        mid = [q[b] + LASH_HEIGHT * (q[a] - q[b]) for a, b in pairs]
        line = _spline(np.stack([q[corners[0]], *mid, q[corners[1]]])) - offset
        s = np.linspace(0, 1, len(line))
        half = (0.5 * LASH_WIDTH * scale * (LASH_TAPER + (1 - LASH_TAPER) * np.sin(np.pi * s) ** 0.7))[:, None]
        pad = (4 + 2 * LID_SHADOW) * scale
        lo, hi = np.floor(line.min(0) - pad).astype(int), np.ceil(line.max(0) + pad).astype(int) + 1
        x0, y0 = max(0, lo[0]), max(0, lo[1])
        x1, y1 = min(image.shape[1], hi[0]), min(image.shape[0], hi[1])
        if x1 <= x0 or y1 <= y0:
            continue
        box = (x0, y0, x1, y1)
        shadow = polygon_mask(np.vstack([line - (half + LID_SHADOW * scale) * down, line[::-1]]), box=box)
        k = max(1, int(round(LID_SHADOW * scale))) * 2 + 1
        shadow = cv2.GaussianBlur(shadow, (k, k), 0)
        lash = polygon_mask(np.vstack([line - half * down, (line + half * down)[::-1]]), box=box)
        a = (LASH_OPACITY * amounts[eye] * lash)[..., None]
        roi = image[y0:y1, x0:x1].astype(np.float32) * (1 - LID_SHADOW_DARKEN * amounts[eye] * shadow[..., None])
        roi = roi * (1 - a) + np.array(LASH_COLOUR, np.float32) * a
        image[y0:y1, x0:x1] = np.clip(roi + 0.5, 0, 255).astype(np.uint8)
    return image


__all__ = ["EYES", "LID_COVER", "LID_FROM", "LID_FULL", "MAX_RATIO", "closed_eyes", "draw_lashes", "eye_ratios", "eye_region",
           "lid_amounts", "lid_gaps", "paint_lids", "retarget_eyes"]
