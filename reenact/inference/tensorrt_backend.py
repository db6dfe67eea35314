"""The TensorRT backend: torch-tensorrt FP16 engines built by ``reenact build-engines``.

The ONLY module that imports ``torch_tensorrt`` / ``tensorrt``, and only inside functions, so
importing it (or reenact) costs nothing on machines without them. The live path only loads
engines (checked against their :mod:`~reenact.inference.manifest`); compiling is
:mod:`reenact.inference.engines`' job (a separate command).

torch-tensorrt 2.14 facts this follows (DESIGN.md): on the dynamo path ``enabled_precisions``
is ignored (strong typing), so FP16 comes from ``model.half()`` with half inputs; engines are
saved with ``torch_tensorrt.save(gm, path, arg_inputs=...)`` (``.pt2``: torch's archive format),
loaded with ``torch_tensorrt.load(path).module()``, and replayed as CUDA graphs through
``torch_tensorrt.runtime.enable_cudagraphs(module)`` — which returns a *context manager*, not a
module: its ``__enter__`` switches the runtime to CUDA-graph mode and returns the module to call
(sometimes a wrapper), its ``__exit__`` restores the previous mode. The backend enters it once
when it loads the engines and leaves it in :meth:`TensorRTBackend.close`.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from reenact.errors import BackendError
from reenact.inference.backend import TENSORRT_INSTALL_HINT, CheckedBackend

log = logging.getLogger(__name__)


def import_torch_tensorrt() -> Any:
    """``torch_tensorrt``, or a BackendError saying how to install it."""
    try:
        return importlib.import_module("torch_tensorrt")
    except ImportError as exc:
        raise BackendError(f"torch-tensorrt is not installed ({exc})", hint=TENSORRT_INSTALL_HINT, absent=True) from exc
    except (OSError, RuntimeError, AttributeError) as exc:  # a broken CUDA / TensorRT / torch combination
        raise BackendError(f"torch-tensorrt is installed but cannot be imported: {type(exc).__name__}: {exc}",
                           hint="its torch, CUDA and TensorRT versions must match; " + TENSORRT_INSTALL_HINT) from exc


def tensorrt_version() -> str:
    """The TensorRT library version, or 'unknown' when its Python module cannot be imported."""
    for name in ("tensorrt", "tensorrt_cu13", "tensorrt_cu12"):
        try:
            return str(importlib.import_module(name).__version__)
        except (ImportError, AttributeError, OSError):
            continue
    return "unknown"


def gpu_info(device: str = "cuda") -> tuple[str, str]:
    """(GPU name, SM as 'major.minor') of ``device``; BackendError without a CUDA GPU."""
    import torch

    if not torch.cuda.is_available():
        raise BackendError("TensorRT engines need an NVIDIA GPU, and torch sees none",
                           hint="use --backend onnx (CPU) instead", absent=True)
    major, minor = torch.cuda.get_device_capability(device)
    return torch.cuda.get_device_name(device), f"{major}.{minor}"


def runtime_info(device: str = "cuda") -> dict[str, str]:
    """What an engine is tied to: GPU name and SM, TensorRT, torch-tensorrt and torch versions."""
    trt = import_torch_tensorrt()
    import torch

    name, sm = gpu_info(device)
    return {"gpu_name": name, "sm": sm, "tensorrt": tensorrt_version(),
            "torch_tensorrt": str(getattr(trt, "__version__", "unknown")), "torch": str(torch.__version__)}


def compile_fp16(model: Any, inputs: tuple) -> Any:
    """Compile a half-precision module for batch-1 static ``inputs`` (half CUDA tensors)."""
    trt = import_torch_tensorrt()
    # strong typing: the half weights and inputs set the precision (enabled_precisions is ignored in 2.14)
    return trt.compile(model, ir="dynamo", arg_inputs=list(inputs), min_block_size=1)


def save_engine(module: Any, path: str | os.PathLike, inputs: tuple) -> None:
    """Serialise a compiled module as an ExportedProgram archive (``path`` must end in ``.pt2``)."""
    trt = import_torch_tensorrt()
    trt.save(module, str(path), arg_inputs=list(inputs))


def load_engine(path: str | os.PathLike, cuda_graphs: bool = True, stack: contextlib.ExitStack | None = None) -> Any:
    """Load a ``.pt2`` engine as a callable module.

    With ``cuda_graphs``, the module is entered into torch-tensorrt's CUDA-graph context on
    ``stack`` (which the caller closes when done; required then) and the module that context
    returns is what comes back: the context manager itself is not callable.
    """
    trt = import_torch_tensorrt()
    module = trt.load(str(path)).module()
    if cuda_graphs:
        if stack is None:
            raise ValueError("cuda_graphs=True needs an ExitStack to hold the CUDA-graph context")
        module = stack.enter_context(trt.runtime.enable_cudagraphs(module))
    return module


class TensorRTBackend(CheckedBackend):
    """Φ and Ω as loaded FP16 TensorRT engines (half inputs on CUDA, float32 numpy out)."""

    name = "tensorrt"

    def __init__(self, cfg: Any, modules: dict[str, Any], device: str = "cuda", manifest: dict | None = None,
                 folder: Path | None = None, contexts: contextlib.ExitStack | None = None) -> None:
        import torch

        super().__init__(cfg)
        self.modules = modules
        self.device = torch.device(device)
        self.manifest = manifest or {}
        self.folder = folder
        self._contexts = contexts or contextlib.ExitStack()

    def close(self) -> None:
        """Leave the CUDA-graph contexts entered at load (restores torch-tensorrt's runtime mode)."""
        self._contexts.close()

    def _run(self, name: str, *arrays: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            xs = [torch.from_numpy(a).to(self.device, torch.float16) for a in arrays]
            y = self.modules[name](*xs)
            if isinstance(y, (tuple, list)):
                y = y[0]
            return y.float().cpu().numpy()

    def _phi(self, *inputs: np.ndarray) -> np.ndarray:
        return self._run("phi", *inputs)

    def _omega(self, x: np.ndarray) -> np.ndarray:
        return self._run("omega", x)

    def describe(self) -> str:
        m = self.manifest
        return (f"tensorrt (FP16 engines, {m.get('gpu_name', '?')} SM {m.get('sm', '?')}, TensorRT "
                f"{m.get('tensorrt', '?')}, CUDA graphs; {self.cfg.describe()})")


def create(weights_dir: Path, *, device: str | None = None, engines_dir: str | os.PathLike | None = None,
           precision: str | None = None, cuda_graphs: bool = True) -> TensorRTBackend:
    """Registry factory: load matching engines for ``weights_dir`` from ``engines_dir``.

    Refuses (BackendError, so ``auto`` moves on) when torch-tensorrt is missing, when there are
    no engines for these weights, or when their manifest names another GPU, other versions or
    other weights; the message says to run ``reenact build-engines [--rebuild]``.
    """
    from reenact.inference import manifest as mf

    if precision not in (None, "fp16"):
        raise BackendError(f"TensorRT engines are built in fp16 only, not {precision!r}")
    device = device or "cuda"
    if not device.startswith("cuda"):
        raise BackendError(f"TensorRT needs a CUDA device, not {device!r}", absent=True)
    import_torch_tensorrt()
    folder, manifest = mf.find_engines(weights_dir, engines_dir)
    env = runtime_info(device)
    problems = mf.check_manifest(manifest, mf.expected_manifest(weights_dir, env))
    if problems:
        raise BackendError(f"the engines in {folder} do not match: " + "; ".join(problems),
                           hint=f"rebuild them: reenact build-engines --weights {weights_dir} --rebuild")
    with contextlib.ExitStack() as stack:  # on a failed load, leave what was entered
        modules = {n: load_engine(mf.engine_path(folder, n), cuda_graphs, stack) for n in ("phi", "omega")}
        contexts = stack.pop_all()
    cfg = mf.weights_config(weights_dir)
    log.info("tensorrt backend: engines from %s", folder)
    return TensorRTBackend(cfg, modules, device, manifest, folder, contexts)


create.OPTIONS = ("cuda_graphs",)  # type: ignore[attr-defined]

__all__ = ["TensorRTBackend", "compile_fp16", "create", "gpu_info", "import_torch_tensorrt", "load_engine",
           "runtime_info", "save_engine", "tensorrt_version"]
