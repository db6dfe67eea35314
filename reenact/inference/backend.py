"""The inference backend interface and its registry.

A backend runs Φ and Ω on numpy arrays; the reenactor does not care which engine is behind
it. Backends are created by name (``onnx``, ``torch``, ``tensorrt``, ``auto``) from a weights
folder. Each backend lives in its own module, imported only when that backend is asked for,
so importing this module imports neither torch nor any GPU library (pyvirtualcam's
``register_backend`` style; a test can register a fake).

When ``auto`` finds nothing that works, ONE :class:`BackendError` lists every backend tried
and why it failed.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from reenact.config import ModelConfig
from reenact.errors import BackendError

log = logging.getLogger(__name__)

#: Backend names the registry knows, besides ``auto``; "module:function" of each factory.
_FACTORIES: dict[str, str] = {
    "tensorrt": "reenact.inference.tensorrt_backend:create",
    "onnx": "reenact.inference.onnx_backend:create",
    "torch": "reenact.inference.torch_backend:create",
}
#: Fakes and plug-ins registered at run time (tests): name -> factory.
_REGISTERED: dict[str, Callable[..., Backend]] = {}

#: What ``auto`` tries, in order: TensorRT engines, then ONNX Runtime, then PyTorch.
AUTO_ORDER: tuple[str, ...] = ("tensorrt", "onnx", "torch")

TENSORRT_INSTALL_HINT = (
    "install it with `pip install 'reenact[tensorrt]'` (needs an NVIDIA GPU, CUDA and torch 2.14), "
    "then run `reenact build-engines`"
)


@runtime_checkable
class Backend(Protocol):
    """Runs Φ and Ω for one weights folder. Inputs and outputs are float32 numpy, batch 1.

    - ``phi`` (guided): L_s, J_s, L_t each [1,68,2] -> J_gen [1,68,2] (canonical-crop pixels).
    - ``phi`` (paper): L_s, L_t landmark images [1,1,256,256] -> J_gen image [1,1,256,256].
    - ``omega``: x [1,C,256,256] (C = 9 guided, 4 paper) -> [1,4,256,256] guided (residual,
      mask) or [1,3,256,256] paper (image in [-1,1]).
    """

    name: str
    cfg: ModelConfig

    def phi(self, *inputs: np.ndarray) -> np.ndarray: ...

    def omega(self, x: np.ndarray) -> np.ndarray: ...

    def describe(self) -> str: ...


# ----------------------------------------------------------------------------- shapes and checks


def phi_input_shapes(cfg: ModelConfig) -> tuple[tuple[int, ...], ...]:
    """Shapes of Φ's inputs at batch 1, in call order."""
    if cfg.variant == "guided":
        return ((1, 68, 2),) * 3  # L_s, J_s, L_t
    return ((1, 1, 256, 256),) * 2  # L_s, L_t landmark images


def phi_input_names(cfg: ModelConfig) -> tuple[str, ...]:
    """Names of Φ's inputs (also the ONNX input names)."""
    return ("L_s", "J_s", "L_t") if cfg.variant == "guided" else ("L_s", "L_t")


def phi_output_shape(cfg: ModelConfig) -> tuple[int, ...]:
    return (1, 68, 2) if cfg.variant == "guided" else (1, 1, 256, 256)


def omega_input_shape(cfg: ModelConfig) -> tuple[int, ...]:
    return (1, cfg.omega_in_channels, 256, 256)


def omega_output_shape(cfg: ModelConfig) -> tuple[int, ...]:
    return (1, cfg.omega_out_channels, 256, 256)


def _check_array(what: str, x: object, shape: tuple[int, ...]) -> np.ndarray:
    """A float32 array of exactly ``shape``: TypeError for the wrong type/dtype, ValueError for the shape."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{what} must be a numpy float32 array, got {type(x).__name__}")
    if x.dtype != np.float32:
        raise TypeError(f"{what} must be float32, got {x.dtype}")
    if tuple(x.shape) != shape:
        raise ValueError(f"{what} must have shape {list(shape)}, got {list(x.shape)}")
    return np.ascontiguousarray(x)


def check_phi_inputs(cfg: ModelConfig, inputs: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    """Validate Φ's inputs for the config's variant; returns them C-contiguous."""
    names = phi_input_names(cfg)
    shapes = phi_input_shapes(cfg)
    if len(inputs) != len(names):
        raise ValueError(f"Φ ({cfg.variant}) takes {len(names)} inputs ({', '.join(names)}), got {len(inputs)}")
    return tuple(_check_array(f"Φ input {n}", x, s) for n, x, s in zip(names, inputs, shapes, strict=True))


def check_omega_input(cfg: ModelConfig, x: np.ndarray) -> np.ndarray:
    """Validate Ω's input for the config's variant; returns it C-contiguous."""
    return _check_array(f"Ω input ({cfg.variant})", x, omega_input_shape(cfg))


class CheckedBackend:
    """Base class doing the input checks; subclasses implement ``_phi`` and ``_omega``."""

    name: str = "base"

    def __init__(self, cfg: ModelConfig) -> None:
        self.cfg = cfg

    def phi(self, *inputs: np.ndarray) -> np.ndarray:
        """J_gen from (L_s, J_s, L_t) coordinates (guided) or (L_s, L_t) images (paper)."""
        return self._phi(*check_phi_inputs(self.cfg, inputs))

    def omega(self, x: np.ndarray) -> np.ndarray:
        """Ω's output for one input [1,C,256,256]."""
        return self._omega(check_omega_input(self.cfg, x))

    def _phi(self, *inputs: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _omega(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        """Release what the backend holds beyond memory (the TensorRT backend's CUDA-graph contexts)."""

    def describe(self) -> str:
        return f"{self.name} ({self.cfg.describe()})"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"


# ----------------------------------------------------------------------------- registry


def register_backend(name: str, factory: Callable[..., Backend]) -> None:
    """Add (or replace) a backend factory, e.g. a fake in tests.

    ``factory(weights_dir, *, device, engines_dir, precision, **options) -> Backend``.
    """
    if name == "auto":
        raise ValueError("'auto' is reserved")
    _REGISTERED[name] = factory


def unregister_backend(name: str) -> None:
    _REGISTERED.pop(name, None)


def backend_names() -> tuple[str, ...]:
    """Every name ``create_backend`` accepts."""
    names = list(_FACTORIES) + [n for n in _REGISTERED if n not in _FACTORIES]
    return ("auto", *names)


def _factory(name: str) -> Callable[..., Backend]:
    if name in _REGISTERED:
        return _REGISTERED[name]
    module, attr = _FACTORIES[name].split(":")
    return getattr(importlib.import_module(module), attr)


def _reason(exc: BaseException) -> str:
    """One readable line (or a few) for why a backend failed."""
    if isinstance(exc, BackendError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def create_backend(
    name: str,
    weights_dir: str | os.PathLike,
    *,
    device: str | None = None,
    engines_dir: str | os.PathLike | None = None,
    precision: str | None = None,
    **options: object,
) -> Backend:
    """The backend ``name`` for the weights in ``weights_dir``.

    ``name``: ``onnx`` (ONNX Runtime; needs ``reenact export`` first), ``torch`` (PyTorch),
    ``tensorrt`` (engines from ``reenact build-engines``), or ``auto``: TensorRT engines when
    matching ones exist for this GPU, these versions and these weights, otherwise ONNX Runtime,
    otherwise PyTorch. ``device``: 'cpu' | 'cuda' | 'cuda:N' (None: the backend's default).
    ``precision``: 'fp32' | 'fp16' (None: the backend's default). ``options`` go to the factory
    (e.g. ``threads=2`` for onnx, ``cuda_graphs=False`` for torch); ``auto`` passes each
    backend only the options it names in its ``OPTIONS``.

    Raises BackendError: for an unknown name (listing the valid names), or when nothing can
    be loaded (listing every backend tried and why it failed).
    """
    weights = Path(weights_dir)
    if name != "auto":
        if name not in _FACTORIES and name not in _REGISTERED:
            raise BackendError(f"unknown backend {name!r}; expected one of {', '.join(backend_names())}")
        try:
            return _factory(name)(weights, device=device, engines_dir=engines_dir, precision=precision, **options)
        except BackendError:
            raise
        except (ImportError, OSError, RuntimeError) as exc:
            raise BackendError(f"backend {name!r} could not be loaded: {_reason(exc)}") from exc

    failures: list[tuple[str, str]] = []
    worth_saying: list[tuple[str, str]] = []  # failures other than "not set up here": damaged or stale files
    for candidate in AUTO_ORDER:
        try:
            factory = _factory(candidate)
            accepted = getattr(factory, "OPTIONS", ())
            opts = {k: v for k, v in options.items() if k in accepted}
            backend = factory(weights, device=device, engines_dir=engines_dir, precision=precision, **opts)
        except Exception as exc:  # noqa: BLE001 - every failure is reported below, none is hidden
            log.info("backend %s not used: %s", candidate, _reason(exc))
            failures.append((candidate, _reason(exc)))
            if not (isinstance(exc, ImportError) or getattr(exc, "absent", False)):
                worth_saying.append(failures[-1])
            continue
        if failures:
            log.info("auto backend: using %s (%s)", candidate, "; ".join(f"{n}: {r.splitlines()[0]}" for n, r in failures))
        for n, r in worth_saying:
            log.warning("backend %s not used (%s); using %s instead", n, r.splitlines()[0], candidate)
        return backend
    lines = "\n".join(f"  {n}: " + r.replace("\n", "\n    ") for n, r in failures)
    raise BackendError(f"no inference backend could be loaded for {weights}:\n{lines}", hint=_auto_hint(weights))


def _auto_hint(weights: Path) -> str:
    """What to do when auto found nothing: a weights folder first, then what is missing here."""
    if not (weights / "config.json").is_file():
        return "pass --weights a folder written by `reenact train` (it holds config.json and the networks)"
    if importlib.util.find_spec("torch") is None:
        return "run `reenact export` for the onnx backend, or install torch for the torch backend"
    return f"run `reenact export --weights {weights}` for the onnx backend; see each backend's reason above"


__all__ = [
    "AUTO_ORDER",
    "Backend",
    "CheckedBackend",
    "TENSORRT_INSTALL_HINT",
    "backend_names",
    "check_omega_input",
    "check_phi_inputs",
    "create_backend",
    "omega_input_shape",
    "omega_output_shape",
    "phi_input_names",
    "phi_input_shapes",
    "phi_output_shape",
    "register_backend",
    "unregister_backend",
]
