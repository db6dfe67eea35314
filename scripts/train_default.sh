#!/usr/bin/env bash
# Reproduce the shipped default weights (guided variant, lite preset) from the data, on a CPU.
#   scripts/train_default.sh [DATA] [RUN_DIR] [OMEGA_STEPS]
# Checkpoints go to RUN_DIR every 250 steps; rerunning resumes. Ω is fed the real landmarks J_o
# while it trains (--omega-landmarks truth), with the mouth L1, D_I feature matching and the
# gradient difference loss added to the paper's loss (seed 1), and the checkpoint with the best
# validation SSIM (omega_best; step 1000 of 1000 for the shipped weights, ~17 min at one thread) is
# what ships. It is exported to ONNX and copied into reenact/weights/ with the validation curves.
# Training is deterministic on one machine at one thread count (reruns gave bit-identical weights),
# but not across thread counts or float summation orders. The shipped Ω came from a study script
# that summed the gradient term in another order, so this reproduces its recipe (see the model card
# for how far a rerun lands), not its exact bytes.
set -euo pipefail
DATA=${1:-"$(dirname "$0")/../../shared/data"}
RUN=${2:-runs/guided-lite}
STEPS=${3:-1000}
reenact train phi   --data "$DATA" --out "$RUN" --variant guided --preset lite --epochs 400 --threads 2
reenact train omega --data "$DATA" --out "$RUN" --variant guided --preset lite --steps "$STEPS" \
    --val-every 250 --checkpoint-every 250 --threads 2 --omega-landmarks truth \
    --extra-loss mouth_l1 --extra-loss feature_matching --extra-loss gradient --seed 1
cp "$RUN"/omega_best.safetensors "$RUN"/omega.safetensors
reenact export --weights "$RUN"
DEST="$(dirname "$0")/../reenact/weights"
mkdir -p "$DEST"
cp "$RUN"/config.json "$RUN"/phi.safetensors "$RUN"/omega.safetensors "$RUN"/phi.onnx "$RUN"/omega.onnx "$DEST"/
cp "$RUN"/metrics_phi.jsonl "$RUN"/metrics_omega.jsonl "$DEST"/
echo "weights in $DEST; now: reenact eval --split test --out eval-test"
