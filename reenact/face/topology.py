"""The 68-point landmark topology (dlib / iBUG 300-W order) and the canonical template.

Pure data, no dependencies beyond numpy.
"""

from __future__ import annotations

import numpy as np

#: Index ranges of face parts in the 68-point layout (end exclusive).
PARTS: dict[str, tuple[int, int]] = {
    "jaw": (0, 17),
    "right_brow": (17, 22),  # the subject's right = image left
    "left_brow": (22, 27),
    "nose_bridge": (27, 31),
    "nose_bottom": (31, 36),
    "right_eye": (36, 42),
    "left_eye": (42, 48),
    "outer_lip": (48, 60),
    "inner_lip": (60, 68),
}

#: Parts drawn as closed polygons (the others are open polylines).
CLOSED_PARTS = frozenset({"right_eye", "left_eye", "outer_lip", "inner_lip"})

#: Left-right mirror: point i of a face is point MIRROR[i] of the mirrored face.
MIRROR: tuple[int, ...] = tuple(
    list(range(16, -1, -1))
    + list(range(26, 16, -1))
    + [27, 28, 29, 30]
    + [35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46]
    + [39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48]
    + [59, 58, 57, 56, 55]
    + [64, 63, 62, 61, 60]
    + [67, 66, 65]
)

#: Expression-stable alignment anchors: eye corners and the nose (not the mouth or jaw).
ANCHORS: tuple[int, ...] = (36, 39, 42, 45, 27, 28, 29, 30, 31, 33, 35)

#: Points that carry expressions, by how the landmark smoother treats them (the rest, nose and jaw
#: sides, is held steady): the mouth and chin (speech), the eyes (blinks, squints), the brows.
MOUTH_POINTS: tuple[int, ...] = tuple(range(4, 13)) + tuple(range(48, 68))
EYE_POINTS: tuple[int, ...] = tuple(range(36, 48))
BROW_POINTS: tuple[int, ...] = tuple(range(17, 27))
EXPRESSION_POINTS: tuple[int, ...] = tuple(sorted(MOUTH_POINTS + EYE_POINTS + BROW_POINTS))

#: Lower face (where expressions live): jaw below the cheekbones, nose bottom, lips.
LOWER_FACE: tuple[int, ...] = tuple(range(2, 15)) + (31, 33, 35)

#: Canonical 68-point template ("canonical68_v1") in the 256x256 aligned crop: the
#: mirror-symmetrised Procrustes mean of 102 neutral London-set faces (dlib landmarks),
#: scaled to 64 px between the eye centres, eye centres at (128, 98).
TEMPLATE_256 = np.array(
    [
    (55.48, 103.09),
    (57.10, 122.11),
    (60.08, 140.48),
    (63.39, 158.91),
    (68.75, 176.51),
    (78.44, 191.41),
    (92.44, 203.12),
    (109.10, 211.40),
    (128.00, 213.94),
    (146.90, 211.40),
    (163.56, 203.12),
    (177.56, 191.41),
    (187.25, 176.51),
    (192.61, 158.91),
    (195.92, 140.48),
    (198.90, 122.11),
    (200.52, 103.09),
    (67.78, 85.98),
    (76.45, 76.16),
    (89.54, 72.31),
    (103.09, 73.66),
    (116.03, 78.42),
    (139.97, 78.42),
    (152.91, 73.66),
    (166.46, 72.31),
    (179.55, 76.16),
    (188.22, 85.98),
    (128.00, 93.85),
    (128.00, 105.21),
    (128.00, 116.48),
    (128.00, 128.20),
    (115.12, 139.36),
    (121.35, 141.32),
    (128.00, 142.80),
    (134.65, 141.32),
    (140.88, 139.36),
    (83.50, 98.63),
    (91.14, 93.05),
    (100.88, 93.03),
    (109.27, 99.42),
    (100.46, 101.75),
    (90.75, 102.12),
    (146.73, 99.42),
    (155.12, 93.03),
    (164.86, 93.05),
    (172.50, 98.63),
    (165.25, 102.12),
    (155.54, 101.75),
    (102.45, 166.75),
    (112.16, 160.26),
    (121.31, 156.67),
    (128.00, 158.42),
    (134.69, 156.67),
    (143.84, 160.26),
    (153.55, 166.75),
    (144.01, 172.41),
    (135.14, 174.63),
    (128.00, 175.21),
    (120.86, 174.63),
    (111.99, 172.41),
    (107.13, 166.63),
    (121.19, 164.33),
    (128.00, 164.75),
    (134.81, 164.33),
    (148.87, 166.63),
    (134.80, 164.88),
    (128.00, 165.55),
    (121.20, 164.88),
    ],
    dtype=np.float32,
)

CROP_SIZE = 256


def check_points(points: np.ndarray, what: str = "landmarks", dtype: type = np.float32) -> np.ndarray:
    """[68,2] numeric landmarks as ``dtype``: TypeError / ValueError naming ``what`` and what was given."""
    if not isinstance(points, np.ndarray):
        raise TypeError(f"{what} must be a numpy array, got {type(points).__name__}")
    if points.dtype.kind not in "fiu":
        raise TypeError(f"{what} must be numeric, got {points.dtype}")
    if points.shape != (68, 2):
        raise ValueError(f"{what} must be [68,2], got {points.shape}")
    return points.astype(dtype)


def eye_centres(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centres of the subject's right (image left) and left eye, [2] each."""
    return points[36:42].mean(0), points[42:48].mean(0)


def interocular(points: np.ndarray) -> float:
    """Distance between the eye centres, the face's natural scale."""
    r, l_ = eye_centres(points)
    return float(np.linalg.norm(l_ - r))


#: Each eye's lid pairs (upper, lower): the subject's right eye (image left), then the left.
LID_PAIRS: tuple[tuple[tuple[int, int], tuple[int, int]], ...] = (((37, 41), (38, 40)), ((43, 47), (44, 46)))


def eye_openings(points: np.ndarray) -> np.ndarray:
    """[2] each eye's opening: the mean distance between its two lid pairs, in the points' units."""
    p = np.asarray(points, np.float64)
    return np.array([np.mean([np.linalg.norm(p[a] - p[b]) for a, b in pairs]) for pairs in LID_PAIRS])


def mouth_opening(points: np.ndarray) -> float:
    """Inner-lip opening (mean of the 3 vertical gaps) over the inter-ocular distance."""
    gap = np.linalg.norm(points[[61, 62, 63]] - points[[67, 66, 65]], axis=1).mean()
    return float(gap / max(interocular(points), 1e-6))
