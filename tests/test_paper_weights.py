"""The paper's own system ships beside the default (issue 21): `--weights paper` finds it in the
package, a wrong name is refused in one line, and the shipped files load and run on ONNX Runtime."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from reenact.cli import main
from reenact.errors import WeightsError
from reenact.paths import SHIPPED_WEIGHTS, WEIGHTS_DIR, resolve_weights

PAPER_DIR = WEIGHTS_DIR / "paper"
FILES = ("config.json", "phi.safetensors", "omega.safetensors", "phi.onnx", "omega.onnx", "metrics_phi.jsonl",
         "metrics_omega.jsonl")


def test_shipped_names_resolve_to_the_package_folders(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "paper").mkdir()  # a folder named like a shipped name does not change what the name means
    assert resolve_weights(None) == WEIGHTS_DIR
    assert resolve_weights("default") == WEIGHTS_DIR
    assert resolve_weights("paper") == PAPER_DIR
    assert resolve_weights("./paper") == Path("./paper")  # ... but written as a path it is that folder
    assert resolve_weights(str(tmp_path / "runs" / "x")) == tmp_path / "runs" / "x"  # paths are left to the loaders


def test_an_unknown_name_is_refused_naming_the_choices(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(WeightsError) as exc:
        resolve_weights("papr")
    assert "'papr'" in exc.value.message and ", ".join(SHIPPED_WEIGHTS) in exc.value.hint


@pytest.mark.parametrize("argv", [
    ["live", "--weights", "papr", "--target", "face.png"],
    ["eval", "--paper-weights", "papr"],
    ["bench", "--weights", "papr"],
])
def test_the_cli_refuses_a_bad_name_in_one_line(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "no shipped weights named 'papr'" in err and "default, paper" in err and "Traceback" not in err


def test_the_paper_weights_ship_complete_and_small():
    for name in FILES:
        assert (PAPER_DIR / name).is_file(), f"reenact/weights/paper/{name} is missing"
    size = sum(p.stat().st_size for p in PAPER_DIR.iterdir() if p.is_file())
    assert size <= 25 * 2**20, f"the shipped paper weights are {size / 2**20:.1f} MB (limit 25 MB)"
    from reenact.weights_io import read_config

    cfg = read_config(PAPER_DIR)
    assert (cfg.variant, cfg.preset) == ("paper", "lite")
    assert "baseline" not in json.loads((PAPER_DIR / "config.json").read_text())  # the paper's system, not pix2pix


def test_the_paper_weights_ran_the_papers_schedule():
    """The training records that ship with the weights: the paper's optimiser settings, λ and μ,
    Ω trained on Φ's output for the paper's 120 epochs."""
    phi = json.loads((PAPER_DIR / "train_phi.json").read_text())
    omega = json.loads((PAPER_DIR / "train_omega.json").read_text())
    for rec in (phi, omega):
        assert (rec["batch_size"], rec["lr_g"], rec["lr_d"], rec["betas"]) == (8, 2e-4, 1e-4, [0.5, 0.999])
        assert (rec["lambdas"], rec["mus"], rec["split_seed"]) == ([0.1, 10.0, 100.0], [1.0, 100.0], 0)
    assert omega["omega_landmarks"] == "phi" and not omega["pix2pix"] and not omega["extra_losses"]
    last = [json.loads(line) for line in (PAPER_DIR / "metrics_omega.jsonl").read_text().splitlines() if line.strip()][-1]
    assert last["step"] == omega["steps"] and last["epoch"] == pytest.approx(120, abs=0.5)


def test_the_paper_onnx_matches_the_paper_safetensors():
    """The ONNX files hold float16 weights (scripts/ship_paper.py): they still compute what the
    safetensors compute in torch, within the rounding of the folded BatchNorm weights."""
    torch = pytest.importorskip("torch")
    import onnxruntime as ort

    from reenact.inference.samples import sample_inputs
    from reenact.weights_io import load_networks

    cfg, nets = load_networks(PAPER_DIR)
    sess = {n: ort.InferenceSession(str(PAPER_DIR / f"{n}.onnx"), providers=["CPUExecutionProvider"]) for n in nets}
    for phi_args, omega_x in sample_inputs(cfg, n=2):
        for name, args in (("phi", phi_args), ("omega", (omega_x,))):
            feeds = {i.name: a[None] if a.ndim < len(i.shape) else a for i, a in zip(sess[name].get_inputs(), args, strict=True)}
            got = sess[name].run(None, feeds)[0]
            with torch.no_grad():
                ref = nets[name](*[torch.as_tensor(v) for v in feeds.values()]).numpy()
            assert np.abs(got - ref).max() <= 5e-3, name  # outputs in [-1, 1]; 5e-3 is 0.6 of a grey level


def test_the_paper_weights_run_one_frame_through_the_onnx_backend(astronaut, astronaut_points):
    """`reenact live --weights paper` on the ONNX path: one driven frame of the astronaut. The frame
    keeps the target's size, changes only inside the face region Ω paints, and is the frame the
    torch backend makes from the safetensors (float16 ONNX weights: within a few grey levels)."""
    from reenact.face.dlib_detector import DlibDetector
    from reenact.inference.backend import create_backend
    from reenact.inference.reenactor import Reenactor, ReenactorOptions
    from reenact.synthetic import open_mouth

    frames = {}
    for backend in ("onnx", "torch"):
        if backend == "torch":
            pytest.importorskip("torch")
        be = create_backend(backend, resolve_weights("paper"))
        assert be.cfg.variant == "paper" and be.name == backend
        r = Reenactor(be, DlibDetector(), options=ReenactorOptions(smoothing=False))
        tg = r.add_target(astronaut)
        frames[backend] = r.from_landmarks(open_mouth(astronaut_points, 0.3), 0.0)
    out = frames["onnx"]
    assert out.shape == astronaut.shape and out.dtype == np.uint8
    x0, y0, x1, y1 = tg.roi
    outside = np.ones(out.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(out[outside], astronaut[outside])  # the paste never leaves the face region
    changed = np.abs(out[y0:y1, x0:x1].astype(np.int16) - astronaut[y0:y1, x0:x1]).mean()
    assert changed > 1.0, changed  # Ω's face replaced the photo's there
    diff = np.abs(out.astype(np.int16) - frames["torch"])
    assert diff.max() <= 8 and diff.mean() < 0.2, (diff.max(), diff.mean())


def test_the_shipped_paper_phi_carries_the_sources_expression():
    """Φ must move the target's key points toward the source's expression, not copy the target (the
    first full-schedule Φ, on 1.5-px dots, did: its J_gen did not change with the source at all)."""
    import onnxruntime as ort

    from reenact.eval.expressive import move
    from reenact.face.topology import TEMPLATE_256
    from reenact.inputs import raster
    from reenact.weights_io import read_config

    cfg = read_config(PAPER_DIR)
    assert cfg.preprocess.raster_sigma == 5.0  # what the model card and README describe
    phi = ort.InferenceSession(str(PAPER_DIR / "phi.onnx"), providers=["CPUExecutionProvider"])
    names = [i.name for i in phi.get_inputs()]
    neutral = np.asarray(TEMPLATE_256, np.float64)
    L_t = raster(cfg, neutral)[None]

    def jgen(source: np.ndarray) -> np.ndarray:
        return phi.run(None, dict(zip(names, (raster(cfg, source)[None], L_t), strict=True)))[0][0, 0]

    smile = move(neutral, "smile", 1.0)  # the expression the London pairs teach
    still, smiling = jgen(neutral), jgen(smile)
    mouth = np.zeros_like(still, bool)
    (x0, y0), (x1, y1) = neutral[48:68].min(0).astype(int) - 12, neutral[48:68].max(0).astype(int) + 24
    mouth[y0:y1, x0:x1] = True
    change = np.abs(smiling - still)
    truth = np.abs(raster(cfg, smile)[0] - L_t[0, 0])  # how much the key-point image itself changed
    # shipped Φ: 0.58 of the truth's change; the σ 1.5 Φ: exactly 0 (it copied L_t whatever the source)
    assert change[mouth].mean() > 0.2 * truth[mouth].mean()
    assert change[mouth].mean() > 3 * change[~mouth].mean()  # and it is where the mouth moved (7.7x)
