"""Evaluation measures: the paper's SSIM and PSNR (Tables 3-4), on the whole crop or a mask,
and the expression / identity measures of issue 5.

Pure numpy/OpenCV functions; inputs are checked where they enter (wrong dtype -> TypeError,
wrong shape -> ValueError, both naming the expected and the actual).

Conventions (chosen once, used everywhere):

* **SSIM** is Wang et al. 2004 with an 11x11 Gaussian window (sigma 1.5), K1=0.01, K2=0.03,
  population (not sample) covariances, data range 255 for uint8. Colour images are scored
  **per channel and averaged** (as ``skimage.metrics.structural_similarity(...,
  channel_axis=-1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``, which
  it matches); channel order does not matter. The mean is taken over the map with a
  5-pixel border dropped (where the window leaves the image), as skimage does.
* **PSNR** is over all pixels and channels, data range 255. Identical images would give
  +inf; the result is capped at ``PSNR_CAP_DB`` (100 dB) by default so that means over a
  validation set and JSON files stay finite. Pass ``cap=None`` for the uncapped value.
"""

from __future__ import annotations

import logging
import math

import cv2
import numpy as np

from reenact.face.topology import check_points

log = logging.getLogger(__name__)

#: SSIM constants (Wang et al. 2004).
SSIM_SIGMA = 1.5
SSIM_WIN = 11  # = 2 * int(3.5 * 1.5 + 0.5) + 1, skimage's window for sigma 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
#: PSNR of identical images (and the ceiling of any PSNR) unless ``cap=None``.
PSNR_CAP_DB = 100.0


# --------------------------------------------------------------------------- input checks
def _check_pair(a: np.ndarray, b: np.ndarray, name: str) -> None:
    """Two images of one shape and dtype: (H,W) or (H,W,C), uint8 or float."""
    for arg, x in (("a", a), ("b", b)):
        if not isinstance(x, np.ndarray):
            raise TypeError(f"{name}: {arg} must be a numpy array, got {type(x).__name__}")
        if x.dtype != np.uint8 and x.dtype.kind != "f":
            raise TypeError(f"{name}: {arg} must be uint8 (or float with data_range), got {x.dtype}")
        if x.ndim not in (2, 3):
            raise ValueError(f"{name}: {arg} must be (H,W) or (H,W,C), got shape {x.shape}")
    if a.shape != b.shape:
        raise ValueError(f"{name}: images must have one shape, got {a.shape} and {b.shape}")
    if a.dtype != b.dtype:
        raise TypeError(f"{name}: images must have one dtype, got {a.dtype} and {b.dtype}")


def _data_range(a: np.ndarray, data_range: float | None, name: str) -> float:
    if data_range is not None:
        if data_range <= 0:
            raise ValueError(f"{name}: data_range must be > 0, got {data_range}")
        return float(data_range)
    if a.dtype == np.uint8:
        return 255.0
    raise TypeError(f"{name}: float images need an explicit data_range (e.g. 1.0 or 255.0), got dtype {a.dtype}")


def _check_mask(mask: np.ndarray | None, shape: tuple[int, ...], name: str) -> np.ndarray | None:
    """A (H,W) bool/uint8 mask (non-zero = inside) -> bool array, or None."""
    if mask is None:
        return None
    if not isinstance(mask, np.ndarray):
        raise TypeError(f"{name}: mask must be a numpy array, got {type(mask).__name__}")
    if mask.dtype != np.bool_ and mask.dtype != np.uint8:
        raise TypeError(f"{name}: mask must be bool or uint8, got {mask.dtype}")
    if mask.shape != tuple(shape[:2]):
        raise ValueError(f"{name}: mask must be (H,W) = {tuple(shape[:2])}, got {mask.shape}")
    m = mask.astype(bool)
    if not m.any():
        raise ValueError(f"{name}: mask is empty (no pixel inside)")
    return m


# --------------------------------------------------------------------------- image measures
def ssim_map(a: np.ndarray, b: np.ndarray, data_range: float | None = None) -> np.ndarray:
    """Per-pixel SSIM, (H,W) float64, averaged over channels for colour images.

    Why a map: the masked SSIM (lower face) is the mean of this map inside a mask.
    """
    _check_pair(a, b, "ssim")
    if min(a.shape[:2]) < SSIM_WIN:
        raise ValueError(f"ssim: images must be at least {SSIM_WIN}x{SSIM_WIN}, got {a.shape[:2]}")
    rng = _data_range(a, data_range, "ssim")
    x = a.astype(np.float64)
    y = b.astype(np.float64)
    if x.ndim == 2:
        x, y = x[..., None], y[..., None]
    c1 = (SSIM_K1 * rng) ** 2
    c2 = (SSIM_K2 * rng) ** 2
    out = np.zeros(x.shape[:2], np.float64)
    for ch in range(x.shape[2]):  # per channel: cv2 filters at most 4 channels at once
        xc, yc = x[..., ch], y[..., ch]

        def blur(z: np.ndarray) -> np.ndarray:
            # BORDER_REFLECT = scipy's "reflect" (skimage's mode); the border is dropped anyway
            return cv2.GaussianBlur(z, (SSIM_WIN, SSIM_WIN), SSIM_SIGMA, borderType=cv2.BORDER_REFLECT)

        mx, my = blur(xc), blur(yc)
        vx = blur(xc * xc) - mx * mx
        vy = blur(yc * yc) - my * my
        cxy = blur(xc * yc) - mx * my
        num = (2 * mx * my + c1) * (2 * cxy + c2)
        den = (mx * mx + my * my + c1) * (vx + vy + c2)
        out += num / den
    return out / x.shape[2]


def _interior(shape: tuple[int, ...]) -> np.ndarray:
    """True away from the border where the SSIM window would leave the image."""
    pad = (SSIM_WIN - 1) // 2
    m = np.zeros(shape[:2], bool)
    m[pad : shape[0] - pad, pad : shape[1] - pad] = True
    return m


def ssim(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None, data_range: float | None = None) -> float:
    """Mean SSIM of two images (uint8 HxW or HxWxC, e.g. BGR crops), 1.0 when identical.

    With ``mask`` ((H,W) bool/uint8, non-zero inside): the mean of the SSIM map inside the
    mask (and away from the 5-px border). An empty mask is a ValueError.
    """
    smap = ssim_map(a, b, data_range)
    valid = _interior(a.shape)
    m = _check_mask(mask, a.shape, "ssim")
    if m is not None:
        valid &= m
        if not valid.any():
            raise ValueError("ssim: mask lies entirely within the 5-px image border")
    return float(smap[valid].mean())


def psnr(
    a: np.ndarray,
    b: np.ndarray,
    mask: np.ndarray | None = None,
    data_range: float | None = None,
    cap: float | None = PSNR_CAP_DB,
) -> float:
    """PSNR in dB, 10·log10(R²/MSE), MSE over all pixels and channels (inside ``mask`` if given).

    Identical images give ``cap`` (100 dB by default; +inf with ``cap=None``).
    """
    _check_pair(a, b, "psnr")
    rng = _data_range(a, data_range, "psnr")
    m = _check_mask(mask, a.shape, "psnr")
    d = a.astype(np.float64) - b.astype(np.float64)
    if m is not None:
        d = d[m]
    mse = float(np.mean(d * d))
    value = math.inf if mse == 0.0 else 10.0 * math.log10(rng * rng / mse)
    return value if cap is None else min(value, float(cap))


# --------------------------------------------------------------------------- landmark measures
def lower_face_mask(points_crop: np.ndarray, size: int = 256) -> np.ndarray:
    """(size,size) bool mask of mouth, jaw and cheeks in the aligned crop: where expressions live.

    The filled convex hull of ``topology.LOWER_FACE`` (jaw points 2..14 and the nose bottom
    31, 33, 35). Pass the landmarks of the *real* face (e.g. J_o / I_o's) so every method is
    scored on one region; points outside the crop are clipped by the rasteriser.
    """
    from reenact.face.rasterize import hull_mask
    from reenact.face.topology import LOWER_FACE

    pts = check_points(points_crop, "lower_face_mask: points_crop", np.float64)
    if not np.all(np.isfinite(pts)):
        raise ValueError("lower_face_mask: points contain nan or inf")
    if size < 1:
        raise ValueError(f"lower_face_mask: size must be >= 1, got {size}")
    return hull_mask(pts, LOWER_FACE, size).astype(bool)


#: Mouth points (outer and inner lip), the usual subset for ``expression_error``.
MOUTH = tuple(range(48, 68))


def expression_error(points_a: np.ndarray, points_b: np.ndarray, idx: tuple[int, ...] | list[int] | None = None) -> float:
    """Mean Euclidean distance between two [68,2] landmark sets (crop pixels), on ``idx`` if given.

    Issue 5: landmarks re-detected on the generated face vs the expected J_o, both in the
    aligned 256 crop. nan points (undetected) propagate to a nan result.
    """
    a = check_points(points_a, "expression_error: points_a", np.float64)
    b = check_points(points_b, "expression_error: points_b", np.float64)
    if idx is not None:
        sel = list(idx)
        if not sel or min(sel) < 0 or max(sel) > 67:
            raise ValueError(f"expression_error: idx must be non-empty indices in 0..67, got {sel}")
        a, b = a[sel], b[sel]
    return float(np.linalg.norm(a - b, axis=1).mean())


def driver_following(source_openings: np.ndarray, generated_openings: np.ndarray, min_frames: int = 3) -> float:
    """Pearson correlation across a clip's frames of the source's and the output's mouth opening.

    Frames where either value is nan (no face found) are dropped. Returns nan when fewer than
    ``min_frames`` frames remain or when either series is constant: following is then
    undefined (the driver did not move, or the output never moved), not good or bad; callers
    average over clips with ``np.nanmean`` and report how many were undefined.
    """
    s = np.asarray(source_openings, np.float64)
    g = np.asarray(generated_openings, np.float64)
    if s.ndim != 1 or g.ndim != 1:
        raise ValueError(f"driver_following: need two 1-d series, got shapes {s.shape} and {g.shape}")
    if s.shape != g.shape:
        raise ValueError(f"driver_following: series must have one length, got {s.shape[0]} and {g.shape[0]}")
    ok = np.isfinite(s) & np.isfinite(g)
    s, g = s[ok], g[ok]
    if s.size < min_frames:
        log.debug("driver_following: %d usable frames < %d -> nan", s.size, min_frames)
        return math.nan
    if np.ptp(s) == 0.0 or np.ptp(g) == 0.0:
        log.debug("driver_following: constant series -> nan")
        return math.nan
    ds, dg = s - s.mean(), g - g.mean()
    den = math.sqrt(float(ds @ ds) * float(dg @ dg))
    return float(np.clip(float(ds @ dg) / den, -1.0, 1.0))


def identity_distance(image_a: np.ndarray, lm_a, image_b: np.ndarray, lm_b) -> float:
    """Euclidean distance of dlib's 128-d face descriptors; < 0.6 is dlib's "same person".

    ``lm_a`` / ``lm_b`` are FaceLandmarks or [68,2] arrays in their image's pixels (e.g. the
    generated crop and its re-detected landmarks vs the real I_o crop and its landmarks).
    Needs dlib and ``face-recognition-models`` (imported here, not at package import).
    """
    from reenact.face.dlib_detector import face_descriptor

    da = face_descriptor(image_a, lm_a)
    db = face_descriptor(image_b, lm_b)
    return float(np.linalg.norm(da.astype(np.float64) - db.astype(np.float64)))


def fine_detail(image: np.ndarray, box: tuple[int, int, int, int] | None = None) -> float:
    """Variance of the Laplacian of the grey levels in ``box`` (x0, y0, x1, y1; default the whole
    image): how much pixel-scale texture (skin, hair) an image keeps. Compared as a ratio to the
    same box of the original photo, it measures what resampling blurred away."""
    if not isinstance(image, np.ndarray) or image.ndim not in (2, 3):
        raise ValueError(f"fine_detail: need an [H,W] or [H,W,3] image, got {getattr(image, 'shape', type(image))}")
    x0, y0, x1, y1 = box if box is not None else (0, 0, image.shape[1], image.shape[0])
    part = image[y0:y1, x0:x1]
    grey = cv2.cvtColor(part, cv2.COLOR_BGR2GRAY) if part.ndim == 3 else part
    return float(cv2.Laplacian(grey.astype(np.float32), cv2.CV_32F).var())
