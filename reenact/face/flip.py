"""Left-right flip augmentation (the paper's): mirror the image and remap the 68 indices."""

from __future__ import annotations

import numpy as np

from reenact.face.topology import MIRROR


def flip_points(points: np.ndarray, width: int) -> np.ndarray:
    """Mirror [68,2] pixel landmarks in an image of ``width`` and swap left/right indices.

    Pixel centres sit at integer coordinates, so x maps to (width - 1) - x.
    """
    pts = np.asarray(points).copy()
    pts[..., 0] = (width - 1) - pts[..., 0]
    return pts[..., list(MIRROR), :]


def flip_image(image: np.ndarray) -> np.ndarray:
    """Mirror an (H,W[,C]) image left-right."""
    return np.ascontiguousarray(image[:, ::-1])
