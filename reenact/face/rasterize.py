"""Landmark images: what Ω (and the paper's Φ) see of the 68 points.

Value range is [-1, 1], as Ω's image inputs: background -1, landmarks up to +1.
- ``gaussian`` (paper variant, 1 channel): a Gaussian dot per landmark (max over dots).
  Dots, not lines, because the paper speaks of "key point images"; the Gaussian gives a
  smooth, sub-pixel position that a convolution can read.
- ``polylines`` (guided variant, 3 channels): anti-aliased polylines per face part, one
  channel per group so parts never blur into each other: (jaw, nose), (brows, eyes), (lips).

And ``polygon_mask``, the anti-aliased filled polygon the mouth guide and the painted lids use.
"""

from __future__ import annotations

import cv2
import numpy as np

from reenact.face.topology import CLOSED_PARTS, PARTS

POLYLINE_GROUPS: tuple[tuple[str, ...], ...] = (
    ("jaw", "nose_bridge", "nose_bottom"),
    ("right_brow", "left_brow", "right_eye", "left_eye"),
    ("outer_lip", "inner_lip"),
)

_SHIFT = 4  # sub-pixel bits for OpenCV drawing


def _check(points: np.ndarray) -> np.ndarray:
    pts = np.asarray(points, np.float32)
    if pts.shape != (68, 2):
        raise ValueError(f"landmark image needs [68,2] points, got {pts.shape}")
    return pts


def hull_mask(points: np.ndarray, idx: tuple[int, ...] | list[int], size: int = 256) -> np.ndarray:
    """(size,size) uint8 mask, 1 inside the convex hull of ``points[idx]`` (sub-pixel vertices);
    the region masks of the eval (lower face) and of training losses (mouth)."""
    pts = np.asarray(points, np.float64)[list(idx)]
    hull = cv2.convexHull(np.round(pts * (1 << _SHIFT)).astype(np.int32))
    mask = np.zeros((size, size), np.uint8)
    cv2.fillConvexPoly(mask, hull, 1, lineType=cv2.LINE_8, shift=_SHIFT)
    return mask


def soft_hull_mask(points: np.ndarray, idx: tuple[int, ...] | list[int], grow: float, blur: float,
                   size: int = 256) -> np.ndarray:
    """(size,size) float32 in [0,1]: ``hull_mask`` grown by ``grow`` px (an elliptical dilation) and
    feathered by a Gaussian of sigma ``blur`` px."""
    mask = hull_mask(points, idx, size)
    if grow > 0:
        k = 2 * int(round(grow)) + 1
        mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    out = mask.astype(np.float32)
    return cv2.GaussianBlur(out, (0, 0), blur) if blur > 0 else out


def gaussian_image(points: np.ndarray, size: int = 256, sigma: float = 1.5) -> np.ndarray:
    """1-channel Gaussian-dot landmark image, [size,size] float32 in [-1,1]."""
    pts = _check(points)
    canvas = np.zeros((size, size), np.float32)
    r = int(np.ceil(3 * sigma))
    off = np.arange(-r, r + 1, dtype=np.float32)
    for x, y in pts:
        cx, cy = int(round(float(x))), int(round(float(y)))
        x0, x1 = max(cx - r, 0), min(cx + r + 1, size)
        y0, y1 = max(cy - r, 0), min(cy + r + 1, size)
        if x0 >= x1 or y0 >= y1:
            continue
        gx = np.exp(-((off[x0 - cx + r : x1 - cx + r] + cx - x) ** 2) / (2 * sigma**2))
        gy = np.exp(-((off[y0 - cy + r : y1 - cy + r] + cy - y) ** 2) / (2 * sigma**2))
        np.maximum(canvas[y0:y1, x0:x1], gy[:, None] * gx[None, :], out=canvas[y0:y1, x0:x1])
    return canvas * 2.0 - 1.0


def polyline_image(points: np.ndarray, size: int = 256, width: float = 1.5) -> np.ndarray:
    """3-channel anti-aliased polyline landmark image, [3,size,size] float32 in [-1,1]."""
    pts = _check(points)
    out = np.zeros((len(POLYLINE_GROUPS), size, size), np.uint8)
    thickness = max(1, int(round(width)))
    fixed = np.round(pts * (1 << _SHIFT)).astype(np.int32)
    for c, group in enumerate(POLYLINE_GROUPS):
        canvas = out[c]
        for part in group:
            a, b = PARTS[part]
            cv2.polylines(canvas, [fixed[a:b]], part in CLOSED_PARTS, 255, thickness, cv2.LINE_AA, _SHIFT)
    return out.astype(np.float32) / 127.5 - 1.0


def landmark_image(points: np.ndarray, style: str, size: int = 256, sigma: float = 1.5, width: float = 1.5) -> np.ndarray:
    """The landmark image of a style, channels first: [1,S,S] (gaussian) or [3,S,S] (polylines)."""
    if style == "gaussian":
        return gaussian_image(points, size, sigma)[None]
    if style == "polylines":
        return polyline_image(points, size, width)
    raise ValueError(f"unknown raster style {style!r}; expected 'gaussian' or 'polylines'")


def polygon_mask(points: np.ndarray, size: int = 256, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """An anti-aliased filled polygon, float32 in [0,1]: [size,size], or the part inside ``box`` (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = box if box is not None else (0, 0, size, size)
    m = np.zeros((y1 - y0, x1 - x0), np.uint8)
    q = (np.asarray(points, np.float64) - (x0, y0)) * 16
    cv2.fillPoly(m, [np.round(q).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    return m.astype(np.float32) / 255.0
