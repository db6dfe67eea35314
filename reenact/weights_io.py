"""Weights on disk: safetensors with a JSON config beside them. Never unpickles anything.

A weights folder holds ``config.json`` (the :class:`ModelConfig`), ``phi.safetensors`` and
``omega.safetensors``; exported ``phi.onnx`` / ``omega.onnx`` may sit beside them. Each
safetensors file also records, in its header metadata, which network it holds and the
config, so a file moved into the wrong folder is caught. Writes are atomic.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from pathlib import Path
from typing import Any

from reenact.config import ModelConfig
from reenact.errors import WeightsError

CONFIG_NAME = "config.json"
NETWORKS = ("phi", "omega")
#: config.json's key naming the baseline a weights folder holds; absent for the method itself (Φ + Ω)
BASELINE_KEY = "baseline"
#: BASELINE_KEY's value for the pix2pix baseline (``reenact train omega --pix2pix``: Ω alone, fed the
#: source's landmark image; no Φ in the folder)
PIX2PIX = "pix2pix"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a file so a crash leaves either the old or the new file, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")  # unique across threads, processes
    try:
        with open(tmp, "xb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX; skipped where a folder cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(Path(path), (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def write_config(folder: Path, cfg: ModelConfig, extra: dict | None = None) -> None:
    """config.json for a weights folder (merging ``extra`` keys such as training info)."""
    path = Path(folder) / CONFIG_NAME
    data: dict[str, Any] = {}
    if path.is_file():
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            data = {}
    data["model"] = cfg.to_dict()
    if extra:
        data.update(extra)
    atomic_write_json(path, data)


def baseline_of(config: dict[str, Any]) -> str | None:
    """The baseline a folder's config.json (as read) declares (e.g. ``PIX2PIX``); None for the method."""
    value = config.get(BASELINE_KEY)
    if value is not None and not isinstance(value, str):
        raise WeightsError(f"{CONFIG_NAME}: {BASELINE_KEY!r} must be a name such as {PIX2PIX!r}, got {value!r}")
    return value


def read_config(folder: Path) -> ModelConfig:
    """The ModelConfig of a weights folder, with a clear error when missing or corrupt."""
    path = Path(folder) / CONFIG_NAME
    if not path.is_file():
        raise WeightsError(f"no {CONFIG_NAME} in weights folder {folder}", hint="pass a folder written by `reenact train`")
    try:
        data = json.loads(path.read_text())
        return ModelConfig.from_dict(data["model"])
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise WeightsError(f"{path} is not a valid reenact config: {exc}") from exc


def save_state(path: Path, state: dict, network: str, cfg: ModelConfig, extra_meta: dict | None = None) -> None:
    """Save a state dict (tensors) as safetensors with the network name and config in the header."""
    from safetensors.torch import save

    tensors = {k: v.detach().contiguous().cpu() for k, v in state.items()}
    meta = {"network": network, "config": json.dumps(cfg.to_dict(), sort_keys=True), "format": "reenact-1"}
    if extra_meta:
        meta.update({k: str(v) for k, v in extra_meta.items()})
    atomic_write_bytes(Path(path), save(tensors, metadata=meta))


def read_meta(path: Path) -> dict[str, str]:
    """The header metadata of a safetensors file (no tensors loaded)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as fh:
            return dict(fh.metadata() or {})
    except Exception as exc:  # safetensors raises its own error types for corrupt headers
        raise WeightsError(f"{path} is not a readable safetensors file: {exc}") from exc


def load_state(path: Path, network: str, cfg: ModelConfig | None = None) -> dict:
    """Load a state dict, checking that it holds ``network`` for the same variant/preset/width."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    meta = read_meta(path)
    found = meta.get("network")
    if found != network:
        raise WeightsError(f"{path} holds {found or 'an unknown network'!r}, expected {network!r}")
    if cfg is not None and "config" in meta:
        saved = ModelConfig.from_dict(json.loads(meta["config"]))
        for key in ("variant", "preset", "base_width", "upsample", "phi_width", "phi_hidden") + (
                ("mouth_guide",) if network == "omega" else ()):
            a, b = getattr(saved, key), getattr(cfg, key)
            if a != b:
                raise WeightsError(f"{path} was trained with {key}={a!r}, but {key}={b!r} was asked for")
        if saved.preprocess != cfg.preprocess:
            raise WeightsError(f"{path} was trained with preprocessing {saved.preprocess}, not {cfg.preprocess}")
    try:
        return load_file(str(path))
    except Exception as exc:
        raise WeightsError(f"{path} is corrupt: {exc}") from exc


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_networks(folder: Path, networks: tuple[str, ...] = NETWORKS, eval_mode: bool = True):
    """Build Φ and/or Ω from a weights folder (torch). Returns (cfg, {name: module})."""
    from reenact.models import build_omega, build_phi

    folder = Path(folder)
    cfg = read_config(folder)
    out = {}
    for name in networks:
        net = build_phi(cfg) if name == "phi" else build_omega(cfg)
        state = load_state(folder / f"{name}.safetensors", name, cfg)
        missing, unexpected = net.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise WeightsError(f"{folder / (name + '.safetensors')} does not fit {name} ({cfg.describe()}): "
                               f"missing {list(missing)[:3]}, unexpected {list(unexpected)[:3]}")
        out[name] = net.eval() if eval_mode else net
    return cfg, out
