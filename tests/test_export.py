"""ONNX export: BatchNorm folding, one file per network with its config in the metadata, and
ONNX Runtime matching PyTorch FP32 within 1e-4 (max abs) on random and real-looking inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from reenact.cli import main
from reenact.config import model_config
from reenact.errors import WeightsError
from reenact.inference.backend import create_backend
from reenact.inference.export import OPSET, fold_batchnorm
from reenact.inference.metadata import KEY_CONFIG, KEY_NETWORK, KEY_PREPROCESS, KEY_VARIANT, KEY_WEIGHTS_SHA
from reenact.inference.samples import sample_inputs
from reenact.models import build_omega, build_phi
from reenact.weights_io import sha256_file

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

TOL = 1e-4  # max absolute difference, ONNX Runtime vs PyTorch FP32 (issue 4)

torch.set_num_threads(2)


def _random_inputs(cfg, seed: int = 1):
    rng = np.random.default_rng(seed)
    from reenact.face.topology import TEMPLATE_256

    if cfg.variant == "guided":
        phi_in = tuple((TEMPLATE_256[None] + rng.normal(0, 4, (1, 68, 2))).astype(np.float32) for _ in range(3))
    else:
        phi_in = tuple(rng.uniform(-1, 1, (1, 1, 256, 256)).astype(np.float32) for _ in range(2))
    omega_in = rng.uniform(-1, 1, (1, cfg.omega_in_channels, 256, 256)).astype(np.float32)
    return phi_in, omega_in


# ----------------------------------------------------------------------------- BatchNorm folding


@pytest.mark.parametrize("variant,upsample", [("guided", "convT"), ("paper", "convT"), ("guided", "resize")])
def test_folding_batchnorm_keeps_omega_outputs(variant, upsample):
    import backend_fixtures

    cfg = model_config(variant, "lite", base_width=4, upsample=upsample)
    net = build_omega(cfg)
    backend_fixtures._randomise_batchnorm(net, 3)
    net.eval()
    folded, n = fold_batchnorm(net)
    assert n == sum(isinstance(m, nn.BatchNorm2d) for m in net.modules())  # every BN follows a conv
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    x = torch.rand(2, cfg.omega_in_channels, 256, 256) * 2 - 1
    with torch.no_grad():
        assert (folded(x) - net(x)).abs().max().item() <= TOL
    assert any(isinstance(m, nn.BatchNorm2d) for m in net.modules()), "the original must be left untouched"


def test_folding_batchnorm_keeps_paper_phi_outputs():
    """Paper Φ has Conv2d→BN (encoders) and ConvTranspose2d→BN (decoder) pairs."""
    import backend_fixtures

    cfg = model_config("paper", "lite", phi_width=4)
    net = build_phi(cfg)
    backend_fixtures._randomise_batchnorm(net, 5)
    net.eval()
    folded, n = fold_batchnorm(net)
    assert n > 0 and not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    a, b = (torch.rand(1, 1, 256, 256) * 2 - 1 for _ in range(2))
    with torch.no_grad():
        assert (folded(a, b) - net(a, b)).abs().max().item() <= TOL


def test_folding_grouped_transposed_conv():
    conv = nn.ConvTranspose2d(4, 6, 3, 2, 1, groups=2, bias=True)
    bn = nn.BatchNorm2d(6)
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    bn.weight.data.uniform_(0.5, 1.5)
    seq = nn.Sequential(conv, bn).eval()
    folded, n = fold_batchnorm(seq)
    x = torch.randn(1, 4, 8, 8)
    with torch.no_grad():
        assert n == 1 and (folded(x) - seq(x)).abs().max().item() <= 1e-5


# ----------------------------------------------------------------------------- exported files


@pytest.mark.parametrize("variant", ["guided", "paper"])
def test_export_writes_one_file_per_network_with_metadata(exported, variant):
    folder = exported[variant]
    for name in ("phi", "omega"):
        path = folder / f"{name}.onnx"
        model = onnx.load(str(path), load_external_data=False)
        assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer), "one file"
        assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= OPSET
        meta = {p.key: p.value for p in model.metadata_props}
        assert meta[KEY_NETWORK] == name
        assert meta[KEY_VARIANT] == variant
        assert json.loads(meta[KEY_CONFIG])["variant"] == variant
        assert json.loads(meta[KEY_PREPROCESS])["raster"] == ("polylines" if variant == "guided" else "gaussian")
        assert meta[KEY_WEIGHTS_SHA] == sha256_file(folder / f"{name}.safetensors")
        ops = {n.op_type for n in model.graph.node}
        assert "BatchNormalization" not in ops, "BatchNorm must be folded before export"
        assert [i.dim_value for i in model.graph.input[0].type.tensor_type.shape.dim][0] == 1  # batch 1


@pytest.mark.parametrize("variant", ["guided", "paper"])
def test_onnx_runtime_matches_torch_fp32(exported, variant, real_face):
    onnx_b = create_backend("onnx", exported[variant])
    torch_b = create_backend("torch", exported[variant], device="cpu")
    cfg = onnx_b.cfg
    cases = [_random_inputs(cfg)]
    cases += sample_inputs(cfg, 2)  # synthetic expressions on a synthetic face raster
    if real_face is not None:  # the astronaut's real crop and landmarks
        cases += sample_inputs(cfg, 2, target_crop=real_face[0], target_points=real_face[1])
    for phi_in, omega_in in cases:
        j_onnx, j_torch = onnx_b.phi(*phi_in), torch_b.phi(*phi_in)
        assert j_onnx.shape == j_torch.shape
        assert np.abs(j_onnx - j_torch).max() <= TOL, "Φ"
        y_onnx, y_torch = onnx_b.omega(omega_in), torch_b.omega(omega_in)
        assert y_onnx.shape == (1, cfg.omega_out_channels, 256, 256)
        assert np.abs(y_onnx - y_torch).max() <= TOL, "Ω"


def test_export_into_another_folder_copies_the_config(exported, tmp_path):
    """--out elsewhere: the folder is complete for the onnx backend (only Φ re-exported: cheap)."""
    from reenact.inference.export import export_onnx

    export_onnx(exported["guided"], tmp_path, networks=("phi",))
    assert (tmp_path / "config.json").is_file() and (tmp_path / "phi.onnx").is_file()


def test_export_without_weights_is_a_clear_error(tmp_path, capsys):
    assert main(["export", "--weights", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no trained weights" in err and "Traceback" not in err


# ----------------------------------------------------------------------------- metadata checks on load


def _rewrite_meta(path, **changes):
    model = onnx.load(str(path))
    meta = {p.key: p.value for p in model.metadata_props}
    meta.update(changes)
    del model.metadata_props[:]
    for k, v in meta.items():
        e = model.metadata_props.add()
        e.key, e.value = k, v
    onnx.save(model, str(path))


def _copy_folder(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_onnx_with_another_variant_is_refused(exported, tmp_path):
    folder = _copy_folder(exported["guided"], tmp_path / "w")
    paper_cfg = model_config("paper", "lite")
    _rewrite_meta(folder / "omega.onnx", **{KEY_CONFIG: json.dumps(paper_cfg.to_dict()), KEY_VARIANT: "paper"})
    with pytest.raises(WeightsError, match=r"variant='paper' \(config.json has 'guided'\)"):
        create_backend("onnx", folder)


def test_onnx_with_other_preprocessing_is_refused(exported, tmp_path):
    folder = _copy_folder(exported["guided"], tmp_path / "w")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["model"]["preprocess"]["line_width"] = 3.0
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(WeightsError, match="preprocessing line_width=1.5"):
        create_backend("onnx", folder, check_weights_hash=False)


def test_stale_onnx_after_retraining_is_refused(exported, tmp_path, weights_factory):
    folder = _copy_folder(exported["guided"], tmp_path / "w")
    other = weights_factory("guided", seed=7)
    (folder / "omega.safetensors").write_bytes((other / "omega.safetensors").read_bytes())
    with pytest.raises(WeightsError, match="other weights"):
        create_backend("onnx", folder)


def test_missing_onnx_says_to_export(weights_factory):
    from reenact.errors import BackendError

    folder = weights_factory("guided", seed=3)
    with pytest.raises(BackendError, match="reenact export"):
        create_backend("onnx", folder)
