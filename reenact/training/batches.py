"""Training and validation batches: numpy arrays in the canonical crop, drawn from a FaceBank's pairs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reenact.data.datasets import FaceBank, Pair
from reenact.face.flip import flip_image, flip_points

_FIELDS = ("P_t", "L_t", "L_s", "J_s", "J_o", "I_o", "weight", "S")
_IMAGES = ("P_t", "I_o", "S")


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
    S: np.ndarray | None = None  # [B,256,256,3] uint8: the source's crop (the mouth guide reads its interior)


def _stack(cols: dict[str, list]) -> Batch:
    return Batch(**{k: np.stack(v).astype(np.float32 if k not in _IMAGES else np.uint8) for k, v in cols.items()})


def _flip_sample(crops: list[np.ndarray], points: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    w = crops[0].shape[1]
    return [flip_image(c) for c in crops], [flip_points(p, w) for p in points]


def make_batch(bank: FaceBank, pairs: list[Pair], rng: np.random.Generator, batch_size: int, flip: bool = True,
               blink_share: float = 0.0, blinks: list[Pair] | None = None) -> Batch:
    """Draw a batch: photo and video pairs half and half when both exist; random left-right flips.

    ``blink_share``: the share of video draws taken from ``blinks`` (pairs whose truth is a blink
    frame, :func:`blink_pairs`), so Ω sees shut lids more often than GRID's few blinks give.
    """
    photo = [p for p in pairs if p.kind == "photo"]
    video = [p for p in pairs if p.kind == "video"]
    chosen = []
    for _ in range(batch_size):
        pool = photo if (photo and (not video or rng.random() < 0.5)) else video
        if pool is video and blinks and blink_share > 0 and rng.random() < blink_share:
            pool = blinks
        chosen.append(pool[int(rng.integers(len(pool)))])
    cols: dict[str, list] = {k: [] for k in _FIELDS}
    for p in chosen:
        crops = [bank.crops[p.target], bank.crops[p.truth], bank.crops[p.source]]
        pts = [bank.points[p.target], bank.points[p.source], bank.points[p.source_neutral], bank.points[p.truth]]
        if flip and rng.random() < 0.5:
            crops, pts = _flip_sample(crops, pts)
        cols["P_t"].append(crops[0])
        cols["I_o"].append(crops[1])
        cols["S"].append(crops[2])
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
        cols["S"].append(bank.crops[p.source])
        cols["L_t"].append(bank.points[p.target])
        cols["L_s"].append(bank.points[p.source])
        cols["J_s"].append(bank.points[p.source_neutral])
        cols["J_o"].append(bank.points[p.truth])
        cols["weight"].append(1.0)
    return _stack(cols)


def blink_pairs(bank: FaceBank, pairs: list[Pair], blink: float = 0.6) -> list[Pair]:
    """The video pairs whose truth frame is a blink: its mean lid gap below ``blink`` x its clip's median."""
    from reenact.face.eyes import lid_gaps

    video = [p for p in pairs if p.kind == "video"]
    gaps = {i: float(lid_gaps(bank.points[i]).mean()) for i in {p.truth for p in video}}

    def clip(i: int) -> str:
        return bank.records[i].group or bank.records[i].path

    by_clip: dict[str, list[float]] = {}
    for i, g in gaps.items():
        by_clip.setdefault(clip(i), []).append(g)
    med = {c: float(np.median(v)) for c, v in by_clip.items()}
    return [p for p in video if gaps[p.truth] < blink * med[clip(p.truth)]]
