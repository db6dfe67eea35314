"""Whole-face expression measures (issue 17) and scripted held-expression drivers; no torch.

Measured by re-detecting landmarks on the output and on the driver, frame by frame, so they score
what a viewer sees, whatever made the output. Features are read in the face's own frame (origin
between the eye corners, x along the eye line, unit = the distance between the eye centres), so
head roll, position and size do not count. The unit is the distance between the midpoints of each
eye's corners (close to the eye-centre distance, and unlike it not moved by a blink):

* **brow height**: how far the brows (17-26) sit above the eye corners;
* **eye opening**: the mean of the four lid gaps (37-41, 38-40, 43-47, 44-46);
* **mouth opening**: the inner-lip gap (``topology.mouth_opening``); **mouth width**: 48-54.

Following is the Pearson r of a feature between driver and output across a clip
(``metrics.driver_following``). **Blink depth** is the output's eye opening on the driver's blink
frames (the driver's opening below ``BLINK`` of its median) over the output's own median: 1 = the
output's eyes never closed, 0 = shut. **Held-expression retention** is a feature's amplitude
(over its value before the expression) at the end of a hold over that at its start. **Teeth area**
counts the pixels inside the inner-lip polygon (60-67) that are at least ``TEETH_LIGHT`` as light
as the cheeks and at most ``TEETH_CHROMA`` as coloured (L*a*b* chroma), over the eye distance
squared (DESIGN.md).

:func:`scripted_driver` moves a neutral face's landmarks along scripted curves (talking, brows
raised and held, frown, squint, smile held, slow and fast blinks), the landmark-level driver for
the neutral estimate and the smoothing (``tests/test_expressive.py``, ``scripts/smoothing_study.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from reenact.eval.metrics import driver_following
from reenact.face.topology import interocular

#: Feature names, in the column order of :func:`face_features`.
FEATURES: tuple[str, ...] = ("brow", "eye", "mouth_open", "mouth_width")
#: A driver frame is a blink frame when its eye opening is below this fraction of its median.
BLINK = 0.6
#: Teeth pixels: at least this fraction of the cheeks' lightness, at most this fraction of their chroma.
TEETH_LIGHT = 0.8
TEETH_CHROMA = 0.8
#: A frame shows teeth when its teeth area is above this (eye distance squared; a 5 x 20 px patch
#: between eyes 64 px apart is 0.024).
TEETH_SHOWN = 0.02

_LIDS = ((37, 41), (38, 40), (43, 47), (44, 46))
_BROWS = list(range(17, 27))
_CORNERS = [36, 39, 42, 45]


def _check_points(points: np.ndarray) -> np.ndarray:
    p = np.asarray(points, np.float64)
    if p.ndim == 2:
        p = p[None]
    if p.ndim != 3 or p.shape[1:] != (68, 2):
        raise ValueError(f"landmarks must be [68,2] or [T,68,2], got {np.shape(points)}")
    return p


def eye_distance(points: np.ndarray) -> float:
    """The unit of every feature here: the distance between the midpoints of each eye's corners."""
    p = np.asarray(points, np.float64)
    return float(np.linalg.norm(p[[42, 45]].mean(0) - p[[36, 39]].mean(0)))


def face_frame(points: np.ndarray) -> np.ndarray:
    """Landmarks in the face's own frame: origin between the eye corners, x along the eye line,
    y down, unit = the distance between the eyes' corner midpoints. [68,2] float64 (nan in, nan out)."""
    p = np.asarray(points, np.float64)
    r, l_ = p[[36, 39]].mean(0), p[[42, 45]].mean(0)
    iod = eye_distance(p)
    if not np.isfinite(iod) or iod < 1e-6:
        return np.full((68, 2), np.nan)
    ex = (l_ - r) / iod
    ey = np.array([-ex[1], ex[0]])  # x rotated by +90 degrees: down in image coordinates
    q = p - p[_CORNERS].mean(0)
    return np.stack([q @ ex, q @ ey], 1) / iod


def face_features(points: np.ndarray) -> np.ndarray:
    """[T,4] features (``FEATURES``) of [T,68,2] (or [68,2] -> [1,4]) landmarks; a frame whose
    points are nan (no face found) gives a row of nan."""
    out = []
    for p in _check_points(points):
        if not np.all(np.isfinite(p)):
            out.append([np.nan] * 4)
            continue
        f = face_frame(p)
        out.append([
            -float(f[_BROWS, 1].mean()),
            float(np.mean([np.linalg.norm(f[a] - f[b]) for a, b in _LIDS])),
            float(np.linalg.norm(f[[61, 62, 63]] - f[[67, 66, 65]], axis=1).mean()),
            float(np.linalg.norm(f[54] - f[48])),
        ])
    return np.array(out, np.float64)


def following(driver: np.ndarray, output: np.ndarray) -> dict[str, float]:
    """Pearson r of each feature, driver [T,4] vs output [T,4] (``face_features``); nan where
    undefined (fewer than 3 frames with both faces, or a constant series)."""
    d, o = np.asarray(driver, np.float64), np.asarray(output, np.float64)
    if d.shape != o.shape or d.ndim != 2 or d.shape[1] != len(FEATURES):
        raise ValueError(f"following: need two [T,{len(FEATURES)}] feature arrays of one shape, got {d.shape} and {o.shape}")
    return {name: driver_following(d[:, i], o[:, i]) for i, name in enumerate(FEATURES)}


def blink_frames(driver_eye: np.ndarray, blink: float = BLINK) -> np.ndarray:
    """Indices of the driver's blink frames: eye opening below ``blink`` x its median."""
    e = np.asarray(driver_eye, np.float64)
    med = np.nanmedian(e) if np.any(np.isfinite(e)) else np.nan
    return np.flatnonzero(np.isfinite(e) & (e < blink * med))


def blink_depth(driver_eye: np.ndarray, output_eye: np.ndarray, blink: float = BLINK) -> float:
    """The output's eye opening on the driver's blink frames over the output's own median (lower =
    deeper; the driver's own figure is ``blink_depth(e, e)``); nan without blink frames."""
    d, o = np.asarray(driver_eye, np.float64), np.asarray(output_eye, np.float64)
    if d.shape != o.shape or d.ndim != 1:
        raise ValueError(f"blink_depth: need two 1-d series of one length, got {d.shape} and {o.shape}")
    idx = blink_frames(d, blink)
    idx = idx[np.isfinite(o[idx])]
    med = np.nanmedian(o) if np.any(np.isfinite(o)) else np.nan
    if idx.size == 0 or not med > 0:
        return math.nan
    return float(np.mean(o[idx]) / med)


def retention(series: np.ndarray, before: slice, start: slice, end: slice) -> float:
    """Amplitude of a held expression at its end over that at its start: ``mean(series[end]) -
    mean(series[before])`` over ``mean(series[start]) - mean(series[before])``; nan if it never showed."""
    s = np.asarray(series, np.float64)
    base = np.nanmean(s[before])
    a0, a1 = np.nanmean(s[start]) - base, np.nanmean(s[end]) - base
    if not np.isfinite(a0) or abs(a0) < 1e-9:
        return math.nan
    return float(a1 / a0)


# --------------------------------------------------------------------------- teeth
def _cheek_patches(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A disc on each cheek (between the jaw at nose height and the nose's side), bool [H,W]."""
    mask = np.zeros(shape, np.uint8)
    r = max(2, int(round(0.12 * eye_distance(points))))
    for jaw, nose in ((2, 31), (14, 35)):
        c = (points[jaw] + points[nose]) / 2
        cv2.circle(mask, (int(round(c[0])), int(round(c[1]))), r, 1, -1)
    return mask.astype(bool)


def teeth_mask(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Pixels inside the inner lips (60-67) light and grey enough to be teeth, bool [H,W]."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"teeth_mask: need a BGR uint8 [H,W,3] image, got {getattr(image, 'shape', type(image))}")
    p = _check_points(points)[0]
    lab = cv2.cvtColor(image, cv2.COLOR_BGR2LAB).astype(np.float64)
    light = lab[..., 0]
    chroma = np.hypot(lab[..., 1] - 128.0, lab[..., 2] - 128.0)
    cheeks = _cheek_patches(p, image.shape[:2])
    inner = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(inner, [np.round(p[60:68]).astype(np.int32)], 1)
    if not cheeks.any() or not inner.any():
        return np.zeros(image.shape[:2], bool)
    ref_l, ref_c = float(np.median(light[cheeks])), float(np.median(chroma[cheeks]))
    return inner.astype(bool) & (light >= TEETH_LIGHT * ref_l) & (chroma <= TEETH_CHROMA * ref_c)


def teeth_area(image: np.ndarray, points: np.ndarray) -> float:
    """Visible-teeth pixels (``teeth_mask``) over the eye distance squared."""
    p = _check_points(points)[0]
    return float(teeth_mask(image, p).sum() / max(eye_distance(p), 1e-6) ** 2)


def teeth_ratio(driver_area: np.ndarray, output_area: np.ndarray, shown: float = TEETH_SHOWN) -> float:
    """Output's teeth area over the driver's, summed on the frames where the driver shows teeth
    (area above ``shown``); nan when the driver never does."""
    d, o = np.asarray(driver_area, np.float64), np.asarray(output_area, np.float64)
    sel = np.isfinite(d) & np.isfinite(o) & (d > shown)
    if not sel.any():
        return math.nan
    return float(o[sel].sum() / d[sel].sum())


# --------------------------------------------------------------------------- scripted drivers
def move(points: np.ndarray, kind: str, amount: float) -> np.ndarray:
    """A neutral face's landmarks [68,2] showing expression ``kind`` at ``amount`` (0 = none,
    1 = full): ``brows`` raised by 0.15 eye distances, ``frown`` (inner brows down 0.08 and in
    0.05), ``squint`` (upper lids down and lower lids up, to 0.4 of the opening), ``smile``
    (corners out 0.08 and up 0.08), ``blink`` (upper lids onto the lower ones), ``talk`` (jaw
    and lower lip down 0.3)."""
    p = np.asarray(points, np.float64).copy()
    iod = eye_distance(p)
    r, l_ = p[[36, 39]].mean(0), p[[42, 45]].mean(0)
    ex = (l_ - r) / np.linalg.norm(l_ - r)
    up = np.array([ex[1], -ex[0]])  # the face's up, in image coordinates
    k = amount * iod
    if kind == "brows":
        p[_BROWS] += 0.15 * k * up
    elif kind == "frown":
        for i, side in ((19, 1), (20, 1), (21, 1), (22, -1), (23, -1), (24, -1)):
            w = 1.0 if i in (21, 22) else 0.6
            p[i] += w * k * (-0.08 * up + 0.05 * side * ex)
    elif kind in ("squint", "blink"):
        close = 0.6 if kind == "squint" else 1.0
        for a, b in _LIDS:
            gap = p[b] - p[a]
            p[a] += amount * close * (0.8 if kind == "squint" else 1.0) * gap
            if kind == "squint":
                p[b] -= amount * close * 0.2 * gap
    elif kind == "smile":
        for corner, side in ((48, -1), (54, 1), (60, -1), (64, 1)):
            p[corner] += k * (0.08 * side * ex + 0.08 * up)
        for i in (49, 53, 59, 55):
            p[i] += 0.5 * k * 0.08 * up
    elif kind == "talk":
        from reenact.synthetic import open_mouth

        p = open_mouth(p, 0.3 * amount * iod / interocular(p)).astype(np.float64)
    else:
        raise ValueError(f"unknown expression {kind!r}; expected brows, frown, squint, smile, blink or talk")
    return p


@dataclass(frozen=True)
class Segment:
    """One scripted expression: ``kind`` rises over ``rise_s``, holds ``hold_s``, falls over ``fall_s``."""

    kind: str  # move()'s kinds
    start_s: float  # when it starts rising
    rise_s: float
    hold_s: float
    fall_s: float
    amount: float = 1.0

    def curve(self, t: np.ndarray) -> np.ndarray:
        """The amount at times ``t`` (seconds): a trapezoid with cosine edges."""
        a, b = self.start_s, self.start_s + self.rise_s
        c, d = b + self.hold_s, b + self.hold_s + self.fall_s
        up = 0.5 - 0.5 * np.cos(np.pi * np.clip((t - a) / max(self.rise_s, 1e-9), 0, 1))
        down = 0.5 + 0.5 * np.cos(np.pi * np.clip((t - c) / max(self.fall_s, 1e-9), 0, 1))
        return self.amount * np.where(t < c, up, down) * (t >= a) * (t <= d + 1e-9)

    @property
    def end_s(self) -> float:
        return self.start_s + self.rise_s + self.hold_s + self.fall_s


def talking(start_s: float, seconds: float, syllable_s: float = 0.24) -> list[Segment]:
    """Speech as a row of syllables (the mouth opens and closes), varied in size."""
    n = int(seconds / syllable_s)
    return [Segment("talk", start_s + i * syllable_s, syllable_s * 0.4, syllable_s * 0.1, syllable_s * 0.4,
                    0.4 + 0.6 * ((i * 7) % 5) / 4) for i in range(n)]


#: The default script: 6 s of talking, then brows raised and held 10 s, a frown, a squint and a
#: smile held 5 s each, with talking between them, a slow blink (0.6 s) and two fast ones (0.2 s).
DEFAULT_SCRIPT: tuple[Segment, ...] = tuple(
    talking(0.0, 6.0)
    + [Segment("brows", 6.5, 0.2, 10.0, 0.3)]
    + talking(17.5, 2.0)
    + [Segment("frown", 20.0, 0.3, 5.0, 0.3), Segment("squint", 26.0, 0.3, 5.0, 0.3)]
    + talking(32.0, 2.0)
    + [Segment("smile", 34.5, 0.4, 5.0, 0.4), Segment("blink", 41.0, 0.25, 0.1, 0.25)]
    + [Segment("blink", 42.5, 0.07, 0.0, 0.13), Segment("blink", 43.5, 0.07, 0.0, 0.13)]
)


def scripted_driver(neutral: np.ndarray, script: tuple[Segment, ...] = DEFAULT_SCRIPT, fps: float = 30.0,
                    noise: float = 0.0, seed: int = 0, tail_s: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Landmarks of a neutral face ([68,2], any image's pixels) moved along ``script``, one frame
    every 1/fps s until the last segment ends plus ``tail_s`` (at rest), with optional Gaussian noise (``noise`` x
    eye distance, dlib's is ~0.01). Segments add up: a blink on a squint closes the squinted eye.
    Returns (points [T,68,2] float32, times [T] seconds)."""
    base = np.asarray(neutral, np.float64)
    if base.shape != (68, 2):
        raise ValueError(f"neutral must be [68,2], got {base.shape}")
    t = np.arange(int(round((max(s.end_s for s in script) + tail_s) * fps))) / fps
    frames = np.repeat(base[None], len(t), 0)
    for seg in script:
        amounts = seg.curve(t)
        for i in np.flatnonzero(amounts > 0):
            frames[i] += move(base, seg.kind, float(amounts[i])) - base
    if noise > 0:
        frames += np.random.default_rng(seed).normal(0, noise * eye_distance(base), frames.shape)
    return frames.astype(np.float32), t


def landmark_jitter(points: np.ndarray) -> float:
    """RMS second difference of face-normalised landmarks (eye-centre units, x1000) over [T,68,2]
    frames, frames without a face (nan rows) left out; nan with fewer than 3 frames with a face."""
    from reenact.face.smoothing import normalise

    p = _check_points(points)
    ok = np.all(np.isfinite(p), axis=(1, 2))
    n = np.array([normalise(q)[0] if k else np.full((68, 2), np.nan) for q, k in zip(p, ok, strict=True)])
    d2 = n[2:] - 2 * n[1:-1] + n[:-2]
    sq = (d2 ** 2).sum(-1)
    if not np.any(np.isfinite(sq)):
        return math.nan
    return 1000 * float(np.sqrt(np.nanmean(sq)))


def redetect(frames, detector) -> np.ndarray:
    """Landmarks of each frame (BGR uint8) by ``detector`` (``face.landmarks.create_detector``),
    [T,68,2] float64 with nan rows where no face is found."""
    out = []
    for f in frames:
        lm = detector.detect(f)
        out.append(lm.points.astype(np.float64) if lm.found else np.full((68, 2), np.nan))
    return np.array(out).reshape(-1, 68, 2)
