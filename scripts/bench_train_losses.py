#!/usr/bin/env python3
"""Seconds per Ω training step (batch 8, the shipped `lite` recipe) with and without extra losses.

    PYTHONPATH=. python3 scripts/bench_train_losses.py --data ../shared/data [--threads 2] [--rounds 4] [--steps 5]

One trainer per loss set, all on the same data and the shipped Φ, stepped in turns (``--steps``
steps each, ``--rounds`` times) so that a noisy shared CPU affects every set alike; the table
gives the median seconds per step and its ratio to the first set (the shipped recipe).
"""

from __future__ import annotations

import argparse
import datetime
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_models import cpu_model  # noqa: E402

from reenact.config import TrainConfig  # noqa: E402
from reenact.data.datasets import build_bank  # noqa: E402
from reenact.paths import WEIGHTS_DIR  # noqa: E402
from reenact.training.trainer import Trainer  # noqa: E402
from reenact.weights_io import read_config  # noqa: E402

SHIPPED = ("mouth_l1", "feature_matching", "gradient")
SETS = {"shipped (mouth_l1 + feature_matching + gradient)": SHIPPED,
        "without gradient (the recipe before 2026-11-29)": SHIPPED[:2],
        "+ identity": (*SHIPPED, "identity"), "+ mouth_gan": (*SHIPPED, "mouth_gan")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--steps", type=int, default=5)
    a = ap.parse_args()
    bank = build_bank(a.data, progress=False)
    mcfg = read_config(WEIGHTS_DIR)
    with tempfile.TemporaryDirectory() as tmp:
        trainers = {}
        for i, (name, extra) in enumerate(SETS.items()):
            out = Path(tmp) / str(i)
            out.mkdir()
            for f in ("config.json", "phi.safetensors"):
                shutil.copy(WEIGHTS_DIR / f, out / f)
            cfg = TrainConfig(stage="omega", model=mcfg, steps=10**6, batch_size=8, num_threads=a.threads,
                              omega_landmarks="truth", extra_losses=extra)
            trainers[name] = Trainer(cfg, bank, out)
        times: dict[str, list[float]] = {n: [] for n in trainers}
        for t in trainers.values():  # warm-up
            t.train_step()
        for _ in range(a.rounds):
            for name, t in trainers.items():
                for _ in range(a.steps):
                    t0 = time.perf_counter()
                    t.train_step()
                    times[name].append(time.perf_counter() - t0)
    base = statistics.median(next(iter(times.values())))
    print(f"{cpu_model()}, {a.threads} threads, {datetime.date.today()}, "
          f"{a.rounds}x{a.steps} steps each, batch 8\n")
    print("| losses | s/step (median) | vs shipped |\n|:--|--:|--:|")
    for name, ts in times.items():
        m = statistics.median(ts)
        print(f"| {name} | {m:.3f} | {m / base:.2f}x |")


if __name__ == "__main__":
    main()
