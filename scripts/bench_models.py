#!/usr/bin/env python3
"""Φ and Ω forward time (PyTorch and ONNX Runtime, CPU) and one Ω + D_I training step, as a markdown table.

    PYTHONPATH=. python3 scripts/bench_models.py [--threads 2] [--runs 20] [--budget-s 10] [--steps 2]

Random weights of both variants at the `lite` and `paper` presets, exported to ONNX in a
temporary folder. Each forward figure is the median of up to --runs calls after warm-up (fewer
when one call is so slow that --runs would exceed --budget-s; the count is printed). Training:
one D step + one G step (adversarial + L1, Adam) of Ω and D_I at batch 8. The table says which
machine and when; a contended CPU inflates every figure.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from reenact.config import model_config  # noqa: E402
from reenact.inference.backend import create_backend  # noqa: E402
from reenact.inference.export import export_onnx  # noqa: E402
from reenact.inference.samples import sample_inputs  # noqa: E402
from reenact.models import build_d_i, build_omega, build_phi  # noqa: E402
from reenact.weights_io import save_state, write_config  # noqa: E402


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def timed(fn, runs: int, budget_s: float) -> tuple[float, int]:
    """(median ms, runs used) after one warm-up call; stops early when over budget (at least 3 runs)."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    n = max(3, min(runs, int(budget_s / max(first, 1e-6))))
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), n


def train_step_s(preset: str, steps: int) -> float:
    """Seconds per Ω + D_I step at batch 8 (guided variant, 9 input channels)."""
    cfg = model_config("guided", preset)
    gen, disc = build_omega(cfg).train(), build_d_i(cfg).train()
    og = torch.optim.Adam(gen.parameters(), 2e-4, betas=(0.5, 0.999))
    od = torch.optim.Adam(disc.parameters(), 1e-4, betas=(0.5, 0.999))
    bce = torch.nn.BCEWithLogitsLoss()
    x = torch.rand(8, cfg.omega_in_channels, 256, 256) * 2 - 1
    real = torch.rand(8, 3, 256, 256) * 2 - 1
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        head = gen(x)
        fake = torch.clamp(x[:, 3:6] + head[:, 3:4] * head[:, :3], -1, 1)
        cond = x[:, :3]
        d_real = disc(cond, real)
        d_fake = disc(cond, fake.detach())
        loss_d = bce(d_real, torch.ones_like(d_real)) + bce(d_fake, torch.zeros_like(d_fake))
        od.zero_grad()
        loss_d.backward()
        od.step()
        g_fake = disc(cond, fake)
        loss_g = bce(g_fake, torch.ones_like(g_fake)) + 100 * (fake - real).abs().mean()
        og.zero_grad()
        loss_g.backward()
        og.step()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--budget-s", type=float, default=10.0)
    ap.add_argument("--steps", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory(prefix="reenact-bench-models-") as tmp:
        for preset in ("lite", "paper"):
            for variant in ("guided", "paper"):
                cfg = model_config(variant, preset)
                folder = Path(tmp) / f"{variant}-{preset}"
                folder.mkdir()
                torch.manual_seed(0)
                save_state(folder / "phi.safetensors", build_phi(cfg).state_dict(), "phi", cfg)
                save_state(folder / "omega.safetensors", build_omega(cfg).state_dict(), "omega", cfg)
                write_config(folder, cfg)
                export_onnx(folder)
                phi_in, om_in = sample_inputs(cfg, 1)[0]
                for name in ("torch", "onnx"):
                    opts = {"threads": args.threads}
                    if name == "torch":
                        opts["cuda_graphs"] = False
                    b = create_backend(name, folder, device="cpu", **opts)
                    phi_ms, n_phi = timed(lambda b=b, a=phi_in: b.phi(*a), args.runs, args.budget_s)
                    om_ms, n_om = timed(lambda b=b, a=om_in: b.omega(a), args.runs, args.budget_s)
                    rows.append((preset, cfg.base_width, variant, name, phi_ms, n_phi, om_ms, n_om))
                    print(f"  {preset} {variant} {name}: Φ {phi_ms:.2f} ms (n={n_phi}), Ω {om_ms:.2f} ms (n={n_om})",
                          file=sys.stderr, flush=True)
        train = [(p, model_config("guided", p).base_width, train_step_s(p, args.steps)) for p in ("lite", "paper")]

    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(f"Machine: {os.cpu_count()} CPUs ({cpu_model()}), {args.threads} threads, torch {torch.__version__}, "
          f"onnxruntime {__import__('onnxruntime').__version__}; {datetime.datetime.now():%Y-%m-%d %H:%M}; "
          f"load average at the end {load[0]:.1f} (other jobs share the CPU).")
    print()
    print("| preset (Ω width) | variant | backend | Φ ms (median, n) | Ω ms (median, n) | Φ + Ω ms |")
    print("|---|---|---|---|---|---|")
    for preset, width, variant, name, phi_ms, n_phi, om_ms, n_om in rows:
        print(f"| {preset} ({width}) | {variant} | {name} | {phi_ms:.2f} ({n_phi}) | {om_ms:.2f} ({n_om}) | {phi_ms + om_ms:.2f} |")
    print()
    print(f"| training step (Ω + D_I, batch 8, guided) | s per step (median of {args.steps}) |")
    print("|---|---|")
    for preset, width, s in train:
        print(f"| {preset} (width {width}) | {s:.2f} |")
    return 0 if np.isfinite([r[4] for r in rows]).all() else 1


if __name__ == "__main__":
    sys.exit(main())
