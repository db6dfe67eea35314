"""Synthetic driving videos: a real face whose mouth is opened and closed by a warp.

Used by ``reenact bench --source synthetic`` and the end-to-end tests, so a driver exists
on machines with no webcam and no video of a person.
"""

from __future__ import annotations

import numpy as np

from reenact.face.align import align_points
from reenact.face.topology import interocular
from reenact.face.warp import image_mesh, warp_image

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
        mesh = image_mesh(pts, open_mouth(pts, float(a)), align_points(pts).M)
        frames.append(warp_image(image, mesh))
    return frames, amounts.astype(np.float32)
