#!/usr/bin/env python
"""Copy a trained `paper` run into the package as the shipped `paper` weights (reenact/weights/paper).

    python scripts/ship_paper.py RUN [--omega last|best] [--dest reenact/weights/paper]

RUN is the folder `scripts/train_paper.sh` trained (Φ then Ω, --variant paper). What ships:
config.json, phi/omega.safetensors, phi/omega.onnx, the validation curves (metrics_*.jsonl) and the
training records (train_*.json). To keep the package small the weights are stored as float16
(half the bytes; they load into float32 networks, so inference is unchanged but for the rounding,
which this script measures and prints). The ONNX files are exported from those weights as usual
(`reenact export`: BatchNorm folded into the convolutions), then their weights are stored as
float16 too, each followed by a Cast to float32 that ONNX Runtime folds away when it loads the
model; the folded weights are rounded once more, which this script also measures and prints.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from reenact.weights_io import atomic_write_bytes, read_config, read_meta  # noqa: E402


def half_safetensors(src: Path, dst: Path, note: dict[str, str]) -> None:
    """``src`` with every float32 tensor stored as float16, header metadata kept (plus ``note``)."""
    import torch
    from safetensors.torch import load_file, save

    tensors = {k: (v.half() if v.dtype == torch.float32 else v).contiguous() for k, v in load_file(str(src)).items()}
    meta = {**read_meta(src), **note, "stored_dtype": "float16"}
    atomic_write_bytes(dst, save(tensors, metadata=meta))


def half_onnx(path: Path) -> int:
    """Store an ONNX model's float32 weights (initializers of 64 values or more) as float16 + Cast."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    casts, n = [], 0
    for init in list(graph.initializer):
        if init.data_type != TensorProto.FLOAT or int(np.prod(init.dims)) < 64:
            continue
        half = numpy_helper.to_array(init).astype(np.float16)
        graph.initializer.remove(init)
        graph.initializer.append(numpy_helper.from_array(half, init.name + "__f16"))
        casts.append(helper.make_node("Cast", [init.name + "__f16"], [init.name], to=TensorProto.FLOAT))
        n += 1
    for node in reversed(casts):
        graph.node.insert(0, node)
    onnx.checker.check_model(model)
    atomic_write_bytes(path, model.SerializeToString())
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--omega", choices=["last", "best"], default="last",
                    help="Ω at the end of the schedule (the paper's) or the best validation SSIM")
    ap.add_argument("--dest", type=Path, default=ROOT / "reenact" / "weights" / "paper")
    args = ap.parse_args()
    run, dest = args.run, args.dest
    cfg = read_config(run)
    if cfg.variant != "paper":
        sys.exit(f"{run} holds the {cfg.variant!r} variant, not 'paper'")
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(run / "config.json", dest / "config.json")
    for name in ("metrics_phi.jsonl", "metrics_omega.jsonl", "train_phi.json", "train_omega.json"):
        if (run / name).is_file():
            shutil.copyfile(run / name, dest / name)
    omega_src = run / ("omega.safetensors" if args.omega == "last" else "omega_best.safetensors")
    half_safetensors(run / "phi.safetensors", dest / "phi.safetensors", {"source": "phi.safetensors"})
    half_safetensors(omega_src, dest / "omega.safetensors", {"source": omega_src.name})

    from reenact.inference.export import export_onnx

    for name, path in export_onnx(dest).items():
        print(f"{name}.onnx: {half_onnx(path)} initializers stored as float16")
    report_rounding(run, omega_src, dest)
    report_onnx(dest)
    total = sum(p.stat().st_size for p in dest.iterdir() if p.is_file())
    for p in sorted(dest.iterdir()):
        print(f"  {p.name:24s} {p.stat().st_size / 2**20:7.2f} MB")
    print(f"{dest}: {total / 2**20:.1f} MB")


def report_rounding(run: Path, omega_src: Path, dest: Path) -> None:
    """How far the float16-stored networks' outputs are from the float32 ones (max |Δ| on [-1, 1])."""
    import torch

    from reenact.inference.samples import sample_inputs
    from reenact.models import build_omega, build_phi
    from reenact.weights_io import load_networks, load_state

    cfg, half = load_networks(dest)
    full = {"phi": build_phi(cfg).eval(), "omega": build_omega(cfg).eval()}
    full["phi"].load_state_dict(load_state(run / "phi.safetensors", "phi", cfg))
    full["omega"].load_state_dict(load_state(omega_src, "omega", cfg))
    worst = {"phi": 0.0, "omega": 0.0}
    with torch.no_grad():
        for phi_args, omega_x in sample_inputs(cfg, n=3):
            for name, a in (("phi", phi_args), ("omega", (omega_x,))):
                t = [torch.as_tensor(v)[None] if np.asarray(v).ndim < 4 else torch.as_tensor(v) for v in a]
                d = (half[name](*t) - full[name](*t)).abs().max().item()
                worst[name] = max(worst[name], d)
    print("float16 storage, max |output change| on [-1, 1]: " + json.dumps({k: round(v, 5) for k, v in worst.items()}))


def report_onnx(dest: Path) -> None:
    """How far the float16 ONNX models' outputs are from the shipped safetensors run in torch."""
    import onnxruntime as ort
    import torch

    from reenact.inference.samples import sample_inputs
    from reenact.weights_io import load_networks

    cfg, nets = load_networks(dest)
    sess = {n: ort.InferenceSession(str(dest / f"{n}.onnx"), providers=["CPUExecutionProvider"]) for n in nets}
    worst = {n: 0.0 for n in nets}
    for phi_args, omega_x in sample_inputs(cfg, n=3):
        for name, a in (("phi", phi_args), ("omega", (omega_x,))):
            feeds = {i.name: v[None] if v.ndim < len(i.shape) else v for i, v in zip(sess[name].get_inputs(), a, strict=True)}
            with torch.no_grad():
                ref = nets[name](*[torch.as_tensor(v) for v in feeds.values()]).numpy()
            worst[name] = max(worst[name], float(np.abs(sess[name].run(None, feeds)[0] - ref).max()))
    print("float16 ONNX vs shipped safetensors (torch), max |Δ| on [-1, 1]: "
          + json.dumps({k: round(v, 5) for k, v in worst.items()}))


if __name__ == "__main__":
    main()
