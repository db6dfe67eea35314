"""The mouth-interior guide (issue 17): the driver's own mouth interior, placed where J_gen opens the mouth.

A warp of the closed-mouth target photo has no teeth to move, and Ω cannot learn teeth from so
little data; so, as peers do (DESIGN.md), the driver's own interior is used: the pixels inside the
driver's inner lips (points 60-67 of the driver's canonical crop) warped piecewise-affine into
J_gen's inner-lip polygon, colour-matched to the target (``match_colour``, from the skin around
each mouth), with an anti-aliased mask of the polygon. An Ω trained with the guide gets it as
input channels; with ``--mouth-interior driver`` it is also laid over the output inside the mask
(``paste_interior``), since Ω alone (with or without the guide) painted a blurred grey interior.
With the driver's mouth closed (or no driver crop: no face, or ``--mouth-interior generated``)
the guide is empty: zero image, zero mask.

Everything here is numpy and OpenCV on 256² canonical crops (uint8 BGR) and [68,2] crop points.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from reenact.face.rasterize import polygon_mask
from reenact.face.topology import mouth_opening
from reenact.face.warp import Mesh, warp_image

INNER = slice(60, 68)
OUTER = slice(48, 60)
#: The driver's inner-lip opening (over the eye distance; ``topology.mouth_opening``) below which
#: there is no interior to show, and above which the guide is at full strength (a linear ramp between).
OPEN_FROM, OPEN_FULL = 0.03, 0.06
#: The colour-matching region: the outer-lip polygon scaled by this about its centre, less the lips.
AROUND = 1.5
#: Bounds of the colour match's lightness ratio (a driver lit very differently from the target).
GAIN = (0.4, 2.5)
#: The exponent of the skins' lightness ratio in the colour match. The skin around the mouth differs
#: between people as well as between lights, and teeth do not follow skin tone: the full lightness ratio made a dark-skinned driver's
#: teeth glare white on a light-skinned target and greyed a light-skinned driver's on a dark one
#: (validation photo grid).
LIGHT_SHARE = 0.5
#: The colour match's per-axis chroma scale: its bounds, and the least skin colour (a* or b* from
#: neutral grey, 8-bit L*a*b*) a ratio is taken over (a grey-lit skin gives none: scale 1).
CAST_SCALE = (0.1, 4.0)
MIN_CAST = 3.0


@dataclass(frozen=True)
class MouthGuide:
    """What Ω is given beside the warp: the placed interior and where it is, kept as a patch of the crop."""

    patch: np.ndarray  # [h,w,3] uint8 BGR: the driver's interior, colour-matched, zero outside ``alpha``
    alpha: np.ndarray  # [h,w] float32 in [0,1]: J_gen's inner-lip polygon (anti-aliased) x the opening ramp
    box: tuple[int, int, int, int] = (0, 0, 0, 0)  # x0, y0, x1, y1 of the patch in the crop (end exclusive)
    size: int = 256  # side of the crop

    @staticmethod
    def empty(size: int = 256) -> MouthGuide:
        """No guide: a closed mouth, no face, or the ``generated`` interior."""
        return MouthGuide(np.zeros((0, 0, 3), np.uint8), np.zeros((0, 0), np.float32), (0, 0, 0, 0), size)

    @property
    def shown(self) -> bool:
        """Whether there is any guide at all."""
        return bool(self.alpha.size and self.alpha.max() > 0)

    @property
    def image(self) -> np.ndarray:
        """The guide as a [size,size,3] uint8 crop, zero outside the mask."""
        out = np.zeros((self.size, self.size, 3), np.uint8)
        x0, y0, x1, y1 = self.box
        out[y0:y1, x0:x1] = self.patch
        return out

    @property
    def mask(self) -> np.ndarray:
        """The mask as a [size,size] float32 crop in [0,1]."""
        out = np.zeros((self.size, self.size), np.float32)
        x0, y0, x1, y1 = self.box
        out[y0:y1, x0:x1] = self.alpha
        return out


def _box(points: np.ndarray, size: int, pad: int) -> tuple[int, int, int, int]:
    """x0, y0, x1, y1 (end exclusive) around ``points`` plus ``pad``, inside the crop."""
    lo = np.floor(points.min(0)).astype(int) - pad
    hi = np.ceil(points.max(0)).astype(int) + pad + 1
    return max(0, int(lo[0])), max(0, int(lo[1])), min(size, int(hi[0])), min(size, int(hi[1]))


def _around_polygon(points: np.ndarray) -> np.ndarray:
    outer = np.asarray(points, np.float64)[OUTER]
    c = outer.mean(0)
    return c + AROUND * (outer - c)


def _ring_region(points: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """bool, inside ``box``: the outer lips scaled by ``AROUND``, less the lips and the interior."""
    return (polygon_mask(_around_polygon(points), box=box) > 0.5) & ~(polygon_mask(points[OUTER], box=box) > 0.5)


def skin_ring(points: np.ndarray, size: int = 256) -> np.ndarray:
    """bool [size,size]: the skin around the mouth (the outer lips scaled by ``AROUND``), less the lips and the interior."""
    return _ring_region(np.asarray(points, np.float64), (0, 0, size, size))


def mouth_skin_mean(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The mean L*a*b* colour (OpenCV's 8-bit scale) of ``skin_ring``, float32 [3], computed inside
    the ring's box only (the per-frame cost)."""
    p = np.asarray(points, np.float64)
    box = _box(_around_polygon(p), image.shape[0], pad=1)
    region = _ring_region(p, box)
    x0, y0, x1, y1 = box
    lab = cv2.cvtColor(image[y0:y1, x0:x1], cv2.COLOR_BGR2LAB)
    if not region.any():  # degenerate points (a collapsed mouth): the box itself, or mid-grey
        return lab.reshape(-1, 3).astype(np.float32).mean(0) if lab.size else np.full(3, 128.0, np.float32)
    return lab[region].astype(np.float32).mean(0)


def match_colour(pixels: np.ndarray, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """BGR uint8 pixels [...,3] from the driver's light toward the target's, given each one's skin colour
    around the mouth (``mouth_skin_mean``, L*a*b*): lightness scaled by the skins' ratio (bounded by
    ``GAIN``) to the power ``LIGHT_SHARE``; colour (a*, b*) scaled about neutral grey, per axis, by
    the ratio of the skins' colours (bounded by ``CAST_SCALE``), so a warm-lit driver's teeth turn as
    white as the target's light makes them and no colour flips to its opposite.

    Tried and dropped, by looking at validation photo grids, CREMA-D and GRID close-ups: every pixel
    moved by the same L*a*b* offset (teeth grey on light targets, the mouth's dark corners blue); a
    per-channel RGB gain (teeth tinted with the two skin tones' difference); the offset weighted by
    lightness (a GRID speaker's orange light turned the teeth teal on a pale target).
    """
    shape = pixels.shape
    lab = cv2.cvtColor(pixels.reshape(-1, 1, 3), cv2.COLOR_BGR2LAB).astype(np.float32).reshape(-1, 3)
    src, dst = np.asarray(src, np.float32), np.asarray(dst, np.float32)
    lab[:, 0] *= float(np.clip(dst[0] / max(float(src[0]), 1.0), *GAIN)) ** LIGHT_SHARE
    off_src, off_dst = src[1:] - 128.0, dst[1:] - 128.0  # each skin's colour, from neutral grey
    usable = np.abs(off_src) >= MIN_CAST
    k = np.where(usable, off_dst / np.where(usable, off_src, 1.0), 1.0)
    lab[:, 1:] = 128.0 + (lab[:, 1:] - 128.0) * np.clip(k, *CAST_SCALE)
    lab = np.clip(lab + 0.5, 0, 255).astype(np.uint8)
    return cv2.cvtColor(lab.reshape(-1, 1, 3), cv2.COLOR_LAB2BGR).reshape(shape)


def opening_gate(points: np.ndarray) -> float:
    """0 for a closed mouth, 1 for an open one (``OPEN_FROM``..``OPEN_FULL``, linear between)."""
    return float(np.clip((mouth_opening(points) - OPEN_FROM) / (OPEN_FULL - OPEN_FROM), 0.0, 1.0))


#: The inner-lip polygon as a fan of 8 triangles around its centre (vertex 8): the piecewise-affine
#: map from the driver's interior to J_gen's.
_FAN = np.array([[8, i, (i + 1) % 8] for i in range(8)], np.int32)


def _fan(points: np.ndarray) -> np.ndarray:
    inner = np.asarray(points, np.float32)[INNER]
    return np.concatenate([inner, inner.mean(0, keepdims=True)])


def mouth_guide(driver_crop: np.ndarray | None, L_s: np.ndarray, jgen: np.ndarray, target_crop: np.ndarray,
                L_t: np.ndarray, target_skin: np.ndarray | None = None) -> MouthGuide:
    """The driver's mouth interior warped into J_gen's inner lips and colour-matched to the target.

    ``driver_crop``: the driver's frame in the canonical crop (where ``L_s`` are its points), or
    None: no guide. Only pixels inside J_gen's inner-lip polygon are kept (zero elsewhere), so
    nothing of the driver outside their mouth ever reaches Ω. The warp is piecewise affine over a
    fan of the inner-lip polygon; all the work is done in the polygon's box (well under a ms).
    ``target_skin``: ``mouth_skin_mean(target_crop, L_t)`` when already computed (once per target, live).
    """
    size = target_crop.shape[0]
    gate = opening_gate(L_s) if driver_crop is not None else 0.0
    if gate <= 0.0:
        return MouthGuide.empty(size)
    if driver_crop.shape != target_crop.shape or driver_crop.dtype != np.uint8:
        raise ValueError(f"the driver crop must be a uint8 {target_crop.shape} image, got {driver_crop.dtype} {driver_crop.shape}")
    jgen = np.asarray(jgen, np.float32)
    box = _box(jgen[INNER], size, pad=1)
    x0, y0, x1, y1 = box
    if x1 <= x0 or y1 <= y0:
        return MouthGuide.empty(size)
    alpha = polygon_mask(jgen[INNER], box=box)
    if not alpha.any():
        return MouthGuide.empty(size)
    patch = warp_image(driver_crop, Mesh(_fan(L_s), _fan(jgen), _FAN), shape=(y1 - y0, x1 - x0), offset=(x0, y0))
    if target_skin is None:
        target_skin = mouth_skin_mean(target_crop, L_t)
    patch = match_colour(patch, mouth_skin_mean(driver_crop, L_s), target_skin)
    alpha *= gate
    patch[alpha <= 0] = 0
    return MouthGuide(patch, alpha, box, size)


def paste_interior(crop: np.ndarray, guide: MouthGuide) -> np.ndarray:
    """``crop`` (uint8 [size,size,3]) with the guide's interior laid over it in its mask: what
    ``--mouth-interior driver`` shows inside J_gen's inner lips, whatever Ω painted there."""
    if not guide.shown:
        return crop
    out = crop.copy()
    x0, y0, x1, y1 = guide.box
    a = guide.alpha[..., None]
    out[y0:y1, x0:x1] = np.clip(out[y0:y1, x0:x1] * (1.0 - a) + guide.patch * a + 0.5, 0, 255).astype(np.uint8)
    return out


def driver_mouth_crop(image: np.ndarray, to_crop: np.ndarray, L_s: np.ndarray, size: int = 256) -> np.ndarray:
    """The driver's frame in the canonical crop, cut only around the mouth (what ``mouth_guide`` reads:
    the lips, the skin around them and the interior); the rest of the [size,size,3] uint8 crop is zero.

    ``to_crop``: the 2x3 frame→crop affine (``Alignment.M``); ``L_s``: the driver's crop points.
    Cutting a box instead of the whole crop keeps this well under a millisecond.
    """
    x0, y0, x1, y1 = _box(_around_polygon(L_s), size, pad=3)
    out = np.zeros((size, size, 3), np.uint8)
    if x1 <= x0 or y1 <= y0:
        return out
    M = np.asarray(to_crop, np.float64).copy()
    M[:, 2] -= (x0, y0)
    out[y0:y1, x0:x1] = cv2.warpAffine(image, M, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out


def jitter_guide(guide: MouthGuide, rng: np.random.Generator, gain: float = 0.15, shift: float = 12.0) -> MouthGuide:
    """Training augmentation: the guide's brightness scaled by 1 ± ``gain`` and each channel shifted by
    ± ``shift`` grey levels (uniform), so Ω learns to match the target's light rather than trust the match."""
    if not guide.shown:
        return guide
    g = guide.patch.astype(np.float32) * rng.uniform(1 - gain, 1 + gain) + rng.uniform(-shift, shift, 3)
    patch = np.clip(g, 0, 255).astype(np.uint8)
    patch[guide.alpha <= 0] = 0
    return MouthGuide(patch, guide.alpha, guide.box, guide.size)


__all__ = ["MouthGuide", "driver_mouth_crop", "jitter_guide", "match_colour", "mouth_guide", "mouth_skin_mean",
           "opening_gate", "paste_interior", "polygon_mask", "skin_ring"]
