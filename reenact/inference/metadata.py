"""What every exported model records about itself, and the check run when it is loaded.

An ONNX file (``metadata_props``) or an engine manifest carries the model config it was
exported with (variant, preset, widths, preprocessing), the network name and the sha256 of
the safetensors it came from, so a model used with the wrong preprocessing or stale weights is
an error, not a silent blur. Pure Python: no torch, no onnx.
"""

from __future__ import annotations

import json
from typing import Any

from reenact.config import ModelConfig
from reenact.errors import ConfigError, WeightsError

FORMAT = "reenact-onnx-1"
KEY_FORMAT = "reenact.format"
KEY_NETWORK = "reenact.network"
KEY_CONFIG = "reenact.config"
KEY_VARIANT = "reenact.variant"
KEY_PREPROCESS = "reenact.preprocess"
KEY_WEIGHTS_SHA = "reenact.weights_sha256"

#: ModelConfig fields that must agree between a model file and the folder's config.json.
ARCH_FIELDS: tuple[str, ...] = ("variant", "preset", "base_width", "upsample", "phi_width", "phi_hidden")
#: Fields that change Ω alone (its input channels): checked for Ω's files, not Φ's.
OMEGA_FIELDS: tuple[str, ...] = ("mouth_guide",)


def model_metadata(cfg: ModelConfig, network: str, weights_sha256: str) -> dict[str, str]:
    """The key/value strings to store in an exported model of ``network``."""
    return {
        KEY_FORMAT: FORMAT,
        KEY_NETWORK: network,
        KEY_CONFIG: json.dumps(cfg.to_dict(), sort_keys=True),
        KEY_VARIANT: cfg.variant,
        KEY_PREPROCESS: json.dumps(cfg.to_dict()["preprocess"], sort_keys=True),
        KEY_WEIGHTS_SHA: weights_sha256,
    }


def config_mismatches(saved: ModelConfig, expected: ModelConfig, network: str = "omega") -> list[str]:
    """Human-readable differences between two configs in the fields that change ``network``."""
    fields = ARCH_FIELDS + (OMEGA_FIELDS if network == "omega" else ())
    out = [f"{k}={getattr(saved, k)!r} (config.json has {getattr(expected, k)!r})"
           for k in fields if getattr(saved, k) != getattr(expected, k)]
    if saved.preprocess != expected.preprocess:
        a, b = saved.to_dict()["preprocess"], expected.to_dict()["preprocess"]
        diff = ", ".join(f"{k}={a.get(k)!r} (config.json has {b.get(k)!r})" for k in sorted(set(a) | set(b))
                         if a.get(k) != b.get(k))
        out.append(f"preprocessing {diff}")
    return out


def check_model_metadata(meta: dict[str, str], cfg: ModelConfig, network: str, source: str,
                         weights_sha256: str | None = None) -> None:
    """Raise WeightsError unless ``meta`` describes ``network`` exported with ``cfg``.

    ``weights_sha256``: the hash of the safetensors now in the folder, when there is one; a
    different hash in ``meta`` means the model is stale (exported before a retrain).
    """
    hint = "re-export it with `reenact export --weights <folder>`"
    if meta.get(KEY_FORMAT) != FORMAT:
        raise WeightsError(f"{source} has no reenact metadata (format {meta.get(KEY_FORMAT)!r})", hint=hint)
    if meta.get(KEY_NETWORK) != network:
        raise WeightsError(f"{source} holds {meta.get(KEY_NETWORK)!r}, expected {network!r}", hint=hint)
    try:
        saved = ModelConfig.from_dict(json.loads(meta[KEY_CONFIG]))
    except (KeyError, json.JSONDecodeError, TypeError, ConfigError) as exc:
        raise WeightsError(f"{source} has an unreadable config in its metadata: {exc}", hint=hint) from exc
    if meta.get(KEY_VARIANT, saved.variant) != saved.variant:
        raise WeightsError(f"{source} metadata is inconsistent: variant {meta.get(KEY_VARIANT)!r} vs config "
                           f"{saved.variant!r}", hint=hint)
    diffs = config_mismatches(saved, cfg, network)
    if diffs:
        raise WeightsError(f"{source} was exported for another model: " + "; ".join(diffs), hint=hint)
    if weights_sha256 is not None and meta.get(KEY_WEIGHTS_SHA) not in (None, weights_sha256):
        raise WeightsError(f"{source} was exported from other weights than the {network}.safetensors now beside "
                           f"it (sha256 {meta.get(KEY_WEIGHTS_SHA, '')[:12]} vs {weights_sha256[:12]})", hint=hint)


def as_dict(props: Any) -> dict[str, str]:
    """ONNX ``metadata_props`` (a list of key/value entries) or a plain mapping, as a dict."""
    if isinstance(props, dict):
        return {str(k): str(v) for k, v in props.items()}
    return {p.key: p.value for p in props}
