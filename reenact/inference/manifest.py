"""TensorRT engines' manifest: what built engines are tied to, and whether they may be used here.

An engine is tied to a GPU's SM, the TensorRT and torch-tensorrt (and torch) versions, and the
weights it was compiled from. Each build writes, beside ``phi.pt2`` and ``omega.pt2``, a
``manifest.json`` recording all of these; :func:`check_manifest` (a pure function) compares a
manifest with what this machine and these weights would produce and lists every difference.
Both the builder (:mod:`reenact.inference.engines`) and the loader
(:mod:`reenact.inference.tensorrt_backend`) use these helpers; no torch here.

Layout: ``<engines_dir>/<variant>-<preset>-<weights sha256[:12]>/{manifest.json, phi.pt2, omega.pt2}``.
Engines are torch.export archives, and torch's archive reader and writer expect the ``.pt2``
suffix (anything else is a warning today, "to be turned into an error"); engines built before
2026-11-30 were named ``.ep`` and carry manifest format 1, so they are refused with a rebuild hint.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from reenact.config import ModelConfig
from reenact.errors import BackendError, WeightsError
from reenact.inference.backend import omega_input_shape, phi_input_shapes
from reenact.paths import engines_dir as default_engines_dir
from reenact.weights_io import NETWORKS, read_config, sha256_file

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "reenact-engines-2"  # 2: engine files are .pt2 (1: .ep)
ENGINE_SUFFIX = ".pt2"
PRECISION = "fp16"

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


__all__ = ["ENGINE_SUFFIX", "MANIFEST_FORMAT", "MANIFEST_NAME", "MATCH_FIELDS", "PRECISION", "check_manifest",
           "engine_folder", "engine_path", "expected_manifest", "find_engines", "input_shapes", "read_manifest",
           "weights_config", "weights_fingerprint"]
