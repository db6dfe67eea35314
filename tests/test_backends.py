"""The backend registry and interface: names, one error listing every failure, input checks,
lazy imports (no torch / torch-tensorrt / tensorrt at package import), the torch backend on CPU,
and the CUDA paths (marked ``gpu``; run by scripts/gpu_check.sh)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from reenact.config import model_config
from reenact.errors import BackendError
from reenact.inference import backend as registry
from reenact.inference.backend import (
    CheckedBackend,
    backend_names,
    create_backend,
    omega_input_shape,
    phi_input_shapes,
    register_backend,
    unregister_backend,
)

ROOT = Path(__file__).resolve().parents[1]


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


gpu = pytest.mark.gpu
needs_cuda = pytest.mark.skipif(not _cuda(), reason="needs an NVIDIA GPU with a CUDA build of torch")


class FakeBackend(CheckedBackend):
    """A backend that returns zeros of the right shape (httpx MockTransport style)."""

    name = "fake"

    def _phi(self, *inputs):
        return np.zeros(inputs[-1].shape, np.float32)

    def _omega(self, x):
        return np.zeros((1, self.cfg.omega_out_channels, 256, 256), np.float32)


# ----------------------------------------------------------------------------- lazy imports


def test_importing_reenact_imports_no_torch_or_tensorrt():
    code = (
        "import sys, reenact, reenact.cli, reenact.inference.backend, reenact.inference.onnx_backend, "
        "reenact.inference.tensorrt_backend, reenact.inference.engines, reenact.inference.manifest, "
        "reenact.inference.metadata, "
        "reenact.inference.samples\n"
        "bad = sorted(m for m in ('torch', 'torch_tensorrt', 'tensorrt') if m in sys.modules)\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "", f"imported at package import: {out.stdout.strip()}"


# ----------------------------------------------------------------------------- registry


def test_unknown_backend_lists_the_valid_names(tmp_path):
    with pytest.raises(BackendError) as err:
        create_backend("cuda-magic", tmp_path)
    msg = str(err.value)
    for name in ("auto", "onnx", "torch", "tensorrt"):
        assert name in msg


def test_auto_with_nothing_usable_lists_every_backend_and_why(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch_tensorrt", None)  # absent even where it is installed
    with pytest.raises(BackendError) as err:
        create_backend("auto", tmp_path)  # an empty folder: no config, no onnx, no engines
    msg = str(err.value)
    assert msg.count("\n  tensorrt: ") == 1 and msg.count("\n  onnx: ") == 1 and msg.count("\n  torch: ") == 1
    assert "pip install 'reenact[tensorrt]'" in msg
    assert "no config.json" in msg


def test_tensorrt_without_torch_tensorrt_says_how_to_install(exported, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch_tensorrt", None)
    with pytest.raises(BackendError) as err:
        create_backend("tensorrt", exported["guided"], device="cuda")
    msg = str(err.value)
    assert "torch-tensorrt is not installed" in msg
    assert "pip install 'reenact[tensorrt]'" in msg and "NVIDIA GPU" in msg and "torch 2.14" in msg


def test_auto_falls_back_to_onnx_without_engines(exported, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "torch_tensorrt", None)
    b = create_backend("auto", exported["guided"], threads=1, cuda_graphs=False)
    assert b.name == "onnx" and "onnx" in b.describe()
    assert b.threads == 1


def test_registered_fake_backend_is_used_and_checked(tmp_path):
    from reenact.weights_io import write_config

    cfg = model_config("guided", "lite")
    write_config(tmp_path, cfg)
    seen = {}

    def factory(weights_dir, *, device=None, engines_dir=None, precision=None, **opts):
        from reenact.weights_io import read_config

        seen.update(device=device, precision=precision, opts=opts)
        return FakeBackend(read_config(weights_dir))

    register_backend("fake", factory)
    try:
        assert "fake" in backend_names()
        b = create_backend("fake", tmp_path, device="cpu", precision="fp32", extra=1)
        assert isinstance(b, registry.Backend)
        assert seen == {"device": "cpu", "precision": "fp32", "opts": {"extra": 1}}
        pts = np.zeros((1, 68, 2), np.float32)
        assert b.phi(pts, pts, pts).shape == (1, 68, 2)
        assert b.omega(np.zeros(omega_input_shape(cfg), np.float32)).shape == (1, 4, 256, 256)
    finally:
        unregister_backend("fake")
    assert "fake" not in backend_names()


def test_a_failing_named_backend_raises_one_clear_error(tmp_path):
    def broken(weights_dir, **kw):
        raise RuntimeError("driver exploded")

    register_backend("broken", broken)
    try:
        with pytest.raises(BackendError, match="backend 'broken' could not be loaded: RuntimeError: driver exploded"):
            create_backend("broken", tmp_path)
    finally:
        unregister_backend("broken")


# ----------------------------------------------------------------------------- input checks


@pytest.mark.parametrize("variant", ["guided", "paper"])
def test_inputs_are_checked_with_expected_and_actual(variant):
    cfg = model_config(variant, "lite")
    b = FakeBackend(cfg)
    good = [np.zeros(s, np.float32) for s in phi_input_shapes(cfg)]
    assert b.phi(*good).shape == good[-1].shape
    with pytest.raises(TypeError, match="float32, got float64"):
        b.phi(*[g.astype(np.float64) for g in good])
    with pytest.raises(TypeError, match="numpy float32 array, got list"):
        b.omega([[0.0]])
    bad_shape = (1, 68, 3) if variant == "guided" else (1, 1, 128, 128)
    with pytest.raises(ValueError, match=rf"must have shape \[{', '.join(map(str, good[0].shape))}\], got "
                                         rf"\[{', '.join(map(str, bad_shape))}\]"):
        b.phi(np.zeros(bad_shape, np.float32), *good[1:])
    with pytest.raises(ValueError, match="takes"):
        b.phi(*good[:-1])
    wrong_c = 4 if variant == "guided" else 9
    with pytest.raises(ValueError, match=rf"\[1, {cfg.omega_in_channels}, 256, 256\], got \[1, {wrong_c}, 256, 256\]"):
        b.omega(np.zeros((1, wrong_c, 256, 256), np.float32))


# ----------------------------------------------------------------------------- torch backend (CPU)


def test_torch_backend_matches_the_modules(exported):
    import torch

    from reenact.inference.samples import sample_inputs
    from reenact.weights_io import load_networks

    b = create_backend("torch", exported["paper"], device="cpu", threads=2)
    assert "cpu fp32" in b.describe()
    _, nets = load_networks(exported["paper"])
    phi_in, om_in = sample_inputs(b.cfg, 1)[0]
    with torch.inference_mode():
        want = nets["omega"](torch.from_numpy(om_in)).numpy()
    assert np.array_equal(b.omega(om_in), want)
    assert b.phi(*phi_in).shape == (1, 1, 256, 256)


def test_torch_backend_fp32_runs_without_tf32_and_restores_the_flags(exported):
    """fp32 means IEEE FP32: cuDNN's default TF32 (on) is switched off around the backend's calls
    (the FP16-vs-FP32 parity of gpu_check was measured against TF32 before), then restored."""
    import torch

    b = create_backend("torch", exported["guided"], device="cpu", threads=2)
    seen = []

    def spy(module, args):
        seen.append((torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32))

    hooks = [net.register_forward_pre_hook(spy) for net in b.nets.values()]
    before = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = True  # cuDNN's default
    torch.backends.cuda.matmul.allow_tf32 = True
    try:
        from reenact.inference.samples import sample_inputs

        phi_in, om_in = sample_inputs(b.cfg, 1)[0]
        b.phi(*phi_in)
        b.omega(om_in)
        assert seen == [(False, False), (False, False)]
        assert (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32) == (True, True)
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before
        for h in hooks:
            h.remove()


def test_torch_backend_refuses_fp16_on_cpu_and_missing_cuda(exported):
    with pytest.raises(BackendError, match="fp16 needs a CUDA device"):
        create_backend("torch", exported["guided"], device="cpu", precision="fp16")
    if not _cuda():
        with pytest.raises(BackendError, match="no CUDA device"):
            create_backend("torch", exported["guided"], device="cuda")


def test_onnx_backend_refuses_fp16(exported):
    with pytest.raises(BackendError, match="fp32 only"):
        create_backend("onnx", exported["guided"], precision="fp16")


# ----------------------------------------------------------------------------- CUDA (gpu marker)


@gpu
@needs_cuda
@pytest.mark.parametrize("variant", ["guided", "paper"])
def test_torch_cuda_fp16_graphs_match_fp32(weights_factory, variant):
    from reenact.inference.engines import psnr
    from reenact.inference.samples import sample_inputs

    folder = weights_factory(variant, seed=21)
    ref = create_backend("torch", folder, device="cpu", precision="fp32")
    fp16 = create_backend("torch", folder, device="cuda", precision="fp16", cuda_graphs=True)
    eager = create_backend("torch", folder, device="cuda", precision="fp16", cuda_graphs=False)
    assert fp16.cuda_graphs and "CUDA graphs" in fp16.describe()
    for phi_in, om_in in sample_inputs(ref.cfg, 3):
        for name, args in (("phi", phi_in), ("omega", (om_in,))):
            want = getattr(ref, name)(*args)
            got = getattr(fp16, name)(*args)
            assert np.isfinite(got).all()
            assert psnr(want, got) >= 40.0, name
            # graph replay gives the eager result (same kernels, same inputs)
            assert np.abs(got - getattr(eager, name)(*args)).max() <= 1e-2


@gpu
@needs_cuda
def test_onnx_cuda_provider_when_present(exported):
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("onnxruntime here has no CUDA provider (onnxruntime-gpu not installed)")
    b = create_backend("onnx", exported["guided"], device="cuda")
    assert "CUDA" in b.describe()
