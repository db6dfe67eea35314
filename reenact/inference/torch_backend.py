"""The PyTorch backend: CPU or CUDA, FP32 or FP16, optionally replayed as CUDA graphs.

The only inference module that imports torch (and only when a torch backend is created). On
CUDA, FP16 is ``model.half()`` with half inputs; CUDA graphs capture one Φ and one Ω call
into static input/output buffers, so a frame costs one graph replay per network instead of
hundreds of kernel launches from Python. ``fp32`` means IEEE FP32: cuDNN runs float32
convolutions in TF32 (a 10-bit mantissa) by default on Ampere and newer GPUs, so the backend
turns TF32 off around its own calls (:func:`ieee_fp32`); an FP32 reference that was really TF32
made the FP16-vs-FP32 parity figures and the FP32 timings of scripts/gpu_check.py mislabelled.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from reenact.errors import BackendError
from reenact.inference.backend import CheckedBackend, omega_input_shape, phi_input_shapes

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "fp16")


@contextlib.contextmanager
def ieee_fp32(enabled: bool = True) -> Iterator[None]:
    """TF32 off for cuDNN convolutions and cuBLAS matmuls inside the block, restored after.

    Both switches are process-wide torch flags (cuDNN's defaults to TF32 on), so they are set
    and restored around each call rather than once for the process.
    """
    if not enabled:
        yield
        return
    import torch

    saved = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


class CudaGraphRunner:
    """Replays one captured call of ``fn`` on static input buffers (CUDA only).

    Inputs are copied into the captured buffers; the returned tensor is the graph's static
    output, overwritten by the next call (callers copy it out, as :class:`TorchBackend` does).
    """

    def __init__(self, fn: Callable, example_inputs: tuple, warmup: int = 3) -> None:
        import torch

        self.static_inputs = tuple(x.clone() for x in example_inputs)
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):  # warm-up outside the graph (cuDNN autotune, allocations)
            for _ in range(warmup):
                fn(*self.static_inputs)
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.static_output = fn(*self.static_inputs)
        torch.cuda.synchronize()

    def __call__(self, *inputs):
        for buf, x in zip(self.static_inputs, inputs, strict=True):
            buf.copy_(x, non_blocking=True)
        self.graph.replay()
        return self.static_output


class TorchBackend(CheckedBackend):
    """Φ and Ω as torch modules in eval mode under ``torch.inference_mode``."""

    name = "torch"

    def __init__(self, weights_dir: str | os.PathLike, device: str = "cpu", precision: str = "fp32",
                 cuda_graphs: bool = True, threads: int | None = None) -> None:
        import torch

        from reenact.weights_io import load_networks

        if precision not in PRECISIONS:
            raise BackendError(f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
        dev = torch.device(device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise BackendError("torch has no CUDA device here", hint="use --device cpu, or install a CUDA build of torch")
        if precision == "fp16" and dev.type != "cuda":
            raise BackendError("fp16 needs a CUDA device for the torch backend (half on CPU is slow and inexact)")
        if threads:
            torch.set_num_threads(threads)
        cfg, nets = load_networks(Path(weights_dir))
        super().__init__(cfg)
        self.device = dev
        self.precision = precision
        self.dtype = torch.float16 if precision == "fp16" else torch.float32
        self.nets = {k: v.eval().to(dev, self.dtype) for k, v in nets.items()}
        for net in self.nets.values():
            net.requires_grad_(False)
        self._runners: dict[str, Callable] = {"phi": self.nets["phi"], "omega": self.nets["omega"]}
        self.cuda_graphs = bool(cuda_graphs and dev.type == "cuda")
        if self.cuda_graphs:
            self._capture()
        log.info("torch backend: %s on %s %s%s", cfg.describe(), dev, precision, " + CUDA graphs" if self.cuda_graphs else "")

    def _capture(self) -> None:
        """Capture Φ and Ω as CUDA graphs on zero-filled batch-1 buffers."""
        import torch

        with torch.inference_mode(), ieee_fp32(self.precision == "fp32"):  # kernels are chosen at capture
            phi_in = tuple(torch.zeros(s, device=self.device, dtype=self.dtype) for s in phi_input_shapes(self.cfg))
            if self.cfg.variant == "guided":  # a plausible face rather than all points at (0, 0)
                from reenact.face.topology import TEMPLATE_256

                t = torch.as_tensor(TEMPLATE_256, device=self.device, dtype=self.dtype)[None]
                phi_in = (t, t, t)
            om_in = torch.zeros(omega_input_shape(self.cfg), device=self.device, dtype=self.dtype)
            self._runners["phi"] = CudaGraphRunner(self.nets["phi"], phi_in)
            self._runners["omega"] = CudaGraphRunner(self.nets["omega"], (om_in,))

    def _run(self, name: str, *arrays: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode(), ieee_fp32(self.precision == "fp32"):
            xs = tuple(torch.from_numpy(a).to(self.device, self.dtype, non_blocking=False) for a in arrays)
            y = self._runners[name](*xs)
            return y.float().cpu().numpy()

    def _phi(self, *inputs: np.ndarray) -> np.ndarray:
        return self._run("phi", *inputs)

    def _omega(self, x: np.ndarray) -> np.ndarray:
        return self._run("omega", x)

    def describe(self) -> str:
        extra = ", CUDA graphs" if self.cuda_graphs else ""
        return f"torch ({self.device} {self.precision}{extra}; {self.cfg.describe()})"


def create(weights_dir: Path, *, device: str | None = None, engines_dir: object = None, precision: str | None = None,
           cuda_graphs: bool = True, threads: int | None = None) -> TorchBackend:
    """Registry factory. Defaults: CUDA in fp16 when torch sees a GPU, else CPU in fp32."""
    try:
        import torch
    except ImportError as exc:
        raise BackendError("torch is not installed", hint="pip install 'reenact[train]'", absent=True) from exc
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if precision is None:
        precision = "fp16" if device.startswith("cuda") else "fp32"
    return TorchBackend(weights_dir, device, precision, cuda_graphs, threads)


create.OPTIONS = ("cuda_graphs", "threads")  # type: ignore[attr-defined]

__all__ = ["CudaGraphRunner", "PRECISIONS", "TorchBackend", "create", "ieee_fp32"]
