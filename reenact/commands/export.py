"""`reenact export`: Φ and Ω to ONNX for the torch-free live path."""

from __future__ import annotations

from pathlib import Path

import click

from reenact.commands.weights_option import WEIGHTS, WEIGHTS_HELP
from reenact.errors import InputError, ReenactError, WeightsError


@click.command("export")
@click.option("--weights", "weights", type=WEIGHTS, default=None, help=WEIGHTS_HELP + " (default: default).")
@click.option("--out", "out", type=click.Path(path_type=Path), default=None,
              help="Where phi.onnx and omega.onnx go. Default: the weights folder.")
@click.option("--no-fold-bn", is_flag=True, help="Keep BatchNorm layers (default: fold them into the convolutions).")
def export(weights: Path | None, out: Path | None, no_fold_bn: bool) -> None:
    """Export Φ and Ω to ONNX (opset 18, one file each, batch 1, BatchNorm folded).

    The variant, preprocessing and weights hash are recorded in each file's metadata, so
    the onnx backend refuses a model made for other preprocessing or stale weights.
    """
    from reenact.paths import WEIGHTS_DIR

    weights = weights or WEIGHTS_DIR
    if out is not None:
        if out.exists() and not out.is_dir():
            raise InputError(f"--out {out} is a file; it must be a folder (phi.onnx and omega.onnx go into it)",
                             hint="give a folder name, new or existing")
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create the --out folder {out}: {exc.strerror or exc}",
                             hint="pick a folder you can write to") from exc
    if not (weights / "config.json").is_file():
        raise WeightsError(f"no trained weights in {weights} (config.json missing)",
                           hint="pass --weights DIR with a folder written by `reenact train`")
    try:
        from reenact.inference.export import export_onnx
    except ImportError as exc:
        raise ReenactError(f"export needs torch, onnx and onnxscript: {exc}",
                           hint="pip install 'reenact[train]'") from exc
    paths = export_onnx(weights, out, fold_bn=not no_fold_bn)
    for name, path in paths.items():
        click.echo(f"{name}: {path} ({path.stat().st_size / 1e6:.1f} MB)")
