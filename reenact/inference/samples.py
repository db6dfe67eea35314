"""Deterministic, real-looking network inputs for parity checks and benchmarks (numpy + OpenCV).

Random noise is a poor test of an FP16 engine or an exporter: real inputs are mostly flat
background with thin landmark lines and a face. These inputs are built the way the live path
builds them (:mod:`reenact.inputs`): from landmarks replayed from a file when one is given, else
from the canonical template moved through a few expressions (mouth open, smile, brows up), and
a face crop when one is given, else a synthetic face drawn from the landmarks. No torch, no dlib.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from reenact.config import ModelConfig
from reenact.face.align import align_points
from reenact.face.mouth import mouth_guide
from reenact.face.topology import PARTS, TEMPLATE_256
from reenact.generate import omega_input, phi_inputs

_REPLAY_KEYS = ("source_points", "crop_points", "points_crop", "landmarks_crop", "landmarks", "points")


def expression(points: np.ndarray, mouth_open: float = 0.0, smile: float = 0.0, brows: float = 0.0) -> np.ndarray:
    """Move a neutral [68,2] face through a simple expression (pixels in the 256 crop)."""
    p = np.array(points, np.float32, copy=True)
    lower_lip = [55, 56, 57, 58, 59, 64, 65, 66, 67]
    p[lower_lip, 1] += mouth_open
    p[[6, 7, 8, 9, 10], 1] += 0.6 * mouth_open  # the jaw follows the mouth
    for corner, side in ((48, -1.0), (54, 1.0), (60, -1.0), (64, 1.0)):
        p[corner, 0] += side * smile
        p[corner, 1] -= 0.6 * smile
    a, b = PARTS["right_brow"][0], PARTS["left_brow"][1]
    p[a:b, 1] -= brows
    return p


def sample_landmarks(n: int = 8, seed: int = 0) -> np.ndarray:
    """n canonical-crop faces [n,68,2]: the template through expressions, small head motion and jitter."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, 68, 2), np.float32)
    for i in range(n):
        t = i / max(n - 1, 1)
        face = expression(TEMPLATE_256, mouth_open=14.0 * np.sin(np.pi * t), smile=8.0 * t, brows=4.0 * (1 - t))
        ang = np.deg2rad(rng.normal(0, 2.0))
        rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]], np.float32)
        c = np.array([128.0, 128.0], np.float32)
        face = (face - c) @ rot.T * (1 + rng.normal(0, 0.02)) + c + rng.normal(0, 1.0, 2)
        out[i] = face + rng.normal(0, 0.3, (68, 2))
    return out


def load_replay(path: str | os.PathLike, limit: int | None = None) -> np.ndarray:
    """Landmarks [T,68,2] in canonical-crop pixels from a replay ``.npz`` (recorded by ``reenact bench``).

    Takes the first of the keys ``source_points`` (``reenact bench --record``), ``crop_points``, ``points_crop``, ``landmarks_crop``, ``landmarks``,
    ``points`` (or the first [T,68,2] array), aligned to the canonical crop frame by frame
    (frames without a face, NaN rows, are dropped).
    """
    with np.load(Path(path)) as data:
        arr = next((data[k] for k in _REPLAY_KEYS if k in data.files), None)
        if arr is None:
            arr = next((data[k] for k in data.files if data[k].ndim == 3 and data[k].shape[1:] == (68, 2)), None)
    if arr is None or arr.ndim != 3 or arr.shape[1:] != (68, 2):
        raise ValueError(f"{path} holds no [T,68,2] landmark array (looked for {', '.join(_REPLAY_KEYS)})")
    arr = arr.astype(np.float32)
    arr = arr[np.isfinite(arr).all(axis=(1, 2))]
    if limit is not None:
        arr = arr[:limit]
    # frame pixels -> canonical crop (for points already in the crop this is close to identity)
    arr = np.stack([align_points(p).to_crop(p) for p in arr]).astype(np.float32)
    return arr


def load_replay_target(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray] | None:
    """(aligned 256² crop, its [68,2] crop points) of the target recorded in a replay, or None."""
    with np.load(Path(path)) as data:
        if "target_png" not in data.files or "target_points" not in data.files:
            return None
        image = cv2.imdecode(data["target_png"], cv2.IMREAD_COLOR)
        points = data["target_points"].astype(np.float32)
    if image is None or points.shape != (68, 2):
        return None
    al = align_points(points)
    return al.crop(image), al.to_crop(points).astype(np.float32)


def synthetic_face(points: np.ndarray, size: int = 256) -> np.ndarray:
    """A deterministic drawn face (uint8 HxWx3 BGR) for landmarks: skin, eyes, brows, nose, lips."""
    p = np.asarray(points, np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    img = np.stack([90 + 60 * yy / size, 110 + 30 * xx / size, 120 + 0 * xx], -1).astype(np.uint8)  # background
    jaw = p[0:17]
    top = p[17:27][::-1] - np.array([0, 28], np.float32)  # forehead above the brows
    cv2.fillPoly(img, [np.round(np.concatenate([jaw, top])).astype(np.int32)], (120, 150, 200), cv2.LINE_AA)
    for name in ("right_eye", "left_eye"):
        a, b = PARTS[name]
        cv2.fillPoly(img, [np.round(p[a:b]).astype(np.int32)], (235, 235, 235), cv2.LINE_AA)
        c = p[a:b].mean(0)
        cv2.circle(img, (int(round(c[0])), int(round(c[1]))), 4, (60, 40, 30), -1, cv2.LINE_AA)
    for name in ("right_brow", "left_brow", "nose_bridge", "nose_bottom"):
        a, b = PARTS[name]
        cv2.polylines(img, [np.round(p[a:b]).astype(np.int32)], False, (60, 80, 110), 2, cv2.LINE_AA)
    cv2.fillPoly(img, [np.round(p[48:60]).astype(np.int32)], (90, 90, 170), cv2.LINE_AA)
    cv2.fillPoly(img, [np.round(p[60:68]).astype(np.int32)], (40, 30, 60), cv2.LINE_AA)  # mouth interior
    noise = np.random.default_rng(0).normal(0, 3, img.shape)
    return np.clip(cv2.GaussianBlur(img, (3, 3), 0) + noise, 0, 255).astype(np.uint8)


def sample_inputs(cfg: ModelConfig, n: int = 4, seed: int = 0, replay: str | os.PathLike | None = None,
                  target_crop: np.ndarray | None = None, target_points: np.ndarray | None = None,
                  ) -> list[tuple[tuple[np.ndarray, ...], np.ndarray]]:
    """n pairs (Φ inputs, Ω input): driver frames from ``replay`` or :func:`sample_landmarks`.

    The target is ``target_crop``/``target_points`` when given (a real aligned face), else the
    replay's recorded target, else the synthetic face of the template. J_gen for Ω's input is the plain landmark transfer
    L_t + (L_s − J_s), the same geometry the guided Φ starts from.
    """
    drivers = load_replay(replay, limit=max(n, 2)) if replay is not None else sample_landmarks(max(n, 2), seed)
    neutral = drivers[0]
    if target_crop is None and replay is not None:
        recorded = load_replay_target(replay)
        if recorded is not None:
            target_crop, target_points = recorded
    tgt = np.asarray(target_points, np.float32) if target_points is not None else TEMPLATE_256.astype(np.float32)
    crop = target_crop if target_crop is not None else synthetic_face(tgt)
    out = []
    for i in range(n):
        src = drivers[i % len(drivers)]
        jgen = tgt + (src - neutral)
        # an Ω with the mouth guide gets the driver's interior (the synthetic face drawn with the driver's points)
        guide = mouth_guide(synthetic_face(src), src, jgen, crop, tgt) if getattr(cfg, "mouth_guide", False) else None
        x, _ = omega_input(cfg, crop, tgt, jgen, guide=guide)
        out.append((phi_inputs(cfg, src, neutral, tgt), x[None]))
    return out


__all__ = ["expression", "load_replay", "load_replay_target", "sample_inputs", "sample_landmarks", "synthetic_face"]
