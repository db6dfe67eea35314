"""TensorRT engines up to the GPU boundary: manifest matching (a pure function), the build's
FP16-vs-FP32 parity gate, the engine folder and loading. torch_tensorrt, tensorrt and the GPU
query are faked at the edge (sys.modules / gpu_info); the real path runs in scripts/gpu_check.sh."""

from __future__ import annotations

import json
import math
import sys
import types

import numpy as np
import pytest
import torch

from reenact.errors import BackendError
from reenact.inference import engines, manifest
from reenact.inference import tensorrt_backend as trt_backend
from reenact.inference.backend import create_backend

torch.set_num_threads(2)

ENV = {"gpu_name": "NVIDIA H200", "sm": "9.0", "tensorrt": "11.1.0", "torch_tensorrt": "2.14.0", "torch": "2.14.0"}


# ----------------------------------------------------------------------------- pure manifest matching


@pytest.fixture(scope="module")
def lite_weights(weights_factory):
    return weights_factory("guided", seed=11)


@pytest.mark.parametrize("field,value,label", [
    ("gpu_name", "NVIDIA L4", "GPU"),
    ("sm", "8.9", "GPU compute capability (SM)"),
    ("tensorrt", "10.13.0", "TensorRT version"),
    ("torch_tensorrt", "2.13.0", "torch-tensorrt version"),
    ("torch", "2.13.1", "torch version"),
    ("precision", "fp32", "precision"),
    ("variant", "paper", "variant"),
    ("weights_sha256", "0" * 64, "weights (sha256)"),
])
def test_each_manifest_mismatch_is_detected(lite_weights, field, value, label):
    expected = manifest.expected_manifest(lite_weights, ENV)
    assert manifest.check_manifest(dict(expected), expected) == []
    stale = {**expected, field: value}
    problems = manifest.check_manifest(stale, expected)
    assert len(problems) == 1 and problems[0].startswith(label + ":")
    if field not in ("weights_sha256",):
        assert repr(value) in problems[0] and repr(expected[field]) in problems[0]


def test_manifest_mismatch_lists_all_differences(lite_weights):
    expected = manifest.expected_manifest(lite_weights, ENV)
    stale = {**expected, "gpu_name": "Tesla T4", "sm": "7.5", "tensorrt": "10.0"}
    assert len(manifest.check_manifest(stale, expected)) == 3
    assert len(manifest.check_manifest({}, expected)) == len(manifest.MATCH_FIELDS)


def test_weights_fingerprint_changes_with_the_weights(lite_weights, weights_factory):
    a = manifest.weights_fingerprint(lite_weights)
    b = manifest.weights_fingerprint(weights_factory("guided", seed=12))
    assert a["combined"] != b["combined"] and len(a["combined"]) == 64
    assert set(a) == {"combined", "phi.safetensors", "omega.safetensors"}


def test_psnr():
    ref = np.linspace(-1, 1, 1000)
    assert engines.psnr(ref, ref) == math.inf
    assert math.isnan(engines.psnr(ref, np.where(ref > 0.5, np.nan, ref)))
    noisy = ref + 0.02  # mse 4e-4, peak 2 -> 10*log10(4/4e-4) = 40 dB
    assert engines.psnr(ref, noisy) == pytest.approx(40.0, abs=1e-6)


# ----------------------------------------------------------------------------- fake torch_tensorrt at the edge


class FakeCudagraphsContext:
    """As torch_tensorrt.runtime.enable_cudagraphs returns in 2.14 (runtime/_cudagraphs.py): a
    context manager and NOT a module — no ``__call__``; ``__enter__`` switches the runtime mode
    and returns the module to call, ``__exit__`` restores the previous mode."""

    def __init__(self, trt: FakeTRT, module) -> None:
        self.trt, self.module, self.old_mode = trt, module, trt.cudagraphs_mode

    def __enter__(self):
        self.trt.cudagraphs_mode = "subgraph"
        self.trt.graphed += 1
        return self.module

    def __exit__(self, *exc) -> None:
        self.trt.cudagraphs_mode = self.old_mode


class FakeTRT(types.ModuleType):
    """Just enough torch_tensorrt, as strict as the real one where we depend on it: compile
    returns the (half) module itself; save/load pickle it and, like torch's .pt2 archive
    reader and writer (a warning today, an error announced), refuse a path not ending in .pt2;
    enable_cudagraphs returns a context manager."""

    def __init__(self, corrupt: str | None = None) -> None:
        super().__init__("torch_tensorrt")
        self.__version__ = "2.14.0"
        self.compiled: list[str] = []
        self.corrupt = corrupt
        self.runtime = types.SimpleNamespace(enable_cudagraphs=lambda module: FakeCudagraphsContext(self, module))
        self.graphed = 0
        self.cudagraphs_mode = "standard"

    def compile(self, model, ir, arg_inputs, **kw):
        assert ir == "dynamo" and all(x.dtype == torch.float16 for x in arg_inputs), "FP16 via half inputs"
        assert all(p.dtype == torch.float16 for p in model.parameters()), "FP16 via model.half()"
        name = "phi" if len(arg_inputs) > 1 else "omega"
        self.compiled.append(name)
        if self.corrupt == name:
            return lambda *xs: model(*xs) * float("nan")
        return model

    @staticmethod
    def _check_pt2(path) -> None:
        if not str(path).endswith(".pt2"):
            raise ValueError(f"Expect archive file to be a file ending in .pt2, or is a buffer. Instead got {{{path}}}")

    def save(self, module, path, arg_inputs):
        self._check_pt2(path)
        torch.save(module, path)

    def load(self, path):
        self._check_pt2(path)
        module = torch.load(path, weights_only=False)
        return types.SimpleNamespace(module=lambda: module)


@pytest.fixture
def fake_trt(monkeypatch):
    fake = FakeTRT()
    monkeypatch.setitem(sys.modules, "torch_tensorrt", fake)
    monkeypatch.setitem(sys.modules, "tensorrt", types.SimpleNamespace(__version__="11.1.0"))
    monkeypatch.setattr(trt_backend, "gpu_info", lambda device="cuda": ("NVIDIA H200", "9.0"))
    return fake


def test_runtime_info_reads_versions_and_gpu(fake_trt):
    info = trt_backend.runtime_info("cuda")
    assert info == {"gpu_name": "NVIDIA H200", "sm": "9.0", "tensorrt": "11.1.0", "torch_tensorrt": "2.14.0",
                    "torch": str(torch.__version__)}


def test_build_writes_engines_and_manifest_then_loads(exported, fake_trt, tmp_path, monkeypatch):
    weights = exported["guided"]
    folder = engines.build_engines(weights, tmp_path, device="cpu", n_samples=2)
    assert fake_trt.compiled == ["phi", "omega"]
    assert (folder / "phi.pt2").is_file() and (folder / "omega.pt2").is_file()
    m = json.loads((folder / "manifest.json").read_text())
    for key in ("gpu_name", "sm", "tensorrt", "torch_tensorrt", "torch", "precision", "input_shapes", "variant",
                "preset", "weights_sha256", "build_time", "parity"):
        assert key in m, key
    assert m["precision"] == "fp16" and m["input_shapes"]["omega"] == [[1, 9, 256, 256]]
    assert all(float(p["psnr_db"]) >= 40 for p in m["parity"].values())
    assert folder.name.startswith("guided-lite-")

    # matching engines: no second build unless asked
    engines.build_engines(weights, tmp_path, device="cpu", n_samples=2)
    assert fake_trt.compiled == ["phi", "omega"]
    engines.build_engines(weights, tmp_path, device="cpu", n_samples=2, rebuild=True)
    assert fake_trt.compiled == ["phi", "omega"] * 2

    # loading: create() finds the folder, checks the manifest, loads with CUDA graphs
    b = create_backend("tensorrt", weights, device="cuda", engines_dir=tmp_path)
    assert b.name == "tensorrt" and fake_trt.graphed == 2 and "NVIDIA H200" in b.describe()
    assert fake_trt.cudagraphs_mode == "subgraph"
    assert all(callable(m) for m in b.modules.values())  # the modules, not the contexts
    b.close()  # leaves the CUDA-graph contexts: the runtime's mode is restored
    assert fake_trt.cudagraphs_mode == "standard"
    # run the loaded modules on CPU (no GPU here): same interface, float32 out
    cpu = trt_backend.TensorRTBackend(b.cfg, b.modules, device="cpu", manifest=b.manifest)
    pts = np.tile(np.float32(128), (1, 68, 2))
    assert cpu.phi(pts, pts, pts).dtype == np.float32

    # another GPU: the tensorrt backend refuses clearly, auto falls back to onnx
    monkeypatch.setattr(trt_backend, "gpu_info", lambda device="cuda": ("NVIDIA L4", "8.9"))
    with pytest.raises(BackendError) as err:
        create_backend("tensorrt", weights, device="cuda", engines_dir=tmp_path)
    msg = str(err.value)
    assert "GPU: built for 'NVIDIA H200', this machine has 'NVIDIA L4'" in msg and "--rebuild" in msg
    auto = create_backend("auto", weights, device="cuda", engines_dir=tmp_path) if _ort_cuda() else \
        create_backend("auto", weights, engines_dir=tmp_path)
    assert auto.name == "onnx"


def _ort_cuda() -> bool:
    import onnxruntime as ort

    return "CUDAExecutionProvider" in ort.get_available_providers()


def test_build_refuses_an_engine_that_does_not_match_fp32(exported, fake_trt, tmp_path):
    fake_trt.corrupt = "omega"
    with pytest.raises(BackendError, match=r"engine for omega \(Ω\).*PSNR nan dB.*NaN: True"):
        engines.build_engines(exported["paper"], tmp_path, device="cpu", n_samples=1)
    folder = next(tmp_path.iterdir())
    assert (folder / "phi.pt2").is_file() and not (folder / "omega.pt2").exists()
    assert not (folder / "manifest.json").exists()


def test_engines_of_the_old_ep_format_are_refused_with_a_rebuild_hint(exported, fake_trt, tmp_path):
    """Engines built before .pt2 (files phi.ep / omega.ep, manifest format 1) are not loaded."""
    weights = exported["guided"]
    folder = engines.build_engines(weights, tmp_path, device="cpu", n_samples=1)
    m = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**m, "format": "reenact-engines-1"}))
    for n in ("phi", "omega"):
        (folder / f"{n}.pt2").rename(folder / f"{n}.ep")
    with pytest.raises(BackendError) as err:
        create_backend("tensorrt", weights, device="cuda", engines_dir=tmp_path)
    assert "phi.pt2" in str(err.value) and "--rebuild" in str(err.value)
    (folder / "phi.ep").rename(folder / "phi.pt2")
    (folder / "omega.ep").rename(folder / "omega.pt2")
    with pytest.raises(BackendError, match="(?s)manifest format: built for 'reenact-engines-1'.*--rebuild"):
        create_backend("tensorrt", weights, device="cuda", engines_dir=tmp_path)
    assert fake_trt.graphed == 0


def test_no_engines_for_these_weights_says_how_to_build(lite_weights, fake_trt, tmp_path):
    with pytest.raises(BackendError, match="reenact build-engines"):
        create_backend("tensorrt", lite_weights, device="cuda", engines_dir=tmp_path)


def test_tensorrt_needs_cuda_and_fp16(lite_weights, fake_trt):
    with pytest.raises(BackendError, match="CUDA device"):
        create_backend("tensorrt", lite_weights, device="cpu")
    with pytest.raises(BackendError, match="fp16 only"):
        create_backend("tensorrt", lite_weights, precision="fp32")


def test_build_engines_cli_without_torch_tensorrt_is_a_clear_error(lite_weights, monkeypatch, capsys):
    from reenact.cli import main

    monkeypatch.setitem(sys.modules, "torch_tensorrt", None)
    assert main(["build-engines", "--weights", str(lite_weights)]) == 2
    err = capsys.readouterr().err
    assert "pip install 'reenact[tensorrt]'" in err and "Traceback" not in err


# ----------------------------------------------------------------------------- the real thing


@pytest.mark.gpu
def test_real_tensorrt_build_and_load(lite_weights, tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("needs an NVIDIA GPU")
    pytest.importorskip("torch_tensorrt", reason="torch-tensorrt is not installed here")
    folder = engines.build_engines(lite_weights, tmp_path, n_samples=4)
    b = create_backend("tensorrt", lite_weights, engines_dir=tmp_path)
    ref = create_backend("torch", lite_weights, device="cpu")
    from reenact.inference.samples import sample_inputs

    phi_in, om_in = sample_inputs(b.cfg, 1)[0]
    assert engines.psnr(ref.omega(om_in), b.omega(om_in)) >= 40
    assert (folder / "manifest.json").is_file()
