"""`reenact eval`'s expressive sets (issue 17) on real components, and its typed results (issue 20).

The expressive sets run the shipped default weights on ONNX Runtime through the live per-frame
path, on real London photos and the real CREMA-D clips (cut to a few frames), re-detected by real
dlib; they skip with a note when the data is absent.
"""

from __future__ import annotations

import copy
import csv
import json
import math

import cv2
import numpy as np
import pytest

from reenact.cli import main
from reenact.eval import expressive as ex
from reenact.eval import report
from reenact.eval.results import EvalResults, ExpressiveScores, PairScores, SetResult
from reenact.paths import WEIGHTS_DIR

FRAMES = 30  # per expressive driver: a second of it


def _json_text(d: dict) -> str:
    return json.dumps(report._finite_or_none(d), indent=2, allow_nan=False, ensure_ascii=False)


# --------------------------------------------------------------------------- typed results


def test_the_model_cards_eval_reads_and_writes_back_to_the_same_json() -> None:
    """The shipped card.json's eval (written before results were typed) round-trips exactly."""
    card = json.loads((WEIGHTS_DIR / "card.json").read_text())
    old = card["eval"]
    typed = EvalResults.from_dict(old)
    assert isinstance(typed.sets["photo"].methods["guided"], PairScores)
    assert typed.sets["video"].methods["guided"].driver_following == old["sets"]["video"]["methods"]["guided"]["driver_following"]
    assert math.isnan(typed.sets["video"].methods["copy"].driver_following)  # null: measured, undefined
    assert typed.sets["photo"].methods["guided"].driver_following is None  # absent: not a photo measure
    assert json.loads(_json_text(typed.to_dict())) == old  # the card stores its keys sorted: compare as JSON
    # and the markdown drawn from the typed form is the one drawn from the dict
    assert report.markdown_table(typed) == report.markdown_table(old)


def test_typed_results_with_expressive_sets_round_trip_through_write_json(tmp_path) -> None:
    scores = ExpressiveScores(brow_following=0.7, eye_following=0.6, mouth_open_following=0.9, mouth_width_following=0.5,
                              blink_depth=0.8, brow_hold_retention=math.nan, teeth_ratio=0.0, identity_distance=0.2,
                              jitter_ratio=0.9, face_found=1.0)
    driver = ExpressiveScores(blink_depth=0.4, face_found=1.0, extra={"jitter": 3.1, "teeth_frames": 12})
    res = EvalResults("test", "guided", {
        "photo": SetResult("photo", 2, {"copy": PairScores(0.7, 23.0, 0.6, 21.0, 8.0, 0.3, 0, teeth_ratio=0.0, teeth_pairs=1),
                                        "guided": PairScores(0.8, 25.0, 0.7, 23.0, 3.0, 0.25, 0, teeth_ratio=0.1, teeth_pairs=1)}),
        "cremad": SetResult("cremad", 1, {"warp": scores, "guided": scores}, driver=driver,
                            extra={"drivers": ["cremad"], "targets": ["london:001"], "frames": [30]}),
    }, {"default": "w"}, {"default": "onnx"}, {"paper": "no --paper-weights given"}, None, 0, "note", ())
    path = report.write_json(tmp_path / "eval.json", res)
    back = report.read_json(path)
    assert back["sets"]["cremad"]["n_cases"] == 1 and back["sets"]["cremad"]["methods"]["guided"]["brow_hold_retention"] is None
    assert back["sets"]["cremad"]["driver"]["teeth_frames"] == 12
    again = EvalResults.from_dict(back)
    assert _json_text(again.to_dict()) == _json_text(res.to_dict())
    assert again.sets["cremad"].driver.extra == {"jitter": 3.1, "teeth_frames": 12}
    md = report.markdown_table(again)
    assert "### cremad: CREMA-D expressive clips through the live path (n = 1 cases)" in md
    assert "| *driver (reference)* | – | – | – | – | 0.40 |" in md
    assert "| **guided** (default) | **0.70** | **0.60** | **0.90** |" in md


def test_the_validator_knows_the_expressive_sets() -> None:
    res = EvalResults("test", "guided", {"scripted": SetResult("scripted", 1, {"guided": ExpressiveScores(face_found=1.0)})})
    d = res.to_dict()
    assert report.problems(d) == []
    bad = copy.deepcopy(d)
    bad["sets"]["scripted"]["methods"]["guided"]["face_found"] = 2.0
    assert any("face_found = 2.0 is outside" in p for p in report.problems(bad))
    del bad["sets"]["scripted"]["n_cases"]
    assert any("scripted.n_cases must be an int" in p for p in report.problems(bad))


# --------------------------------------------------------------------------- pieces


def test_the_warp_backend_on_the_generation_path_is_the_plain_warp(astronaut, astronaut_points) -> None:
    """J_gen = L_t + L_s − J_s and no residual: the crop equals warp_crop exactly."""
    from reenact.config import model_config
    from reenact.eval.expressive_sets import WarpBackend
    from reenact.face.align import align_points
    from reenact.face.topology import TEMPLATE_256
    from reenact.face.warp import warp_crop
    from reenact.generate import generate_crop

    al = align_points(astronaut_points)
    P_t, L_t = al.crop(astronaut), al.to_crop(astronaut_points).astype(np.float32)
    L_s = ex.move(TEMPLATE_256, "smile", 1.0).astype(np.float32)
    be = WarpBackend(model_config("paper", "lite"))  # a paper default still gets the guided warp
    assert be.cfg.variant == "guided"
    got = generate_crop(be.cfg, be.phi, be.omega, P_t, L_t, L_s, TEMPLATE_256).crop()
    want = warp_crop(P_t, L_t, L_t + L_s - TEMPLATE_256)
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1  # to_net/from_net rounding
    assert np.abs(got.astype(int) - P_t.astype(int)).max() > 20  # and it did move the mouth


def test_landmark_jitter_has_the_known_answer() -> None:
    """Point 57 shaking by ±a px on a still face: second differences of 4a, one point of 68."""
    base = np.repeat(_template()[None], 20, 0)
    a = 0.5
    shaken = base.copy()
    shaken[:, 57, 0] += a * (-1.0) ** np.arange(20)
    iod = float(np.linalg.norm(base[0, 42:48].mean(0) - base[0, 36:42].mean(0)))  # normalise()'s eye-centre unit
    assert ex.landmark_jitter(base) == 0.0
    assert ex.landmark_jitter(shaken) == pytest.approx(1000 * 4 * a / iod / np.sqrt(68), rel=1e-6)
    shaken[5] = np.nan  # a frame without a face is left out, not a jump
    assert np.isfinite(ex.landmark_jitter(shaken))
    assert math.isnan(ex.landmark_jitter(base[:2]))


def _template() -> np.ndarray:
    from reenact.face.topology import TEMPLATE_256

    return TEMPLATE_256.astype(np.float64)


def test_frame_grid_lays_out_driver_and_methods() -> None:
    from reenact.eval.plots import frame_grid

    frames = [np.full((40, 30, 3), v, np.uint8) for v in (0, 100)]
    g = frame_grid(["a", "b"], [("driver", frames), ("warp", frames), ("guided", frames)], cell=64, gap=4)
    assert g.shape == (2 * 64 + 4, 3 * 64 + 2 * 4, 3) and g.dtype == np.uint8
    assert (g[64:68] == 255).all()  # the white gap between rows
    with pytest.raises(ValueError, match="guided"):
        frame_grid(["a", "b"], [("driver", frames), ("guided", frames[:1])])


# --------------------------------------------------------------------------- skipping


def test_expressive_sets_skip_with_a_note_when_their_data_is_absent(video_set, tmp_path, capsys) -> None:
    """A folder with no cremad/ and no London people of the split: the sets are left out with a
    one-line note; asked for alone, that is a clear error (exit 2), never a traceback."""
    root = video_set
    out = tmp_path / "out"
    rc = main(["eval", "--weights", str(WEIGHTS_DIR), "--backend", "onnx", "--data", str(root), "--split", "test",
               "--sets", "video,cremad,scripted", "--max-pairs", "4", "--out", str(out), "--cache-dir", str(tmp_path / "c"),
               "--no-progress"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    res = json.loads((out / "eval.json").read_text())
    assert list(res["sets"]) == ["video"]
    assert "no CREMA-D clips" in res["skipped"]["cremad"] and "London" in res["skipped"]["scripted"]
    md = (out / "eval.md").read_text()
    assert sum("not evaluated" in line for line in md.splitlines() if "cremad" in line or "scripted" in line) == 2
    assert "Traceback" not in captured.err
    rc = main(["eval", "--weights", str(WEIGHTS_DIR), "--backend", "onnx", "--data", str(root), "--sets", "cremad",
               "--cache-dir", str(tmp_path / "c"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "nothing to evaluate" in err and "no CREMA-D clips" in err and "Traceback" not in err
    rc = main(["eval", "--weights", str(WEIGHTS_DIR), "--data", str(root), "--sets", "photo,audio"])
    err = capsys.readouterr().err
    assert rc == 2 and "unknown set(s) audio" in err


# --------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def small_data(shared_data, tmp_path_factory):
    """Ten London people (neutral and smiling) and the CREMA-D clips, linked into one data folder."""
    root = tmp_path_factory.mktemp("expressive_data")
    for sub in ("neutral", "smiling"):
        (root / sub).mkdir()
        for n in range(1, 11):
            src = shared_data / "london" / sub / f"{n:03d}.jpg"
            if src.is_file():
                (root / sub / src.name).symlink_to(src)
    if not (shared_data / "cremad").is_dir():
        pytest.skip("no cremad/ in the shared data")
    (root / "cremad").symlink_to(shared_data / "cremad")
    return root


@pytest.fixture(scope="module")
def live_run(small_data, tmp_path_factory):
    """The photo set and both expressive sets on the test split, shipped weights on ONNX Runtime,
    each expressive driver cut to FRAMES frames; outputs written."""
    from reenact.eval.evaluate import run_eval, write_outputs

    tmp = tmp_path_factory.mktemp("live_eval")
    run = run_eval(WEIGHTS_DIR, small_data, "test", cache_dir=tmp / "cache", progress=False, backend="onnx",
                   sets=("photo", "cremad", "scripted"), expressive_cases=1, expressive_frames=FRAMES)
    paths = write_outputs(run, tmp / "out", WEIGHTS_DIR)
    return run, paths, tmp / "out"


def test_expressive_sets_run_the_live_path_on_real_faces(live_run) -> None:
    run, _, _ = live_run
    res = run.results
    assert set(res.sets) == {"photo", "cremad", "scripted"}
    for name in ("cremad", "scripted"):
        body = res.sets[name]
        assert body.n == 1 and list(body.methods) == ["warp", "guided"]
        assert body.extra["frames"] == [FRAMES]
        for method, s in body.methods.items():
            assert s.face_found == 1.0, (name, method)  # the output is a face dlib finds on every frame
            assert s.identity_distance < 0.45, (name, method)  # and it is the target person (dlib: < 0.6)
            assert s.mouth_open_following > 0.5, (name, method)  # the mouth follows the talking driver
            assert 0.0 < s.jitter_ratio < 3.0
        assert body.driver.face_found == 1.0 and body.driver.extra["jitter"] > 0
    # the scripted driver talks from a closed-lip photo: it never shows teeth, so no teeth figure
    assert math.isnan(res.sets["scripted"].methods["guided"].teeth_ratio)
    assert res.sets["scripted"].extra["drivers"][0].startswith("scripted:london:")
    # the scripted driver is another person of the test split than its target
    target = res.sets["scripted"].extra["targets"][0]
    assert target != res.sets["scripted"].extra["drivers"][0].removeprefix("scripted:")
    assert run.bank.split[target] == "test"


def test_expressive_outputs_cases_csv_and_the_grid(live_run) -> None:
    run, paths, out = live_run
    names = {p.name for p in paths}
    assert {"eval.json", "eval.md", "cases.csv", "grid_cremad.png", "grid_scripted.png"} <= names
    rows = list(csv.DictReader((out / "cases.csv").open()))
    assert len(rows) == 2 * 2  # 2 sets x 2 methods x 1 case
    guided = next(r for r in rows if r["set"] == "cremad" and r["method"] == "guided")
    assert float(guided["mouth_open_following"]) == pytest.approx(run.results.sets["cremad"].methods["guided"].mouth_open_following, abs=1e-5)
    grid = cv2.imread(str(out / "grid_cremad.png"))
    labels, driver_cells, outputs = run.live_grids["cremad"]
    assert grid.shape[1] == 3 * 192 + 2 * 4 and grid.shape[0] == len(labels) * (192 + 4) - 4
    assert list(outputs) == ["warp", "guided"] and len(driver_cells) == len(labels) >= 3
    md = (out / "eval.md").read_text()
    assert "### scripted: scripted held expressions through the live path (n = 1 cases)" in md
    assert report.read_json(out / "eval.json")["sets"]["cremad"]["n_cases"] == 1
    # the file eval wrote reads back into the typed form and writes out to the same text
    text = (out / "eval.json").read_text()
    assert _json_text(EvalResults.from_dict(json.loads(text)).to_dict()) + "\n" == text


def test_photo_teeth_agreement_against_the_real_smiling_photo(live_run) -> None:
    """The real smiling face as the output agrees with itself (1.0); the neutral target (copy) shows
    almost none of the teeth the real smile shows."""
    from reenact.data.datasets import make_pairs
    from reenact.eval.evaluate import _Scorer, score_pairs

    run, _, _ = live_run
    bank = run.bank
    pairs = [p for p in make_pairs(bank, None, neutral_share=0.0) if p.kind == "photo" and p.source != p.source_neutral][:12]
    scorer = _Scorer()
    truth = score_pairs(bank, pairs, lambda b, p: b.crops[p.truth], scorer, video=False, teeth=True)
    copy_ = score_pairs(bank, pairs, lambda b, p: b.crops[p.target], scorer, video=False, teeth=True)
    assert truth.teeth_pairs >= 3  # people 002-010 include several smiles with teeth
    assert truth.teeth_ratio == pytest.approx(1.0)
    assert copy_.teeth_ratio < 0.2
    assert run.results.sets["photo"].methods["guided"].teeth_pairs is not None
