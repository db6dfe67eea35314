"""`reenact build-engines`: compile Φ and Ω to TensorRT FP16 engines on this GPU (offline, once)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from reenact.commands.weights_option import WEIGHTS, WEIGHTS_HELP
from reenact.errors import WeightsError


@click.command("build-engines")
@click.option("--weights", "weights", type=WEIGHTS, default=None, help=WEIGHTS_HELP + " (default: default).")
@click.option("--out", "out", type=click.Path(path_type=Path), default=None,
              help="Engines folder. Default: reenact's engines folder (see --engines-dir / REENACT_HOME).")
@click.option("--rebuild", is_flag=True, help="Build again even when matching engines exist.")
@click.option("--device", default="cuda", show_default=True, help="cuda or cuda:N.")
@click.option("--replay", type=click.Path(path_type=Path, exists=True), default=None,
              help="Landmarks recorded with `reenact bench` (replay.npz) for the FP16 parity check.")
def build_engines(weights: Path | None, out: Path | None, rebuild: bool, device: str, replay: Path | None) -> None:
    """Compile Φ and Ω with torch-tensorrt to FP16 engines for this GPU (batch 1, static shapes).

    Each engine is checked against FP32 PyTorch on real-looking inputs (PSNR ≥ 40 dB, no NaN)
    and saved with a manifest (GPU, SM, TensorRT / torch-tensorrt / torch versions, weights
    hash). `--backend auto` uses them only when the manifest matches this machine and weights.
    """
    from reenact.paths import WEIGHTS_DIR

    weights = weights or WEIGHTS_DIR
    if not (weights / "config.json").is_file():
        raise WeightsError(f"no trained weights in {weights} (config.json missing)",
                           hint="pass --weights DIR with a folder written by `reenact train`")
    from reenact.inference.engines import build_engines as build
    from reenact.inference.manifest import MANIFEST_NAME
    from reenact.inference.tensorrt_backend import import_torch_tensorrt

    import_torch_tensorrt()  # says how to install it when missing
    folder = build(weights, out, rebuild=rebuild, device=device, replay=replay)
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    click.echo(f"engines: {folder}")
    click.echo(f"  GPU {manifest['gpu_name']} (SM {manifest['sm']}), TensorRT {manifest['tensorrt']}, "
               f"torch-tensorrt {manifest['torch_tensorrt']}, torch {manifest['torch']}")
    for name, p in manifest.get("parity", {}).items():
        click.echo(f"  {name}: FP16 vs FP32 PSNR {p['psnr_db']} dB, max |diff| {p['max_abs']:.3g}")
