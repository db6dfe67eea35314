"""The ONNX Runtime backend: the live path's default, no torch needed.

Reads ``phi.onnx`` and ``omega.onnx`` (written by ``reenact export``) from a weights folder
and checks their recorded config against the folder's ``config.json``. CPU by default with a
settable number of intra-op threads (the live path shares a few cores with capture and
landmarks); the CUDA execution provider when ``device='cuda'`` and onnxruntime-gpu has it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from reenact.errors import BackendError
from reenact.inference.backend import CheckedBackend, phi_input_names
from reenact.inference.metadata import as_dict, check_model_metadata
from reenact.weights_io import read_config, sha256_file

log = logging.getLogger(__name__)

DEFAULT_THREADS = 2


def _session(path: Path, device: str, threads: int):
    """An InferenceSession for ``path`` on CPU (``threads`` intra-op) or CUDA."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    # no busy-waiting between runs: spinning threads starve the live path's capture and
    # output threads on a 2-core CPU (measured in `reenact live`: 54 -> 33 ms per frame, BENCHMARKS.md)
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if device.startswith("cuda"):
        available = ort.get_available_providers()
        if "CUDAExecutionProvider" not in available:
            raise BackendError(f"onnxruntime has no CUDA provider (available: {', '.join(available)})",
                               hint="pip install onnxruntime-gpu, or use --device cpu")
        dev_id = int(device.split(":")[1]) if ":" in device else 0
        providers: list = [("CUDAExecutionProvider", {"device_id": dev_id}), "CPUExecutionProvider"]
    else:
        providers = ["CPUExecutionProvider"]
    return ort.InferenceSession(str(path), sess_options=opts, providers=providers)


class OnnxBackend(CheckedBackend):
    """Φ and Ω as two ONNX Runtime sessions (float32, batch 1)."""

    name = "onnx"

    def __init__(self, weights_dir: str | os.PathLike, device: str = "cpu", threads: int = DEFAULT_THREADS,
                 check_weights_hash: bool = True) -> None:
        weights = Path(weights_dir)
        super().__init__(read_config(weights))
        self.device = device
        self.threads = threads
        self.paths = {n: weights / f"{n}.onnx" for n in ("phi", "omega")}
        missing = [p.name for p in self.paths.values() if not p.is_file()]
        if missing:
            raise BackendError(f"no {' / '.join(missing)} in {weights}",
                               hint=f"run `reenact export --weights {weights}` first", absent=True)
        self.sessions = {}
        for name, path in self.paths.items():
            try:
                sess = _session(path, device, threads)
            except BackendError:
                raise
            except Exception as exc:  # onnxruntime's own types (InvalidProtobuf, Fail, ...) derive from Exception
                detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise BackendError(f"cannot load {path}: {detail}",
                                   hint=f"the file is damaged or not an ONNX model: export it again with "
                                        f"`reenact export --weights {weights}`") from exc
            meta = as_dict(sess.get_modelmeta().custom_metadata_map)
            st = weights / f"{name}.safetensors"
            sha = sha256_file(st) if check_weights_hash and st.is_file() else None
            check_model_metadata(meta, self.cfg, name, str(path), sha)
            self.sessions[name] = sess
        self._phi_names = list(phi_input_names(self.cfg))
        self._providers = self.sessions["omega"].get_providers()
        log.info("onnx backend: %s, providers %s, %d threads", self.cfg.describe(), self._providers, threads)

    def _phi(self, *inputs: np.ndarray) -> np.ndarray:
        return self.sessions["phi"].run(None, dict(zip(self._phi_names, inputs, strict=True)))[0]

    def _omega(self, x: np.ndarray) -> np.ndarray:
        return self.sessions["omega"].run(None, {"x": x})[0]

    def describe(self) -> str:
        where = "CUDA" if "CUDAExecutionProvider" in self._providers else f"CPU, {self.threads} thread{'' if self.threads == 1 else 's'}"
        return f"onnx ({where}; {self.cfg.describe()})"


def create(weights_dir: Path, *, device: str | None = None, engines_dir: object = None, precision: str | None = None,
           threads: int = DEFAULT_THREADS, check_weights_hash: bool = True) -> OnnxBackend:
    """Registry factory: ONNX Runtime in float32 on ``device`` (default CPU)."""
    if precision not in (None, "fp32"):
        raise BackendError(f"the onnx backend runs fp32 only, not {precision!r} (FP16 on CPU is slower)",
                           hint="use --backend torch or tensorrt for fp16")
    return OnnxBackend(weights_dir, device or "cpu", threads, check_weights_hash)


create.OPTIONS = ("threads", "check_weights_hash")  # type: ignore[attr-defined]

__all__ = ["DEFAULT_THREADS", "OnnxBackend", "create"]
