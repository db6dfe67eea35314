"""Fixtures for the backend, export and engine tests: small weights folders and their ONNX export (once per session).

Loaded by tests/conftest.py through `pytest_plugins`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).parent / "data"


def _randomise_batchnorm(module, seed: int) -> None:
    """Give every BatchNorm non-trivial running stats and affine parameters (as after training),
    so BatchNorm folding and export parity are tested on more than identity BNs."""
    import torch

    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.2)
            m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.25)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)


def make_weights_folder(folder: Path, variant: str, preset: str = "lite", seed: int = 0, **overrides) -> Path:
    """A weights folder (config.json, phi/omega.safetensors) with random but trained-looking weights."""
    import torch

    from reenact.config import model_config
    from reenact.models import build_omega, build_phi
    from reenact.weights_io import save_state, write_config

    cfg = model_config(variant, preset, **overrides)
    torch.manual_seed(seed)
    phi, omega = build_phi(cfg), build_omega(cfg)
    if variant == "guided":  # the zero-initialised last layer would make Φ's learned part invisible
        torch.nn.init.normal_(phi.net[-1].weight, std=0.02)
        torch.nn.init.normal_(phi.net[-1].bias, std=0.02)
    _randomise_batchnorm(phi, seed)
    _randomise_batchnorm(omega, seed + 1)
    folder.mkdir(parents=True, exist_ok=True)
    save_state(folder / "phi.safetensors", phi.state_dict(), "phi", cfg)
    save_state(folder / "omega.safetensors", omega.state_dict(), "omega", cfg)
    write_config(folder, cfg)
    return folder


@pytest.fixture(scope="session")
def weights_factory(tmp_path_factory) -> Callable[..., Path]:
    """make_weights_folder in a fresh temporary folder: ``weights_factory(variant, preset='lite', seed=0)``."""

    def make(variant: str, preset: str = "lite", seed: int = 0, **overrides) -> Path:
        return make_weights_folder(tmp_path_factory.mktemp(f"w-{variant}-{preset}"), variant, preset, seed, **overrides)

    return make


@pytest.fixture(scope="session")
def exported(weights_factory) -> dict[str, Path]:
    """variant -> lite weights folder with phi.onnx / omega.onnx exported (once per session).

    The guided folder goes through the CLI (`reenact export`), the paper one through the library.
    """
    pytest.importorskip("onnxscript", reason="the dynamo ONNX exporter needs onnxscript")
    from reenact.cli import main
    from reenact.inference.export import export_onnx

    out = {}
    g = weights_factory("guided")
    assert main(["export", "--weights", str(g)]) == 0
    out["guided"] = g
    p = weights_factory("paper")
    export_onnx(p)
    out["paper"] = p
    return out


@pytest.fixture(scope="session")
def real_face() -> tuple[np.ndarray, np.ndarray] | None:
    """(aligned 256² BGR crop, its [68,2] crop points) of a real face, or None without scikit-image.

    The astronaut photo (public domain, scikit-image) with the dlib points recorded in
    tests/data/astronaut_landmarks.json, so no dlib is needed here.
    """
    try:
        import cv2
        from skimage import data as skdata
    except ImportError:
        return None
    from reenact.face.align import align_points

    ref = json.loads((DATA / "astronaut_landmarks.json").read_text())
    points = np.asarray(ref["points"], np.float32)
    image = cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2BGR)
    al = align_points(points)
    return al.crop(image), al.to_crop(points).astype(np.float32)
