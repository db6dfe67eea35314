#!/usr/bin/env python3
"""How well can any landmark predictor built on the source's displacement do? (Geometry only.)

For the eval's photo and video pairs, the mean distance (crop px, all 68 points and the mouth)
between a predicted J_gen and the real J_o, for: ``copy`` (J_gen = L_t), ``warp`` (L_t + L_s − J_s,
the shipped guided Φ), ``mean`` (L_t + the mean training displacement, ignoring the source),
``alpha a`` (L_t + a·(L_s − J_s)), and ``linear`` (a ridge regression from the source's
displacement to the target's, fitted on the train split's photo and video pairs, equal weight).
It shows the trade-off issue 5's targets meet: on London photos every source makes a different
smile, so another person's displacement is a worse guess than none, while on video the actor's
own displacement is nearly exact.

    python scripts/displacement_study.py --data ../shared/data [--split test] [--max-pairs 100]
"""

from __future__ import annotations

import argparse

import numpy as np

from reenact.data.datasets import build_bank, make_pairs
from reenact.eval.evaluate import mean_displacement, select_pairs

MOUTH = slice(48, 68)


def _disp(P, p) -> np.ndarray:
    return (P[p.source] - P[p.source_neutral]).ravel()


def fit_linear(bank, k: int = 16, lam: float = 10.0):
    """Ridge map (no bias: no expression, no change) from the source's displacement to the
    target's, in the top-k principal directions of the training displacements."""
    P = bank.points
    ident = [r.identity for r in bank.records]
    pairs = make_pairs(bank, "train", neutral_share=0.0)
    sets = [[p for p in pairs if p.kind == "photo" and ident[p.target] != ident[p.source]],
            [p for p in pairs if p.kind == "video"]]
    X = [np.array([_disp(P, p) for p in s]) for s in sets if s]
    Y = [np.array([(P[p.truth] - P[p.target]).ravel() for p in s]) for s in sets if s]
    w = np.concatenate([np.full(len(x), 1.0 / len(x)) for x in X])
    Xa, Ya = np.concatenate(X), np.concatenate(Y)
    V = np.linalg.svd(Xa * np.sqrt(w)[:, None], full_matrices=False)[2][:k]
    Z = Xa @ V.T
    B = np.linalg.solve((Z * w[:, None]).T @ Z + lam * np.eye(k) / len(Z), (Z * w[:, None]).T @ Ya)
    return lambda d: (d @ V.T) @ B


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", default="test", choices=["val", "test"])
    ap.add_argument("--max-pairs", type=int, default=100)
    a = ap.parse_args()
    bank = build_bank(a.data, progress=False)
    P = bank.points
    m = mean_displacement(bank).ravel()
    lin = fit_linear(bank)
    preds = {"copy": lambda p: np.zeros(136), "warp": lambda p: _disp(P, p), "mean": lambda p: m}
    for al in (0.3, 0.5, 0.7):
        preds[f"alpha {al}"] = lambda p, al=al: al * _disp(P, p)
    preds["linear"] = lambda p: lin(_disp(P, p))
    sets = select_pairs(bank, a.split, a.max_pairs, 0)
    print(f"split {a.split}: mean landmark distance to J_o, crop px (photo n={len(sets['photo'])}, video n={len(sets['video'])})\n")
    print("| predictor | photo, 68 pts | photo, mouth | video, 68 pts | video, mouth |")
    print("|:--|--:|--:|--:|--:|")
    for name, f in preds.items():
        row = []
        for s in ("photo", "video"):
            d = np.array([np.linalg.norm(P[p.target] + f(p).reshape(68, 2) - P[p.truth], axis=1) for p in sets[s]])
            row += [f"{d.mean():.2f}", f"{d[:, MOUTH].mean():.2f}"] if len(d) else ["–", "–"]
        print(f"| {name} | " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
