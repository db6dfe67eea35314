"""One Euro filter (Casiez, Roussel, Vogel, CHI 2012) for 68-point landmarks.

Landmarks jitter by a pixel or two from frame to frame; a fixed low-pass filter that
removes that jitter also makes fast expressions lag. The One Euro filter adapts its cutoff
to the speed of the signal: ``cutoff = mincutoff + beta * |dx/dt|``, so a still face is
smoothed hard and a fast mouth movement passes with little lag.

:class:`LandmarkSmoother` filters in face-normalised coordinates (origin at the midpoint of
the eye centres, unit = interocular distance), so the same parameters work for a face near
the camera and one far away. Timestamps are passed in (seconds); there is no clock inside.
Tune with ``beta=0`` first (``mincutoff`` against jitter), then raise ``beta`` against lag.

The points that carry expressions get their own filters (``topology``): the mouth and chin a
large ``beta`` (with one ``beta`` of 0.5 for all points, speech lagged 1.5 frames and reached 77 %
of its mouth opening on real GRID clips), the eyes a larger one still so that a blink's few frames
get through, and the brows a low ``mincutoff`` (steady at rest) with a ``beta`` that lets a raise
through within two frames. Only the nose and jaw sides, which no expression moves fast, are held
hard. Figures: ``scripts/smoothing_study.py`` on GRID and CREMA-D clips; BENCHMARKS.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from reenact.face.topology import BROW_POINTS, EYE_POINTS, LID_PAIRS, MOUTH_POINTS, eye_centres, eye_openings


@dataclass(frozen=True)
class OneEuroConfig:
    """One Euro filter parameters (units of the filtered signal per second)."""

    mincutoff: float = 1.0  # Hz; cutoff for a still signal: lower = less jitter, more lag
    beta: float = 0.5  # speed coefficient: higher = less lag on fast motion
    dcutoff: float = 1.0  # Hz; cutoff of the derivative's own low-pass

    def __post_init__(self) -> None:
        if self.mincutoff <= 0 or self.dcutoff <= 0:
            raise ValueError(f"mincutoff and dcutoff must be > 0, got {self.mincutoff}, {self.dcutoff}")
        if self.beta < 0:
            raise ValueError(f"beta must be >= 0, got {self.beta}")


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    """Smoothing factor of an exponential low-pass with this cutoff (Hz) and time step."""
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """One Euro filter on an array of any fixed shape; every element is filtered independently."""

    def __init__(self, config: OneEuroConfig | None = None, **params: float) -> None:
        self.config = config if config is not None else OneEuroConfig(**params)
        self.reset()

    def reset(self) -> None:
        """Forget the past; the next sample passes through unchanged."""
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        """Filter sample ``x`` taken at time ``t`` (seconds). Returns a new float64 array."""
        x = np.asarray(x, np.float64)
        if self._x is None or self._t is None:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), float(t)
            return x.copy()
        if x.shape != self._x.shape:
            raise ValueError(f"sample shape changed: expected {self._x.shape}, got {x.shape}")
        dt = float(t) - self._t
        if dt <= 0:
            # Repeated or out-of-order timestamp: nothing to learn about speed; keep the state.
            return self._x.copy()
        c = self.config
        dx = (x - self._x) / dt
        self._dx = self._dx + _alpha(c.dcutoff, dt) * (dx - self._dx)
        cutoff = c.mincutoff + c.beta * np.abs(self._dx)
        self._x = self._x + _alpha(cutoff, dt) * (x - self._x)
        self._t = float(t)
        return self._x.copy()

    def set_state(self, index, value: np.ndarray) -> None:
        """Overwrite part of the filtered value (after a correction made outside), so the next sample
        is filtered from there instead of from where the filter had got to."""
        if self._x is not None:
            self._x[index] = value


def normalise(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Face-normalised landmarks: (points - eye midpoint) / interocular. Returns (norm, origin, scale)."""
    r, l_ = eye_centres(points)
    origin = (r + l_) / 2.0
    scale = float(np.linalg.norm(l_ - r))
    if not np.isfinite(scale) or scale < 1e-6:
        raise ValueError("landmarks have no interocular distance (both eyes at one point)")
    return (points - origin) / scale, origin, scale


class LandmarkSmoother:
    """One Euro smoothing of [68,2] landmarks in face-normalised coordinates.

    The face's position (eye midpoint) and scale (interocular distance) are filtered by
    their own One Euro filters in pixels, the shape in normalised units, by group: the mouth and
    chin with ``expression``, the eyes with ``eyes``, the brows with ``brows``, the rest (nose,
    jaw sides) with ``shape``; then mapped back.
    Call :meth:`reset` when tracking is lost so the next face does not glide in from the
    old one.
    """

    def __init__(
        self,
        shape: OneEuroConfig | None = None,
        pose: OneEuroConfig | None = None,
        expression: OneEuroConfig | None = None,
        eyes: OneEuroConfig | None = None,
        brows: OneEuroConfig | None = None,
        blink_gate: tuple[float, float] | None = (0.6, 0.75),
        blink_window_s: float = 3.0,
    ) -> None:
        # Shape in interocular units; pose (origin, scale) in pixels, so it needs a smaller
        # beta: one pixel per second is slow motion there. Lips open for a syllable at ~1-2
        # interocular units per second, so the mouth needs beta ~20 for its cutoff to reach tens
        # of Hz while it moves; at rest its speed is ~0 and it stays smoothed. A blink closes in
        # 2-4 frames: beta 40 (20 reached 75 % of a 2-frame closing, 40 reaches 85 %). Brows rise
        # slower but are still most of the time: mincutoff 0.3 Hz holds them, beta 10 lets a
        # raise reach 98 % of its height 2 frames after dlib's (beta 0.5: 68 %).
        self.shape_filter = OneEuroFilter(shape or OneEuroConfig(mincutoff=1.0, beta=0.5, dcutoff=1.0))
        self.expression_filter = OneEuroFilter(expression or OneEuroConfig(mincutoff=1.0, beta=20.0, dcutoff=1.0))
        self.eye_filter = OneEuroFilter(eyes or OneEuroConfig(mincutoff=1.0, beta=40.0, dcutoff=1.0))
        self.brow_filter = OneEuroFilter(brows or OneEuroConfig(mincutoff=0.3, beta=10.0, dcutoff=1.0))
        self.pose_filter = OneEuroFilter(pose or OneEuroConfig(mincutoff=1.0, beta=0.05, dcutoff=1.0))
        group = np.zeros(68, np.int8)  # 0 shape, 1 mouth and chin, 2 eyes, 3 brows
        group[list(MOUTH_POINTS)], group[list(EYE_POINTS)], group[list(BROW_POINTS)] = 1, 2, 3
        self._groups = [(group == g, f) for g, f in enumerate(
            (self.shape_filter, self.expression_filter, self.eye_filter, self.brow_filter))]
        # A blink is over in a few frames, and the eye filter's speed estimate (itself low-passed)
        # holds it back on the way down and even more on the way up: on CREMA-D the smoothed eye
        # opened again ~3 frames after dlib's. So while an eye is closed past ``blink_gate`` of its
        # recent opening (the median of the last ``blink_window_s``; the smaller of dlib's and the
        # smoothed reading, so the reopening is caught too) its lid points follow dlib's (fully
        # below the first bound, blended up to the second) and the filter goes on from there. A still
        # eye never reaches the gate, so its jitter is smoothed as before; a squint or half blink
        # closing past 0.75 of the recent opening passes as dlib reads it.
        if blink_gate is not None and not 0 < blink_gate[0] < blink_gate[1]:
            raise ValueError(f"blink_gate must be (low, high) with 0 < low < high, got {blink_gate}")
        self.blink_gate = blink_gate
        self.blink_window_s = blink_window_s
        # each eye's lid points (the corners stay smoothed: they do not move in a blink), and their rows
        # in the eye filter's state
        eye_rows = {int(k): i for i, k in enumerate(np.flatnonzero(group == 2))}
        self._lids = [np.array([k for pair in pairs for k in pair]) for pairs in LID_PAIRS]
        self._lid_rows = [np.array([eye_rows[k] for k in lids]) for lids in self._lids]
        self._gaps: list[list[tuple[float, float]]] = [[], []]

    def reset(self) -> None:
        for _, f in self._groups:
            f.reset()
        self.pose_filter.reset()
        self._gaps = [[], []]

    def _pass_blinks(self, norm: np.ndarray, shape: np.ndarray, t: float) -> None:
        """Let a closing (or reopening) eye's lid points through unsmoothed (``blink_gate``), in place."""
        lo, hi = self.blink_gate
        raw, smoothed = eye_openings(norm), eye_openings(shape)
        for e, (lids, rows) in enumerate(zip(self._lids, self._lid_rows, strict=True)):
            hist = self._gaps[e]
            hist.append((t, float(raw[e])))
            while hist and hist[0][0] < t - self.blink_window_s:
                hist.pop(0)
            ref = float(np.median([g for _, g in hist]))
            if ref <= 1e-6:
                continue
            w = min(1.0, max(0.0, (hi - min(raw[e], smoothed[e]) / ref) / (hi - lo)))
            if w > 0:
                shape[lids] += w * (norm[lids] - shape[lids])
                self.eye_filter.set_state(rows, shape[lids])

    def __call__(self, points: np.ndarray, t: float) -> np.ndarray:
        """Smooth one frame's landmarks taken at time ``t`` seconds. Returns [68,2] float32 pixels."""
        if not isinstance(points, np.ndarray):
            raise TypeError(f"points must be a numpy array, got {type(points).__name__}")
        if points.dtype.kind != "f":
            raise TypeError(f"points must be a float array, got {points.dtype}")
        if points.shape != (68, 2):
            raise ValueError(f"points must be [68,2], got {points.shape}")
        norm, origin, scale = normalise(points.astype(np.float64))
        pose = self.pose_filter(np.array([origin[0], origin[1], scale]), t)
        shape = np.empty_like(norm)
        for mask, f in self._groups:
            shape[mask] = f(norm[mask], t)
        if self.blink_gate is not None:
            self._pass_blinks(norm, shape, float(t))
        return (shape * pose[2] + pose[:2]).astype(np.float32)
