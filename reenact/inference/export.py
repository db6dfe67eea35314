"""Export Φ and Ω to ONNX for the torch-free live path (torch needed here only).

Each network goes to one self-contained file (``phi.onnx``, ``omega.onnx``; opset 18,
dynamo exporter, batch 1, eval mode) with BatchNorm folded into the convolution before it,
and the config, network name and weights hash recorded in ``metadata_props`` so the ONNX
backend can refuse a model made for other preprocessing or stale weights.
"""

from __future__ import annotations

import copy
import logging
import os
import tempfile
from pathlib import Path

import torch
from torch import nn

from reenact.config import ModelConfig
from reenact.errors import WeightsError
from reenact.inference.backend import omega_input_shape, phi_input_names, phi_input_shapes
from reenact.inference.metadata import model_metadata
from reenact.weights_io import CONFIG_NAME, NETWORKS, atomic_write_bytes, load_networks, sha256_file

log = logging.getLogger(__name__)

OPSET = 18

_CONVS = (nn.Conv2d, nn.ConvTranspose2d)


# ----------------------------------------------------------------------------- BatchNorm folding


def _last_conv(m: nn.Module) -> nn.Module | None:
    """The conv whose output ``m`` returns: m itself, or the last child of a Sequential ending in a conv."""
    if isinstance(m, _CONVS):
        return m
    if isinstance(m, nn.Sequential) and len(m) > 0:
        return _last_conv(m[-1])
    return None


@torch.no_grad()
def _fold_into(conv: nn.Conv2d | nn.ConvTranspose2d, bn: nn.BatchNorm2d) -> None:
    """conv <- bn ∘ conv, using the BN running statistics (eval semantics)."""
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("cannot fold a BatchNorm without running statistics")
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps) if bn.affine else 1.0 / torch.sqrt(bn.running_var + bn.eps)
    shift = (bn.bias if bn.affine else 0.0) - bn.running_mean * scale
    w = conv.weight
    groups = conv.groups
    if isinstance(conv, nn.ConvTranspose2d):
        # weight [C_in, C_out/groups, kH, kW]: output channel o = g*(C_out/groups) + j
        cin, cpg = w.shape[0], w.shape[1]
        wg = w.view(groups, cin // groups, cpg, *w.shape[2:])
        wg.mul_(scale.view(groups, 1, cpg, 1, 1))
    else:
        w.mul_(scale.view(-1, 1, 1, 1))  # weight [C_out, C_in/groups, kH, kW]
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    new_bias = bias * scale + shift
    conv.bias = nn.Parameter(new_bias.detach().clone())


def fold_batchnorm(model: nn.Module) -> tuple[nn.Module, int]:
    """A copy of ``model`` (eval mode) with every BatchNorm2d that follows a conv folded into it.

    Handles Conv2d→BN and ConvTranspose2d→BN adjacent inside a Sequential, including a conv at
    the end of a nested Sequential (Ω's resize+conv up-sampling). BatchNorms not preceded by a
    conv are left as they are. Returns (folded model, number of BatchNorms folded).
    """
    model = copy.deepcopy(model).eval()
    folded = 0
    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        for i in range(1, len(seq)):
            bn = seq[i]
            if not isinstance(bn, nn.BatchNorm2d):
                continue
            conv = _last_conv(seq[i - 1])
            if conv is None:
                continue
            _fold_into(conv, bn)
            seq[i] = nn.Identity()
            folded += 1
    return model, folded


# ----------------------------------------------------------------------------- example inputs


def example_inputs(cfg: ModelConfig, network: str, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Deterministic batch-1 inputs of the right shapes (for tracing; values barely matter)."""
    g = torch.Generator().manual_seed(seed)
    if network == "phi":
        if cfg.variant == "guided":
            from reenact.face.topology import TEMPLATE_256

            base = torch.as_tensor(TEMPLATE_256, dtype=torch.float32)[None]
            return tuple(base + torch.randn(s, generator=g) * 2.0 for s in phi_input_shapes(cfg))
        return tuple(torch.rand(s, generator=g) * 2 - 1 for s in phi_input_shapes(cfg))
    return (torch.rand(omega_input_shape(cfg), generator=g) * 2 - 1,)


# ----------------------------------------------------------------------------- export


def _export_one(model: nn.Module, args: tuple[torch.Tensor, ...], input_names: list[str], output_name: str,
                path: Path, metadata: dict[str, str]) -> None:
    """torch.onnx.export (dynamo) into a temporary file, add metadata, write atomically."""
    import onnx

    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".export-") as tmp:
        tmp_path = Path(tmp) / path.name
        torch.onnx.export(model, args, str(tmp_path), dynamo=True, opset_version=OPSET, external_data=False,
                          input_names=input_names, output_names=[output_name], verbose=False)
        proto = onnx.load(str(tmp_path))
    del proto.metadata_props[:]
    for k, v in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    proto.doc_string = f"reenact {metadata.get('reenact.network')} ({metadata.get('reenact.variant')})"
    atomic_write_bytes(path, proto.SerializeToString())


def export_onnx(weights_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None,
                networks: tuple[str, ...] = NETWORKS, fold_bn: bool = True) -> dict[str, Path]:
    """Export the networks of a weights folder to ``<out_dir>/<name>.onnx``; returns name -> path.

    ``out_dir`` defaults to the weights folder; when it differs, config.json is copied there so
    the output folder is complete for the ONNX backend.
    """
    weights = Path(weights_dir)
    out = Path(out_dir) if out_dir is not None else weights
    if not (weights / CONFIG_NAME).is_file():
        raise WeightsError(f"no trained weights in {weights} (no {CONFIG_NAME})",
                           hint="train with `reenact train`, or pass --weights DIR")
    cfg, nets = load_networks(weights, networks)
    out.mkdir(parents=True, exist_ok=True)
    if out.resolve() != weights.resolve():
        atomic_write_bytes(out / CONFIG_NAME, (weights / CONFIG_NAME).read_bytes())
    written: dict[str, Path] = {}
    with torch.inference_mode(False):
        for name in networks:
            model = nets[name].eval()
            if fold_bn:
                model, n = fold_batchnorm(model)
                log.info("%s: folded %d BatchNorm layers", name, n)
            args = example_inputs(cfg, name)
            inputs = list(phi_input_names(cfg)) if name == "phi" else ["x"]
            output = "J_gen" if name == "phi" else "y"
            meta = model_metadata(cfg, name, sha256_file(weights / f"{name}.safetensors"))
            path = out / f"{name}.onnx"
            _export_one(model, args, inputs, output, path, meta)
            log.info("wrote %s", path)
            written[name] = path
    return written
