#!/usr/bin/env python
"""The model card's figures for the paper's own system (issue 21), into docs/images/:

* ``paper_curves.png`` — the paper's Fig. 5–6 (validation SSIM and PSNR against epochs) for the
  paper's Ω and for pix2pix trained to the same budget, and Φ's validation L1 (eq. 5) against epochs;
* ``paper_vs_baselines.jpg`` — test pairs (3 cross-identity photos, 3 video frames): target, source,
  truth, then warp, guided (default), pix2pix and paper.

    python scripts/paper_figures.py --paper reenact/weights/paper --pix2pix RUN/pix2pix [--data DATA]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from reenact.eval import plots  # noqa: E402


def titled(img: np.ndarray, title: str) -> np.ndarray:
    bar = np.full((36, img.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, title, (12, 26), plots.FONT, 0.75, plots.BLACK, 2, cv2.LINE_AA)
    return np.vstack([bar, img])


def curves(paper: Path, pix2pix: Path, out: Path) -> None:
    tmp = out.parent / ".curves_tmp.png"
    rows = []
    for folder, title in ((paper, "paper: Omega on Phi's J_gen"), (pix2pix, "pix2pix: Omega on the source's landmarks")):
        plots.curves_png(folder / "metrics_omega.jsonl", tmp)
        rows.append(titled(cv2.imread(str(tmp)), title))
    plots.curves_png(paper / "metrics_phi.jsonl", tmp, keys=("val_l1",))
    phi = titled(cv2.imread(str(tmp)), "paper: Phi, L1 between J_gen and J_o (eq. 5)")
    tmp.unlink()
    w = rows[0].shape[1]
    phi = np.hstack([phi, np.full((phi.shape[0], w - phi.shape[1], 3), 255, np.uint8)])
    plots.write_png(out, np.vstack(rows + [phi]))


def picture_grid(paper: Path, pix2pix: Path, data: Path, out: Path, cell: int = 128) -> None:
    from reenact.data.datasets import build_bank
    from reenact.eval.evaluate import load_model, mean_displacement, methods, select_pairs
    from reenact.paths import WEIGHTS_DIR

    models = {"default": load_model(WEIGHTS_DIR, "default", "onnx", 2), "paper": load_model(paper, "paper", "onnx", 2),
              "pix2pix": load_model(pix2pix, "pix2pix", "torch", 2)}
    bank = build_bank(data, seed=0, progress=False)
    sets = select_pairs(bank, "test", 100, 0)
    gens = methods(models["default"], models["paper"], models["pix2pix"], mean_displacement(bank))
    rng = np.random.default_rng(0)
    pairs = [sets["photo"][i] for i in sorted(rng.choice(len(sets["photo"]), 3, replace=False))]
    # video: the three pairs with the largest mouth change (different frames; different clips first)
    change = lambda p: float(np.linalg.norm(bank.points[p.truth][48:68] - bank.points[p.target][48:68]))  # noqa: E731
    ranked = sorted(sets["video"], key=change, reverse=True)
    chosen: list = []
    for same_clip_ok in (False, True):
        for p in ranked:
            clips = {bank.records[q.target].group for q in chosen}
            if len(chosen) < 3 and p.truth not in {q.truth for q in chosen} and (
                    same_clip_ok or bank.records[p.target].group not in clips):
                chosen.append(p)
    pairs += chosen
    cols = ["target", "source", "truth", "warp", "guided", "pix2pix", "paper"]
    header = np.full((30, cell * len(cols), 3), 255, np.uint8)
    for j, name in enumerate(cols):
        cv2.putText(header, name, (j * cell + 8, 21), plots.FONT, 0.55, plots.BLACK, 1, cv2.LINE_AA)
    rows = [header]
    for p in pairs:
        cells = [bank.crops[p.target], bank.crops[p.source], bank.crops[p.truth]] + [gens[m](bank, p) for m in cols[3:]]
        rows.append(np.hstack([cv2.resize(c, (cell, cell), interpolation=cv2.INTER_AREA) for c in cells]))
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), np.vstack(rows), [cv2.IMWRITE_JPEG_QUALITY, 88])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--paper", type=Path, default=ROOT / "reenact" / "weights" / "paper")
    ap.add_argument("--pix2pix", type=Path, required=True)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = ap.parse_args()
    curves(args.paper, args.pix2pix, args.out / "paper_curves.png")
    picture_grid(args.paper, args.pix2pix, args.data, args.out / "paper_vs_baselines.jpg")
    print(f"wrote {args.out / 'paper_curves.png'} and {args.out / 'paper_vs_baselines.jpg'}")


if __name__ == "__main__":
    main()
