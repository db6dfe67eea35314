#!/usr/bin/env bash
# Train the two baselines the model card compares against, on a CPU:
#   RUN/paper    the paper's variant exactly (Φ and Ω on landmark images), short run
#   RUN/pix2pix  the paper's pix2pix baseline (Ω fed the source's landmark image, no Φ)
#   scripts/train_baselines.sh [DATA] [RUN] [OMEGA_STEPS]
# Then: reenact eval --split test --paper-weights RUN/paper --pix2pix-weights RUN/pix2pix
# Both are far shorter than the paper's 400/120 epochs: about 10 minutes each on 2 cores.
set -euo pipefail
DATA=${1:-"$(dirname "$0")/../../shared/data"}
RUN=${2:-runs/baselines}
STEPS=${3:-500}
reenact train phi   --data "$DATA" --out "$RUN/paper" --variant paper --preset lite --steps 100 --threads 2
reenact train omega --data "$DATA" --out "$RUN/paper" --variant paper --preset lite --steps "$STEPS" \
    --val-every 250 --checkpoint-every 250 --threads 2
reenact train omega --data "$DATA" --out "$RUN/pix2pix" --variant paper --preset lite --pix2pix --steps "$STEPS" \
    --val-every 250 --checkpoint-every 250 --threads 2
echo "baselines in $RUN/paper and $RUN/pix2pix"
