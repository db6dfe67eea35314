"""Synthetic driving videos: a real face whose mouth is opened and closed by a warp.

Used by ``reenact bench --source synthetic`` and the end-to-end tests, so a driver exists
on machines with no webcam and no video of a person.
"""

from __future__ import annotations

import numpy as np

from reenact.face.topology import interocular
from reenact.face.warp import Mesh, ring_points, triangles, warp_image

# points that move down when the jaw drops, with their share of the motion
_JAW = {5: 0.35, 6: 0.6, 7: 0.85, 8: 1.0, 9: 0.85, 10: 0.6, 11: 0.35}
_LOWER_LIP = {55: 0.8, 56: 0.95, 57: 1.0, 58: 0.95, 59: 0.8, 65: 0.9, 66: 1.0, 67: 0.9}
_CORNERS = {48: 0.25, 54: 0.25, 60: 0.3, 64: 0.3}


def open_mouth(points: np.ndarray, amount: float) -> np.ndarray:
    """Landmarks with the jaw and lower lip lowered by ``amount`` x interocular distance. [68,2]."""
    p = np.asarray(points, np.float32).copy()
    d = amount * interocular(p)
    for table in (_JAW, _LOWER_LIP, _CORNERS):
        for i, share in table.items():
            p[i, 1] += share * d * (0.6 if table is _JAW else 1.0)
    return p


def _image_mesh(src68: np.ndarray, dst68: np.ndarray, shape: tuple[int, int]) -> Mesh:
    """A mesh over a whole image: the moving 68 points plus fixed rings around the face."""
    h, w = shape
    centre = src68.mean(0)
    r = 1.6 * float(np.ptp(src68, axis=0).max())
    ring = ring_points(centre, r, r, 16)
    ring[:, 0] = np.clip(ring[:, 0], 0, w - 1)
    ring[:, 1] = np.clip(ring[:, 1], 0, h - 1)
    # reuse the canonical triangulation by building the mesh in the same vertex layout
    from reenact.face.align import align_points, apply

    al = align_points(src68)
    size = 256
    inner_src = np.concatenate([src68, apply(al.Minv, ring_points(np.array([128.0, 128.0]), 118, 122, 16))])
    inner_dst = np.concatenate([dst68, inner_src[68:]])
    from reenact.face.warp import crop_border

    border = apply(al.Minv, crop_border(size))
    return Mesh(np.concatenate([inner_src, border]), np.concatenate([inner_dst, border]), triangles(size))


def talking_frames(image: np.ndarray, points: np.ndarray, n: int, period: int = 20, max_open: float = 0.35) -> tuple[list[np.ndarray], np.ndarray]:
    """``n`` frames of the face opening and closing its mouth (a cosine of ``period`` frames).

    Returns the frames (BGR uint8, the input's size) and the mouth-opening amount per frame.
    """
    pts = np.asarray(points, np.float32)
    amounts = max_open * 0.5 * (1 - np.cos(2 * np.pi * np.arange(n) / period))
    frames = []
    for a in amounts:
        if a < 1e-3:
            frames.append(image.copy())
            continue
        mesh = _image_mesh(pts, open_mouth(pts, float(a)), image.shape[:2])
        frames.append(warp_image(image, mesh))
    return frames, amounts.astype(np.float32)
