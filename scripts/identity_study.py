#!/usr/bin/env python3
"""Where does the identity distance of issue 5 come from? (No training; a weights folder.)

For the eval's photo and video pairs, the eval's measures (identity distance among them) of:
``copy`` (P_t), ``warp`` (the source's displacement), ``oracle_warp`` (P_t warped exactly onto
the real J_o: perfect geometry, no new pixels), ``blur_copy`` (P_t blurred, σ = 1 px),
``oracle_warp_lower`` (the same, but only the jaw and mouth points move: brows, eyes and nose
stay where P_t has them), ``oracle`` (Ω fed J_o) and the model itself, the model's output unsharp-masked where it differs
from P_t (``sharp0.5``, ``sharp1.0``: is the lost identity blur?), and ``truth`` (I_o: 0 by definition). If
``oracle_warp`` already costs what the target allows, geometry alone cannot meet it: Ω must
paint what a warp cannot (teeth, the inside of the mouth). Last, ``copy``, ``oracle_warp`` and the
model again on each half of the pairs split by how open the real mouth is (the median of J_o's
mouth opening): if the cost were the mouth interior, the open half would pay more.

    python scripts/identity_study.py --data ../shared/data [--weights reenact/weights] [--split val]
"""

from __future__ import annotations

import argparse
import json

import cv2
import numpy as np

from reenact.data.datasets import build_bank
from reenact.eval.evaluate import _Scorer, load_model, mean_displacement, methods, score_pairs, select_pairs
from reenact.face.topology import PARTS, mouth_opening
from reenact.face.warp import warp_crop
from reenact.paths import WEIGHTS_DIR


def sharpen(out: np.ndarray, target: np.ndarray, amount: float, sigma: float = 1.0) -> np.ndarray:
    """Unsharp mask (σ px, ``amount``) applied only where ``out`` differs from the target crop
    (feathered), i.e. where the warp and Ω resampled pixels."""
    o = out.astype(np.float32)
    sharp = o + amount * (o - cv2.GaussianBlur(o, (0, 0), sigma))
    moved = (np.abs(out.astype(np.int16) - target.astype(np.int16)).max(-1) > 2).astype(np.float32)
    moved = cv2.GaussianBlur(cv2.dilate(moved, np.ones((5, 5), np.uint8)), (0, 0), 2)[..., None]
    return np.clip(o + moved * (sharp - o), 0, 255).astype(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--weights", default=None, help="weights folder (default: the shipped weights)")
    ap.add_argument("--split", default="val", choices=["val", "test"])
    ap.add_argument("--max-pairs", type=int, default=60)
    ap.add_argument("--json", default=None, help="also write the figures here")
    a = ap.parse_args()
    bank = build_bank(a.data, progress=False)
    sets = select_pairs(bank, a.split, a.max_pairs, 0)
    model = load_model(a.weights or WEIGHTS_DIR, "default", "onnx", 2)
    base = methods(model, None, None, mean_displacement(bank))
    gens = {k: base[k] for k in ("copy", "warp", "oracle", model.cfg.variant)}
    gens["oracle_warp"] = lambda b, p: warp_crop(b.crops[p.target], b.points[p.target], b.points[p.truth])
    lower = np.r_[PARTS["jaw"][0]:PARTS["jaw"][1], PARTS["outer_lip"][0]:68]  # jaw, outer and inner lips

    def oracle_warp_lower(b, p):
        dst = b.points[p.target].copy()
        dst[lower] = b.points[p.truth][lower]
        return warp_crop(b.crops[p.target], b.points[p.target], dst)

    gens["oracle_warp_lower"] = oracle_warp_lower
    gens["blur_copy"] = lambda b, p: cv2.GaussianBlur(b.crops[p.target], (0, 0), 1.0)
    model_gen = base[model.cfg.variant]
    for amount in (0.5, 1.0):
        gens[f"sharp{amount}"] = (lambda a: lambda b, p: sharpen(model_gen(b, p), b.crops[p.target], a))(amount)
    gens["truth"] = lambda b, p: b.crops[p.truth]
    scorer = _Scorer()
    out: dict = {}
    for set_name, pairs in sets.items():
        print(f"{set_name} (n={len(pairs)})  identity  Δ vs copy  expr.err  lower SSIM")
        for name, gen in gens.items():
            r = score_pairs(bank, pairs, gen, scorer, set_name == "video")
            out[f"{set_name}/{name}"] = r.to_dict()
            d = r.identity_distance - out[f"{set_name}/copy"]["identity_distance"]
            print(f"  {name:12s} {r.identity_distance:.3f}    {d:+.3f}    {r.expression_error:.2f}     {r.lower_ssim:.3f}")
        opening = np.array([mouth_opening(bank.points[p.truth]) for p in pairs])
        median = float(np.median(opening))
        for half, keep in (("closed half", opening <= median), ("open half", opening > median)):
            sub = [p for p, k in zip(pairs, keep, strict=True) if k]
            rs = {n: score_pairs(bank, sub, gens[n], scorer, False).identity_distance
                  for n in ("copy", "oracle_warp", model.cfg.variant)}
            out[f"{set_name}/{half}"] = rs
            print(f"  {half} (n={len(sub)}): " + ", ".join(f"{n} {v:.3f} ({v - rs['copy']:+.3f})" for n, v in rs.items()))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
