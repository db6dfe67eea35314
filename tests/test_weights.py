"""The default weights that ship in the package: they load, match their card and their ONNX files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from reenact.paths import WEIGHTS_DIR

FILES = ("config.json", "phi.safetensors", "omega.safetensors", "phi.onnx", "omega.onnx", "card.json", "MODEL_CARD.md")


def test_the_default_weights_ship_complete_and_small():
    for name in FILES:
        assert (WEIGHTS_DIR / name).is_file(), f"reenact/weights/{name} is missing"
    size = sum((WEIGHTS_DIR / n).stat().st_size for n in FILES)
    assert size <= 40 * 2**20, f"shipped weights are {size / 2**20:.1f} MB (limit 40 MB)"


def test_the_default_weights_load():
    from reenact.weights_io import read_config

    cfg = read_config(WEIGHTS_DIR)
    card = json.loads((WEIGHTS_DIR / "card.json").read_text())
    assert (cfg.variant, cfg.preset) == (card["variant"], card["preset"])
    from reenact.inference.backend import create_backend

    be = create_backend("onnx", WEIGHTS_DIR)
    assert be.cfg == cfg


def test_shipped_onnx_matches_shipped_safetensors():
    torch = pytest.importorskip("torch")
    import onnxruntime as ort

    from reenact.inference.samples import sample_inputs
    from reenact.weights_io import load_networks

    cfg, nets = load_networks(WEIGHTS_DIR)
    sess = {n: ort.InferenceSession(str(WEIGHTS_DIR / f"{n}.onnx"), providers=["CPUExecutionProvider"]) for n in ("phi", "omega")}
    for phi_args, omega_x in sample_inputs(cfg, n=3):
        for name, args in (("phi", phi_args), ("omega", (omega_x,))):
            feeds = {i.name: a[None] if a.ndim < len(i.shape) else a for i, a in zip(sess[name].get_inputs(), args, strict=True)}
            got = sess[name].run(None, feeds)[0]
            with torch.no_grad():
                ref = nets[name](*[torch.as_tensor(v) for v in feeds.values()]).numpy()
            assert np.abs(got - ref).max() <= 1e-4, name


@pytest.mark.slow
def test_expression_error_on_four_test_pairs_matches_the_card(shared_data, tmp_path):
    from reenact.eval.smoke import four_pair_expression_error

    card = json.loads((WEIGHTS_DIR / "card.json").read_text())
    got = four_pair_expression_error(WEIGHTS_DIR, shared_data, cache_dir=tmp_path)
    want = card["four_pair_expression_error"]
    assert abs(got - want) <= 0.1 * want, (got, want)
