#!/usr/bin/env bash
# The paper's own system to the paper's schedule, and pix2pix to the same budget (issue 21), on a CPU:
#   RUN/paper    variant `paper`, preset lite: Φ 400 epochs (4,400 steps), then Ω 120 epochs (1,320 steps)
#   RUN/pix2pix  the paper's pix2pix baseline: the same Ω fed the source's landmark image, 120 epochs
#   scripts/train_paper.sh [DATA] [RUN] [PHI_STEPS]
# SIGMA (default 5): the width of each landmark dot in the key-point images, pixels at 256² (the paper
# does not say; 1.5-px dots left Φ without a gradient toward a moved point: see the model card).
# PHI_STEPS cuts Φ short (the shipped Φ stopped early; see the model card); without it, the paper's 400 epochs.
# Every run resumes from its checkpoint when rerun. Φ validates every 10 epochs (it scores all 415
# validation pairs: every epoch took as long as the steps), Ω every epoch (32 pairs): the Fig. 5-6 curves.
# Then: python scripts/ship_paper.py RUN/paper          (-> reenact/weights/paper, float16, + ONNX)
#       reenact eval --split test --max-pairs 100 --paper-weights paper --pix2pix-weights RUN/pix2pix --out eval-test
set -euo pipefail
DATA=${1:-"$(dirname "$0")/../../shared/data"}
RUN=${2:-runs/paper-full}
PHI_STEPS=${3:-}
THREADS=${THREADS:-2}
SIGMA=${SIGMA:-5}
common=(--data "$DATA" --variant paper --preset lite --split-seed 0 --threads "$THREADS" --checkpoint-every 110
        --raster-sigma "$SIGMA")
reenact train phi "${common[@]}" --out "$RUN/paper" --val-every 110 ${PHI_STEPS:+--steps "$PHI_STEPS"}
reenact train omega "${common[@]}" --out "$RUN/paper"
reenact train omega "${common[@]}" --out "$RUN/pix2pix" --pix2pix
echo "paper in $RUN/paper, pix2pix in $RUN/pix2pix"
