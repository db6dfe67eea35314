#!/usr/bin/env python3
"""GPU measurements for scripts/gpu_check.sh: torch CUDA FP16 vs FP32 parity and Φ+Ω frame time.

    PYTHONPATH=. python3 scripts/gpu_check.py torch    --json out.json [--replay R.npz] [--runs 200]
    PYTHONPATH=. python3 scripts/gpu_check.py tensorrt --json out.json [--replay R.npz] [--runs 200]

Random weights (BatchNorm statistics randomised as after training) for `lite` and `paper`,
both variants, unless trained weights sit in reenact/weights. Inputs are real-looking: the
replayed landmarks and recorded target crop (reenact.inference.samples). Never imports dlib.

The FP32 reference is IEEE FP32 (the torch backend turns cuDNN's default TF32 off). Every step
of every case runs on its own: a failure is recorded in that row's "errors" (step -> message),
the steps that need its result are skipped, and the other cases go on; the JSON is rewritten
after each row, so a timeout keeps what was measured.
"""

from __future__ import annotations

import argparse
import json
import os
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
from reenact.inference.engines import psnr  # noqa: E402
from reenact.inference.samples import sample_inputs  # noqa: E402
from reenact.models import build_omega, build_phi  # noqa: E402
from reenact.paths import WEIGHTS_DIR  # noqa: E402
from reenact.weights_io import save_state, write_config  # noqa: E402

CASES = [("guided", "lite"), ("guided", "paper"), ("paper", "lite"), ("paper", "paper")]


def make_weights(folder: Path, variant: str, preset: str, seed: int = 0) -> Path:
    """Random weights with trained-looking BatchNorm statistics (or the shipped weights when they match)."""
    if (WEIGHTS_DIR / "config.json").is_file():
        from reenact.weights_io import read_config

        cfg = read_config(WEIGHTS_DIR)
        if (cfg.variant, cfg.preset) == (variant, preset):
            return WEIGHTS_DIR
    cfg = model_config(variant, preset)
    torch.manual_seed(seed)
    nets = {"phi": build_phi(cfg), "omega": build_omega(cfg)}
    g = torch.Generator().manual_seed(seed)
    for net in nets.values():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    if variant == "guided":
        torch.nn.init.normal_(nets["phi"].net[-1].weight, std=0.02)
    folder.mkdir(parents=True, exist_ok=True)
    for name, net in nets.items():
        save_state(folder / f"{name}.safetensors", net.state_dict(), name, cfg)
    write_config(folder, cfg, {"untrained": True})
    return folder


def parity(ref, test, samples) -> dict:
    out = {}
    for name in ("phi", "omega"):
        a = np.concatenate([getattr(ref, name)(*(s[0] if name == "phi" else (s[1],))).ravel() for s in samples])
        b = np.concatenate([getattr(test, name)(*(s[0] if name == "phi" else (s[1],))).ravel() for s in samples])
        out[name] = {"max_abs": float(np.nanmax(np.abs(a - b))), "psnr_db": round(psnr(a, b), 2),
                     "nan": bool(not np.isfinite(b).all())}
    return out


def frame_time(backend, samples, runs: int) -> dict:
    """Median / p95 ms of Φ + Ω per frame through the numpy API (includes host<->device copies)."""
    for s in samples[:3]:
        backend.phi(*s[0])
        backend.omega(s[1])
    times = []
    for i in range(runs):
        s = samples[i % len(samples)]
        t0 = time.perf_counter()
        backend.phi(*s[0])
        backend.omega(s[1])
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {"median_ms": round(statistics.median(times), 3), "p95_ms": round(times[int(0.95 * (len(times) - 1))], 3)}


def device_time(backend, runs: int) -> float | None:
    """Median ms of one Φ + Ω CUDA-graph replay pair measured with CUDA events (no copies)."""
    runners = getattr(backend, "_runners", None)
    if not runners or not getattr(backend, "cuda_graphs", False):
        return None
    times = []
    for _ in range(runs):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        runners["phi"].graph.replay()
        runners["omega"].graph.replay()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return round(statistics.median(times), 3)


REFERENCE = "IEEE FP32 (TF32 off), eager"


class Steps:
    """Runs the steps of one row; a failing step is recorded in ``row["errors"]`` and returns None."""

    def __init__(self, row: dict) -> None:
        self.row = row

    def __call__(self, name: str, fn, *args, needs: tuple = (), **kw):
        missing = [n for n, v in needs if v is None]
        if missing:
            self.row.setdefault("skipped", {})[name] = "needs " + ", ".join(missing)
            return None
        try:
            return fn(*args, **kw)
        except Exception as exc:  # noqa: BLE001 - report every failure; one step never stops the check
            self.row.setdefault("errors", {})[name] = f"{type(exc).__name__}: {exc}"
            print(f"!! {self.row.get('variant')}/{self.row.get('preset')} {name}: {type(exc).__name__}: {exc}",
                  file=sys.stderr, flush=True)
            return None


def start_case(args, tmp: Path, variant: str, preset: str) -> tuple[dict, Steps, Path | None, list | None, object]:
    """One case's row and step runner, its weights, real-looking inputs and the IEEE FP32 reference backend."""
    row: dict = {"variant": variant, "preset": preset, "reference": REFERENCE}
    step = Steps(row)
    folder = step("weights", make_weights, tmp / f"{variant}-{preset}", variant, preset)
    samples = step("inputs", sample_inputs, model_config(variant, preset), 8, replay=args.replay)
    ref = step("fp32 backend", create_backend, "torch", folder, device="cuda", precision="fp32", cuda_graphs=False,
               needs=(("weights", folder),))
    return row, step, folder, samples, ref


def run_torch(args, tmp: Path, emit=lambda rows: None) -> list[dict]:
    rows: list[dict] = []
    for variant, preset in CASES:
        row, step, folder, samples, ref = start_case(args, tmp, variant, preset)
        fp16 = step("fp16 backend", create_backend, "torch", folder, device="cuda", precision="fp16", cuda_graphs=True,
                    needs=(("weights", folder),))
        row["parity_fp16_vs_fp32"] = step("parity", parity, ref, fp16, samples,
                                          needs=(("fp32 backend", ref), ("fp16 backend", fp16), ("inputs", samples)))
        row["fp16_graphs"] = step("fp16 timing", frame_time, fp16, samples, args.runs,
                                  needs=(("fp16 backend", fp16), ("inputs", samples)))
        row["fp16_graphs_device_ms"] = step("fp16 device timing", device_time, fp16, args.runs,
                                            needs=(("fp16 backend", fp16),))
        row["fp32_eager"] = step("fp32 timing", frame_time, ref, samples, max(20, args.runs // 4),
                                 needs=(("fp32 backend", ref), ("inputs", samples)))
        rows.append(row)
        print(json.dumps(row), flush=True)
        emit(rows)
        del ref, fp16
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return rows


def run_tensorrt(args, tmp: Path, emit=lambda rows: None) -> list[dict]:
    from reenact.inference import engines

    rows: list[dict] = []
    for variant, preset in [("guided", "lite"), ("guided", "paper")]:
        row, step, folder, samples, ref = start_case(args, tmp, variant, preset)
        t0 = time.perf_counter()
        built = step("build", engines.build_engines, folder, tmp / "engines", replay=args.replay, needs=(("weights", folder),))
        if built is not None:
            row["build_s"] = round(time.perf_counter() - t0, 1)
        trt = step("tensorrt backend", create_backend, "tensorrt", folder, engines_dir=tmp / "engines",
                   needs=(("build", built),))
        row["parity_fp16_vs_fp32"] = step("parity", parity, ref, trt, samples,
                                          needs=(("fp32 backend", ref), ("tensorrt backend", trt), ("inputs", samples)))
        row["trt_fp16_graphs"] = step("tensorrt timing", frame_time, trt, samples, args.runs,
                                      needs=(("tensorrt backend", trt), ("inputs", samples)))
        if trt is not None:
            step("close", trt.close)
        rows.append(row)
        print(json.dumps(row), flush=True)
        emit(rows)
    return rows


def write_json(path: Path, info: dict, rows: list[dict]) -> None:
    """Atomically (a timeout between rows keeps the rows so far)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"info": info, "rows": rows}, indent=2))
    os.replace(tmp, path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["torch", "tensorrt"])
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--replay", type=Path, default=None)
    ap.add_argument("--runs", type=int, default=200)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device visible to torch", file=sys.stderr)
        return 1
    torch.backends.cudnn.benchmark = True
    info = {"gpu": torch.cuda.get_device_name(0), "sm": ".".join(map(str, torch.cuda.get_device_capability(0))),
            "torch": torch.__version__, "cuda": torch.version.cuda}
    write_json(args.json, info, [])
    run = run_torch if args.what == "torch" else run_tensorrt
    with tempfile.TemporaryDirectory(prefix="reenact-gpu-") as tmp:
        rows = run(args, Path(tmp), emit=lambda rows: write_json(args.json, info, rows))
    return 1 if any(r.get("errors") for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
