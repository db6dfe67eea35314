"""Building TensorRT engines: compile Φ and Ω to FP16, check them against FP32 PyTorch, write the manifest.

Whether built engines may be used is :mod:`reenact.inference.manifest`'s job (pure, shared with
the loader); torch / torch-tensorrt calls go through :mod:`reenact.inference.tensorrt_backend`.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from reenact.errors import BackendError, WeightsError
from reenact.inference.manifest import (
    MANIFEST_NAME,
    check_manifest,
    engine_folder,
    engine_path,
    expected_manifest,
    read_manifest,
)
from reenact.weights_io import CONFIG_NAME, NETWORKS, atomic_write_json

log = logging.getLogger(__name__)

MIN_PSNR_DB = 40.0


def psnr(reference: np.ndarray, test: np.ndarray) -> float:
    """PSNR in dB with the reference's value range as the peak (inf when identical; nan on NaN).

    The peak is the range of the reference (images: ~2; guided Φ coordinates: ~crop width), so
    one threshold fits images and coordinates alike.
    """
    ref = np.asarray(reference, np.float64)
    out = np.asarray(test, np.float64)
    if not np.isfinite(out).all():
        return float("nan")
    mse = float(np.mean((ref - out) ** 2))
    peak = float(ref.max() - ref.min()) or 1.0
    return float("inf") if mse == 0 else 10.0 * math.log10(peak * peak / mse)


def parity(reference: Callable[..., np.ndarray], candidate: Callable[..., np.ndarray],
           inputs: list[tuple[np.ndarray, ...]]) -> dict[str, float]:
    """PSNR, max abs difference and NaN flag of ``candidate`` against ``reference`` over ``inputs``."""
    refs = np.concatenate([reference(*x).reshape(-1) for x in inputs])
    outs = np.concatenate([candidate(*x).reshape(-1) for x in inputs])
    diff = np.abs(refs - outs)
    max_abs = float(np.nanmax(diff)) if np.isfinite(diff).any() else float("nan")
    return {"psnr_db": psnr(refs, outs), "max_abs": max_abs, "nan": bool(not np.isfinite(outs).all())}


# ----------------------------------------------------------------------------- build (torch)


def build_engines(weights_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None, rebuild: bool = False,
                  device: str = "cuda", replay: str | os.PathLike | None = None, n_samples: int = 8,
                  min_psnr: float = MIN_PSNR_DB) -> Path:
    """Compile Φ and Ω to FP16 TensorRT engines, check them against FP32 PyTorch, write a manifest.

    The FP32 reference runs on the CPU (IEEE FP32: no TF32 there), the engines on ``device``.

    Skips the build when matching engines exist (unless ``rebuild``). Parity is measured on
    real-looking inputs (landmarks from ``replay`` or :func:`reenact.inference.samples.sample_landmarks`,
    a synthetic face raster for Ω): PSNR ≥ ``min_psnr`` and no NaN, or BackendError naming the
    network that failed (nothing is written for it). Returns the engines folder.
    """

    from reenact.inference import tensorrt_backend as trt
    from reenact.inference.samples import sample_inputs
    from reenact.weights_io import load_networks

    weights = Path(weights_dir)
    if not (weights / CONFIG_NAME).is_file():
        raise WeightsError(f"no trained weights in {weights} ({CONFIG_NAME} missing)", hint="pass --weights DIR")
    env = trt.runtime_info(device)
    cfg, nets = load_networks(weights)
    expected = expected_manifest(weights, env, cfg)
    folder = engine_folder(out_dir, cfg, expected["weights_sha256"])
    if not rebuild and (folder / MANIFEST_NAME).is_file():
        problems = check_manifest(read_manifest(folder), expected)
        if not problems and all(engine_path(folder, n).is_file() for n in NETWORKS):
            log.info("engines in %s already match; pass rebuild=True to build again", folder)
            return folder
        log.warning("rebuilding engines in %s: %s", folder, "; ".join(problems) or "files missing")
    folder.mkdir(parents=True, exist_ok=True)

    samples = sample_inputs(cfg, n_samples, replay=replay)
    per_net_inputs = {"phi": [s[0] for s in samples], "omega": [(s[1],) for s in samples]}
    report: dict[str, dict[str, float]] = {}
    build_s: dict[str, float] = {}
    for name in NETWORKS:
        report[name], build_s[name] = _build_one(name, nets[name], per_net_inputs[name], folder, device, min_psnr)

    manifest = {**expected, "build_time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "build_seconds": build_s,
                "parity": {k: {"psnr_db": v["psnr_db"], "max_abs": v["max_abs"]} for k, v in report.items()},
                "parity_inputs": "replay " + str(replay) if replay else "synthetic expressions + synthetic face raster",
                "weights_dir": str(weights.resolve())}
    atomic_write_json(folder / MANIFEST_NAME, _jsonable(manifest))
    return folder


def _build_one(name: str, net: Any, inputs: list[tuple[np.ndarray, ...]], folder: Path, device: str,
               min_psnr: float) -> tuple[dict[str, float], float]:
    """Compile one network to FP16, check it against its FP32 self on the CPU, save it: (parity, seconds)."""
    import torch

    from reenact.inference import tensorrt_backend as trt
    from reenact.outputs import PendingFile

    dev = torch.device(device)
    ref_net = net.eval().float()

    def reference(*arrays: np.ndarray, _net=ref_net) -> np.ndarray:
        with torch.inference_mode():
            return _net(*[torch.from_numpy(a) for a in arrays]).numpy()

    half = _copy_half(ref_net, dev)
    example = tuple(torch.from_numpy(a).to(dev, torch.float16) for a in inputs[0])
    t0 = time.perf_counter()
    with torch.inference_mode(False), torch.no_grad():
        compiled = trt.compile_fp16(half, example)
    seconds = round(time.perf_counter() - t0, 2)

    def candidate(*arrays: np.ndarray, _m=compiled) -> np.ndarray:
        with torch.no_grad():
            y = _m(*[torch.from_numpy(a).to(dev, torch.float16) for a in arrays])
            y = y[0] if isinstance(y, (tuple, list)) else y
            return y.float().cpu().numpy()

    stats = parity(reference, candidate, inputs)
    log.info("%s: FP16 engine vs FP32 torch: PSNR %.1f dB, max |diff| %.3g", name, stats["psnr_db"], stats["max_abs"])
    if stats["nan"] or not stats["psnr_db"] >= min_psnr:
        raise BackendError(
            f"the FP16 engine for {name} ({'Φ' if name == 'phi' else 'Ω'}) does not match FP32 PyTorch: "
            f"PSNR {stats['psnr_db']:.1f} dB (need ≥ {min_psnr:g}), NaN: {stats['nan']}; not saved",
            hint="this GPU may mishandle FP16 for this model; use --backend torch (fp32) or onnx")
    with PendingFile(engine_path(folder, name)) as temp:  # unique temporary name (suffix kept: .pt2), fsync, one rename
        trt.save_engine(compiled, temp, example)
    return stats, seconds


def _copy_half(net: Any, device: Any) -> Any:
    """A half-precision copy of a module on ``device`` (the reference stays FP32)."""
    import copy

    return copy.deepcopy(net).to(device).half().eval()


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    return obj
