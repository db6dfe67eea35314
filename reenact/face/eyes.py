"""Eye-opening retargeting (issue 17): a driver's blink closes the target's lids whatever the two eye sizes.

J_gen = L_t + (L_s − J_s) moves the target's lids by the driver's displacement in pixels, so a
small-eyed driver who closes their eyes only squeezes a large-eyed target's. Here each eye's
opening is set to the target's open-eye opening times the driver's opening relative to the
driver's neutral: ``gap(J_gen) = gap(L_t) · clip(gap(L_s) / gap(J_s), 0, max_ratio)``, per lid
pair, measured across the eye (perpendicular to its corner line). Only the upper lid moves (a blink
is the upper lid's); corners, lower lids and every other point stay as Φ left them.

Pure geometry on [68,2] canonical-crop points (numpy only).
"""

from __future__ import annotations

import numpy as np

#: Per eye: its corner points (outer/inner, along the eye line) and its lid pairs (upper, lower).
EYES: tuple[tuple[tuple[int, int], tuple[tuple[int, int], ...]], ...] = (
    ((36, 39), ((37, 41), (38, 40))),  # the subject's right eye (image left)
    ((42, 45), ((43, 47), (44, 46))),  # the subject's left eye
)
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
    """J_gen [68,2] with each eye's lid gaps set to L_t's times the driver's opening ratio (L_s over J_s).

    Each upper lid point (37, 38, 43, 44) moves across the eye so that its gap to the lower lid
    becomes the target's gap times :func:`eye_ratios`; nothing else moves. A new array, float32.
    """
    out = np.asarray(jgen, np.float64).copy()
    if out.shape != (68, 2):
        raise ValueError(f"J_gen must be [68,2], got {out.shape}")
    ratios = eye_ratios(L_s, J_s, max_ratio)
    want = np.maximum(lid_gaps(L_t), 0.0) * ratios[:, None]  # the target's open-eye gaps, scaled
    for e, (corners, pairs) in enumerate(EYES):
        down = _down(out, corners)
        for k, (a, b) in enumerate(pairs):
            gap = float((out[b] - out[a]) @ down)
            out[a] += (gap - want[e, k]) * down
    return out.astype(np.float32)


__all__ = ["EYES", "MAX_RATIO", "eye_ratios", "lid_gaps", "retarget_eyes"]
