"""Alignment to the canonical 256x256 crop: a similarity transform and its inverse.

The transform is fitted on expression-stable anchors (eye corners and nose, see
``topology.ANCHORS``), so a smile or an open mouth does not move the crop. Pure functions.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from reenact.face.topology import ANCHORS, CROP_SIZE, TEMPLATE_256


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, shift) mapping src onto dst (Umeyama).

    src, dst: [K,2]. Returns a 2x3 float64 matrix M with dst ≈ M @ [x, y, 1].
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2:
        raise ValueError(f"similarity needs two [K,2] arrays of one shape, got {src.shape} and {dst.shape}")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    var = (a**2).sum()
    if var < 1e-12:
        raise ValueError("similarity: source points are all the same")
    u, s, vt = np.linalg.svd(b.T @ a)
    d = np.sign(np.linalg.det(u @ vt)) or 1.0
    D = np.diag([1.0, d])
    R = u @ D @ vt
    scale = (s * np.diag(D)).sum() / var
    M = np.zeros((2, 3))
    M[:, :2] = scale * R
    M[:, 2] = mu_d - scale * R @ mu_s
    return M


def invert(M: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine matrix."""
    return cv2.invertAffineTransform(np.asarray(M, np.float64))


def apply(M: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine to [...,2] points; keeps the input dtype (float32 by default)."""
    pts = np.asarray(points)
    out = pts.astype(np.float64) @ M[:, :2].T + M[:, 2]
    return out.astype(pts.dtype if pts.dtype.kind == "f" else np.float32)


@dataclass(frozen=True)
class Alignment:
    """The similarity from image pixels to the canonical crop, and back."""

    M: np.ndarray  # 2x3 image -> crop
    Minv: np.ndarray  # 2x3 crop -> image
    crop_size: int = CROP_SIZE

    @property
    def scale(self) -> float:
        """Crop pixels per image pixel."""
        return float(np.sqrt(abs(np.linalg.det(self.M[:, :2]))))

    @property
    def angle_deg(self) -> float:
        """In-plane rotation applied to the image to level the face, degrees."""
        return float(np.degrees(np.arctan2(self.M[1, 0], self.M[0, 0])))

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        return apply(self.M, points)

    def to_image(self, points: np.ndarray) -> np.ndarray:
        return apply(self.Minv, points)

    def crop(self, image: np.ndarray, border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
        """The aligned crop of an image (bilinear)."""
        s = self.crop_size
        return cv2.warpAffine(image, self.M, (s, s), flags=cv2.INTER_LINEAR, borderMode=border)

    def uncrop(self, crop: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """Warp a crop back to image pixels; ``size`` is (width, height)."""
        return cv2.warpAffine(crop, self.Minv, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def align_points(points: np.ndarray, crop_size: int = CROP_SIZE) -> Alignment:
    """The alignment that maps a face's anchors onto the canonical template's anchors."""
    points = np.asarray(points, np.float32)
    if points.shape != (68, 2):
        raise ValueError(f"align_points needs [68,2] landmarks, got {points.shape}")
    template = TEMPLATE_256 * (crop_size / CROP_SIZE)
    idx = list(ANCHORS)
    M = similarity(points[idx], template[idx])
    return Alignment(M=M, Minv=invert(M), crop_size=crop_size)


def template(crop_size: int = CROP_SIZE) -> np.ndarray:
    """The canonical 68-point template at a crop size, [68,2] float32."""
    return (TEMPLATE_256 * (crop_size / CROP_SIZE)).astype(np.float32)
