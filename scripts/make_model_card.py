"""Write reenact/weights/card.json and MODEL_CARD.md from a training run and its evaluation.

    python scripts/make_model_card.py --weights reenact/weights --run RUN_DIR --eval EVAL_DIR/eval.json \
        --data ../shared/data --command "scripts/train_default.sh …" --train-time "…" --machine "…"
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def metrics_at(path: Path, step: int) -> dict:
    """The validation record of ``step`` (the shipped checkpoint), else the last one before it."""
    rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.is_file() else []
    rows = [r for r in rows if r.get("step", 0) <= step and "val_ssim" in r]
    return rows[-1] if rows else {}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", type=Path, required=True)
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--eval", dest="eval_json", type=Path, required=True)
    ap.add_argument("--eval-md", type=Path, default=None)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--command", required=True)
    ap.add_argument("--train-time", required=True)
    ap.add_argument("--machine", required=True)
    ap.add_argument("--notes", default="")
    args = ap.parse_args()

    from reenact.config import EXTRA_LOSS_DEFAULTS
    from reenact.eval.smoke import four_pair_expression_error
    from reenact.weights_io import atomic_write_bytes, atomic_write_json, read_config, read_meta

    cfg = read_config(args.weights)
    omega_meta = read_meta(args.weights / "omega.safetensors")
    phi_meta = read_meta(args.weights / "phi.safetensors")
    four = four_pair_expression_error(args.weights, args.data)
    ev = json.loads(args.eval_json.read_text())
    card = {
        "variant": cfg.variant,
        "preset": cfg.preset,
        "base_width": cfg.base_width,
        "omega_steps": int(omega_meta.get("step", 0)),
        "phi_best_step": phi_meta.get("best_step"),
        "four_pair_expression_error": four,
        "eval": ev,
    }
    atomic_write_json(args.weights / "card.json", card)
    table = args.eval_md.read_text() if args.eval_md and args.eval_md.is_file() else "(see card.json)"
    val = metrics_at(args.run / "metrics_omega.jsonl", card["omega_steps"])
    tcfg_path = args.run / "train_omega.json"
    tcfg = json.loads(tcfg_path.read_text()) if tcfg_path.is_file() else {}
    extra = tcfg.get("extra_losses") or []
    weights = {**EXTRA_LOSS_DEFAULTS, **(tcfg.get("extra_loss_weights") or {})}
    loss = "μ = 1, 100" + (f", plus {' and '.join(f'`{e}` ×{weights[e]:g}' for e in extra)} (`--extra-loss`)" if extra else "")
    fed = {"truth": "fed the real J_o", "phi": "fed Φ's J_gen"}.get(tcfg.get("omega_landmarks"), "")
    md = f"""# Model card: reenact default weights

- **Model:** Φ (guided landmark fusion, coordinates) + Ω (Table 1 U-Net, base width {cfg.base_width}),
  variant `{cfg.variant}`, preset `{cfg.preset}`; crop {cfg.preprocess.crop_size}², anchors `{cfg.preprocess.anchors}`,
  raster `{cfg.preprocess.raster}`. Files: `config.json`, `phi/omega.safetensors` (training, export),
  `phi/omega.onnx` (the live path).
- **Training:** Ω trained {card['omega_steps']} steps at batch 8 (Adam 2e-4/1e-4, β=(0.5, 0.999), {loss}{"; " + fed if fed else ""});
  Φ kept at its best validation step ({card['phi_best_step']}; see below). Validation at step {val.get('step', '?')}:
  SSIM {val.get('val_ssim', float('nan')):.4f}, PSNR {val.get('val_psnr', float('nan')):.2f} dB (32 validation pairs).
- **Command:** `{args.command}`
- **Training time and machine:** {args.train_time}; {args.machine}.
- **Data:** Face Research Lab London Set (L. DeBruine and B. Jones, doi:10.6084/m9.figshare.5047666.v5,
  CC BY 4.0, downscaled to 512²) and GRID (M. Cooke, J. Barker, S. Cunningham, X. Shao, JASA 2006,
  doi:10.5281/zenodo.3625687, CC BY 4.0), split 70/10/20 by person (seed 0).
- **Landmarks:** dlib's 68-point predictor, trained on iBUG 300-W (non-commercial terms).
- **Check figure:** expression error on the first four photo test pairs = {four:.3f} px (tests/test_weights.py
  recomputes it within 10 %).

## Test-split results

{table}

Reproduce: `reenact eval --split test --max-pairs 100 --paper-weights RUN_PAPER --pix2pix-weights RUN_PIX2PIX --out eval-test`
(`scripts/train_baselines.sh DATA RUN` trains both: RUN_PAPER = RUN/paper, `reenact train phi/omega --variant paper`;
RUN_PIX2PIX = RUN/pix2pix, `reenact train omega --variant paper --pix2pix`).
The paper's 0.805 SSIM / 25.6 dB (Table 3) are CK+ figures (grey images, the paper's split) and are not
comparable with these.

{args.notes}
"""
    atomic_write_bytes(args.weights / "MODEL_CARD.md", md.encode())
    print(f"wrote {args.weights / 'card.json'} and MODEL_CARD.md (four-pair expression error {four:.3f})")


if __name__ == "__main__":
    main()
