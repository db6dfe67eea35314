"""Building TensorRT engines and deciding whether built ones may be used.

An engine is tied to a GPU's SM, the TensorRT and torch-tensorrt (and torch) versions, and the
weights it was compiled from. Each build writes, beside ``phi.pt2`` and ``omega.pt2``, a
``manifest.json`` recording all of these; :func:`check_manifest` (a pure function) compares a
manifest with what this machine and these weights would produce and lists every difference.

Layout: ``<engines_dir>/<variant>-<preset>-<weights sha256[:12]>/{manifest.json, phi.pt2, omega.pt2}``.
Engines are torch.export archives, and torch's archive reader and writer expect the ``.pt2``
suffix (anything else is a warning today, "to be turned into an error"); engines built before
2026-11-30 were named ``.ep`` and carry manifest format 1, so they are refused with a rebuild hint.
torch / torch-tensorrt calls go through :mod:`reenact.inference.tensorrt_backend`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from reenact.config import ModelConfig
from reenact.errors import BackendError, WeightsError
from reenact.inference.backend import omega_input_shape, phi_input_shapes
from reenact.paths import engines_dir as default_engines_dir
from reenact.weights_io import CONFIG_NAME, NETWORKS, atomic_write_json, read_config, sha256_file

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "reenact-engines-2"  # 2: engine files are .pt2 (1: .ep)
ENGINE_SUFFIX = ".pt2"
PRECISION = "fp16"
MIN_PSNR_DB = 40.0

#: Manifest fields that must equal this machine's / these weights' values, with a readable label.
MATCH_FIELDS: tuple[tuple[str, str], ...] = (
    ("format", "manifest format"),
    ("gpu_name", "GPU"),
    ("sm", "GPU compute capability (SM)"),
    ("tensorrt", "TensorRT version"),
    ("torch_tensorrt", "torch-tensorrt version"),
    ("torch", "torch version"),
    ("precision", "precision"),
    ("variant", "variant"),
    ("preset", "preset"),
    ("config", "model config / preprocessing"),
    ("weights_sha256", "weights (sha256)"),
    ("input_shapes", "input shapes"),
)


# ----------------------------------------------------------------------------- pure parts


def weights_config(weights_dir: str | os.PathLike) -> ModelConfig:
    return read_config(Path(weights_dir))


def weights_fingerprint(weights_dir: str | os.PathLike) -> dict[str, str]:
    """sha256 of each network's safetensors and one combined hash (the engines' key)."""
    folder = Path(weights_dir)
    files = {}
    for name in NETWORKS:
        path = folder / f"{name}.safetensors"
        if not path.is_file():
            raise WeightsError(f"no {path.name} in {folder}", hint="engines are built from trained safetensors weights")
        files[f"{name}.safetensors"] = sha256_file(path)
    combined = hashlib.sha256("".join(f"{k}={v};" for k, v in sorted(files.items())).encode()).hexdigest()
    return {"combined": combined, **files}


def input_shapes(cfg: ModelConfig) -> dict[str, list[list[int]]]:
    return {"phi": [list(s) for s in phi_input_shapes(cfg)], "omega": [list(omega_input_shape(cfg))]}


def expected_manifest(weights_dir: str | os.PathLike, env: dict[str, str],
                      cfg: ModelConfig | None = None) -> dict[str, Any]:
    """The matching-relevant manifest fields for these weights on a machine described by ``env``.

    ``env``: gpu_name, sm, tensorrt, torch_tensorrt, torch (see ``tensorrt_backend.runtime_info``).
    """
    cfg = cfg or weights_config(weights_dir)
    fp = weights_fingerprint(weights_dir)
    return {
        "format": MANIFEST_FORMAT,
        **{k: env[k] for k in ("gpu_name", "sm", "tensorrt", "torch_tensorrt", "torch")},
        "precision": PRECISION,
        "variant": cfg.variant,
        "preset": cfg.preset,
        "config": cfg.to_dict(),
        "weights_sha256": fp["combined"],
        "weights_files": {k: v for k, v in fp.items() if k != "combined"},
        "input_shapes": input_shapes(cfg),
    }


def check_manifest(manifest: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """Every way ``manifest`` differs from ``expected`` (empty list: the engines may be used).

    Pure: compares dictionaries only. Each difference names the field and both values.
    """
    problems = []
    for key, label in MATCH_FIELDS:
        have, want = manifest.get(key), expected.get(key)
        if have != want:
            if key == "weights_sha256":
                problems.append(f"{label}: built from {str(have)[:12]}, these weights are {str(want)[:12]}")
            elif key == "config":
                problems.append(f"{label} differs from the weights' config.json")
            else:
                problems.append(f"{label}: built for {have!r}, this machine has {want!r}")
    return problems


def engine_folder(engines_root: str | os.PathLike | None, cfg: ModelConfig, weights_sha256: str) -> Path:
    """Where the engines of these weights live."""
    return default_engines_dir(engines_root) / f"{cfg.variant}-{cfg.preset}-{weights_sha256[:12]}"


def engine_path(folder: Path, name: str) -> Path:
    """The engine file of network ``name`` ('phi' or 'omega') in an engines folder."""
    return folder / f"{name}{ENGINE_SUFFIX}"


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST_NAME
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise BackendError(f"no {MANIFEST_NAME} in {folder}") from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise BackendError(f"{path} is unreadable: {exc}", hint="rebuild with `reenact build-engines --rebuild`") from exc


def find_engines(weights_dir: str | os.PathLike, engines_root: str | os.PathLike | None = None) -> tuple[Path, dict]:
    """(folder, manifest) of the engines built from these weights; BackendError when there are none."""
    cfg = weights_config(weights_dir)
    fp = weights_fingerprint(weights_dir)
    folder = engine_folder(engines_root, cfg, fp["combined"])
    if not (folder / MANIFEST_NAME).is_file():
        raise BackendError(f"no TensorRT engines for these weights in {folder.parent}",
                           hint=f"build them once on this machine: reenact build-engines --weights {weights_dir}",
                           absent=True)
    manifest = read_manifest(folder)
    missing = [engine_path(folder, n).name for n in NETWORKS if not engine_path(folder, n).is_file()]
    if missing:
        raise BackendError(f"{folder} lacks {', '.join(missing)}",
                           hint=f"rebuild them: reenact build-engines --weights {weights_dir} --rebuild")
    return folder, manifest


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
    import torch

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
    dev = torch.device(device)
    for name in NETWORKS:
        ref_net = nets[name].eval().float()

        def reference(*arrays: np.ndarray, _net=ref_net) -> np.ndarray:
            with torch.inference_mode():
                return _net(*[torch.from_numpy(a) for a in arrays]).numpy()

        half = _copy_half(ref_net, dev)
        example = tuple(torch.from_numpy(a).to(dev, torch.float16) for a in per_net_inputs[name][0])
        t0 = time.perf_counter()
        with torch.inference_mode(False), torch.no_grad():
            compiled = trt.compile_fp16(half, example)
        build_s[name] = round(time.perf_counter() - t0, 2)

        def candidate(*arrays: np.ndarray, _m=compiled) -> np.ndarray:
            with torch.no_grad():
                y = _m(*[torch.from_numpy(a).to(dev, torch.float16) for a in arrays])
                y = y[0] if isinstance(y, (tuple, list)) else y
                return y.float().cpu().numpy()

        stats = parity(reference, candidate, per_net_inputs[name])
        report[name] = stats
        log.info("%s: FP16 engine vs FP32 torch: PSNR %.1f dB, max |diff| %.3g", name, stats["psnr_db"], stats["max_abs"])
        if stats["nan"] or not stats["psnr_db"] >= min_psnr:
            raise BackendError(
                f"the FP16 engine for {name} ({'Φ' if name == 'phi' else 'Ω'}) does not match FP32 PyTorch: "
                f"PSNR {stats['psnr_db']:.1f} dB (need ≥ {min_psnr:g}), NaN: {stats['nan']}; not saved",
                hint="this GPU may mishandle FP16 for this model; use --backend torch (fp32) or onnx")
        from reenact.outputs import PendingFile

        pending = PendingFile(engine_path(folder, name))  # unique temporary name (suffix kept: .pt2), fsync, one rename
        try:
            trt.save_engine(compiled, pending.temp, example)
            pending.commit()
        except BaseException:
            pending.discard()
            raise

    manifest = {**expected, "build_time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "build_seconds": build_s,
                "parity": {k: {"psnr_db": v["psnr_db"], "max_abs": v["max_abs"]} for k, v in report.items()},
                "parity_inputs": "replay " + str(replay) if replay else "synthetic expressions + synthetic face raster",
                "weights_dir": str(weights.resolve())}
    atomic_write_json(folder / MANIFEST_NAME, _jsonable(manifest))
    return folder


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
