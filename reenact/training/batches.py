"""Training and validation batches: numpy arrays in the canonical crop, drawn from a FaceBank's pairs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reenact.data.datasets import FaceBank, Pair
from reenact.face.flip import flip_image, flip_points

_FIELDS = ("P_t", "L_t", "L_s", "J_s", "J_o", "I_o", "weight")


@dataclass
class Batch:
    """One batch in numpy, everything in the canonical crop."""

    P_t: np.ndarray  # [B,256,256,3] uint8
    L_t: np.ndarray  # [B,68,2]
    L_s: np.ndarray
    J_s: np.ndarray
    J_o: np.ndarray
    I_o: np.ndarray  # [B,256,256,3] uint8
    weight: np.ndarray  # [B]


def _stack(cols: dict[str, list]) -> Batch:
    return Batch(**{k: np.stack(v).astype(np.float32 if k not in ("P_t", "I_o") else np.uint8) for k, v in cols.items()})


def _flip_sample(crops: list[np.ndarray], points: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    w = crops[0].shape[1]
    return [flip_image(c) for c in crops], [flip_points(p, w) for p in points]


def make_batch(bank: FaceBank, pairs: list[Pair], rng: np.random.Generator, batch_size: int, flip: bool = True) -> Batch:
    """Draw a batch: photo and video pairs half and half when both exist; random left-right flips."""
    photo = [p for p in pairs if p.kind == "photo"]
    video = [p for p in pairs if p.kind == "video"]
    chosen = []
    for _ in range(batch_size):
        pool = photo if (photo and (not video or rng.random() < 0.5)) else video
        chosen.append(pool[int(rng.integers(len(pool)))])
    cols: dict[str, list] = {k: [] for k in _FIELDS}
    for p in chosen:
        crops = [bank.crops[p.target], bank.crops[p.truth]]
        pts = [bank.points[p.target], bank.points[p.source], bank.points[p.source_neutral], bank.points[p.truth]]
        if flip and rng.random() < 0.5:
            crops, pts = _flip_sample(crops, pts)
        cols["P_t"].append(crops[0])
        cols["I_o"].append(crops[1])
        for k, v in zip(("L_t", "L_s", "J_s", "J_o"), pts, strict=True):
            cols[k].append(v)
        cols["weight"].append(min(bank.weights[p.target], bank.weights[p.truth]))
    return _stack(cols)


def ordered_batch(bank: FaceBank, pairs: list[Pair]) -> Batch:
    """The pairs as one batch, in order, unflipped (validation and evaluation)."""
    cols: dict[str, list] = {k: [] for k in _FIELDS}
    for p in pairs:
        cols["P_t"].append(bank.crops[p.target])
        cols["I_o"].append(bank.crops[p.truth])
        cols["L_t"].append(bank.points[p.target])
        cols["L_s"].append(bank.points[p.source])
        cols["J_s"].append(bank.points[p.source_neutral])
        cols["J_o"].append(bank.points[p.truth])
        cols["weight"].append(1.0)
    return _stack(cols)
