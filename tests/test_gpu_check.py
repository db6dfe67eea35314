"""scripts/gpu_check.py up to the GPU boundary: one failing step (or case) never loses the rest.

On a machine without CUDA every torch-CUDA backend creation fails for real (BackendError), which
is the failure path; the TensorRT build and backend are replaced at the module edge."""

from __future__ import annotations

import importlib.util
import json
import types
from pathlib import Path

import pytest

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "scripts" / "gpu_check.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _args(tmp_path):
    return types.SimpleNamespace(replay=ROOT / "tests" / "data" / "replay_astronaut.npz", runs=2, json=tmp_path / "out.json")


def test_torch_check_records_failures_per_step_and_goes_on(gpu_check, tmp_path, monkeypatch):
    import torch

    if torch.cuda.is_available():
        pytest.skip("the failure path needs a machine without CUDA")
    monkeypatch.setattr(gpu_check, "CASES", [("guided", "lite"), ("paper", "lite")])
    written = []
    rows = gpu_check.run_torch(_args(tmp_path), tmp_path, emit=lambda rows: written.append(len(rows)))
    assert [(r["variant"], r["preset"]) for r in rows] == [("guided", "lite"), ("paper", "lite")]
    assert written == [1, 2]  # the JSON is rewritten after each row
    for r in rows:
        assert "no CUDA device" in r["errors"]["fp32 backend"] and "no CUDA device" in r["errors"]["fp16 backend"]
        assert r["skipped"]["parity"].startswith("needs") and r["parity_fp16_vs_fp32"] is None
        assert "weights" not in r["errors"] and "inputs" not in r["errors"]
        assert r["reference"].startswith("IEEE FP32")


def test_tensorrt_check_survives_a_failed_build_and_a_failed_backend(gpu_check, tmp_path, monkeypatch):
    from reenact.errors import BackendError
    from reenact.inference import engines

    builds = []

    def build(folder, out, replay=None):
        builds.append(folder)
        if len(builds) == 1:
            raise BackendError("the FP16 engine for omega (Ω) does not match FP32 PyTorch")
        return out

    def create(name, folder, **kw):
        raise TypeError("'_CudagraphsContextManager' object is not callable")

    monkeypatch.setattr(engines, "build_engines", build)
    monkeypatch.setattr(gpu_check, "create_backend", create)
    rows = gpu_check.run_tensorrt(_args(tmp_path), tmp_path)
    assert len(rows) == 2 and len(builds) == 2
    first, second = rows
    assert "does not match" in first["errors"]["build"] and first["skipped"]["tensorrt backend"] == "needs build"
    assert "build" not in second["errors"] and "build_s" in second
    assert "not callable" in second["errors"]["tensorrt backend"]
    assert second["skipped"]["parity"].startswith("needs") and second["trt_fp16_graphs"] is None
    gpu_check.write_json(tmp_path / "t.json", {"gpu": "none"}, rows)
    assert json.loads((tmp_path / "t.json").read_text())["rows"][1]["errors"]["tensorrt backend"]
