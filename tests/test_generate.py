"""The one crop-generation path: `reenact live` (Reenactor) and `reenact eval` make byte-identical crops."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from _face_fixtures import tiny_bank  # noqa: F401

pytest.importorskip("torch")


def _reenactor(folder, neutral, mouth_interior="driver"):
    from reenact.inference.backend import create_backend
    from reenact.inference.reenactor import Reenactor, ReenactorOptions

    return Reenactor(create_backend("torch", folder, device="cpu", threads=2), None, neutral=neutral,
                     options=ReenactorOptions(smoothing=False, mouth_interior=mouth_interior))


@pytest.fixture(scope="module")
def case(tiny_bank, astronaut, astronaut_points):  # noqa: F811
    """A target prepared by the live path (full astronaut photo) and a bank holding that very crop plus
    a driver from another 'person' of the tiny bank: (bank, pair, target landmarks)."""
    from reenact.data.datasets import FaceBank, FaceRecord, Pair
    from reenact.face.landmarks import FaceLandmarks
    from reenact.inference.reenactor import prepare_target

    tg = prepare_target(astronaut, None, type("C", (), {"variant": "guided"})(),
                        FaceLandmarks(points=astronaut_points, found=True, n_faces=1))
    a = [i for i, r in enumerate(tiny_bank.records) if r.identity == "video:b"]
    src, neutral, truth = a[4], a[0], a[3]  # the mirrored astronaut talking: mouth open at frames 3-4
    recs = [FaceRecord("video", "video:t", "t.mp4", "frame", 0, "t")] + [tiny_bank.records[k] for k in (src, neutral, truth)]
    crops = np.stack([tg.crop] + [tiny_bank.crops[k] for k in (src, neutral, truth)])
    points = np.stack([tg.crop_points] + [tiny_bank.points[k] for k in (src, neutral, truth)]).astype(np.float32)
    bank = FaceBank(recs, crops, points, np.ones(4, np.float32), {})
    return bank, Pair(target=0, source=1, source_neutral=2, truth=3, kind="video"), FaceLandmarks(points=astronaut_points, found=True, n_faces=1)


@pytest.mark.parametrize("variant", ["guided", "paper"])
def test_reenactor_and_eval_make_the_same_crop(variant, case, weights_factory, astronaut):
    from reenact.eval.evaluate import load_model

    bank, p, target_lm = case
    folder = weights_factory(variant)
    model = load_model(folder, "default" if variant == "guided" else "paper", backend="torch", threads=2)
    r = _reenactor(folder, bank.points[p.source_neutral])
    r.add_target(astronaut, target_lm)
    assert np.array_equal(r.target.crop, bank.crops[p.target])

    live, jgen = r.crop_output(bank.points[p.source], driver=bank.crops[p.source])  # `--mouth-interior driver`, both
    ev = model.generate(bank, p)
    assert live.shape == (256, 256, 3) and live.dtype == np.uint8
    assert np.array_equal(live, ev)
    assert np.abs(live.astype(int) - bank.crops[p.target]).mean() > 1.0  # the networks changed the face
    assert (jgen is not None) == (variant == "guided")

    # the oracle: the real J_o in place of Φ
    live_o, jgen_o = r.crop_output(bank.points[p.source], jgen=bank.points[p.truth], driver=bank.crops[p.source])
    ev_o = model.generate(bank, p, jgen_override=bank.points[p.truth])
    assert np.array_equal(live_o, ev_o)
    assert not np.array_equal(live_o, live)  # the oracle's J_gen is not Φ's
    if variant == "guided":
        assert np.array_equal(jgen_o, bank.points[p.truth])


def test_pix2pix_crop_is_the_same_in_eval_and_the_reenactor(case, weights_factory, astronaut, tmp_path):
    from reenact.eval.evaluate import load_model

    bank, p, target_lm = case
    folder = shutil.copytree(weights_factory("paper"), tmp_path / "p2p")
    raw = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**raw, "baseline": "pix2pix"}))
    model = load_model(folder, "pix2pix", threads=2)
    assert model.pix2pix and model.phi is None
    r = _reenactor(folder, bank.points[p.source_neutral])
    r.add_target(astronaut, target_lm)

    live, _ = r.crop_output(bank.points[p.source], pix2pix=True)
    assert np.array_equal(live, model.generate(bank, p))
    assert not np.array_equal(live, r.crop_output(bank.points[p.source])[0])  # Φ's image is not the source's


@pytest.mark.parametrize("variant", ["guided", "paper"])
def test_live_frame_reports_every_stage_time(variant, case, weights_factory, astronaut):
    from reenact.face.align import align_points
    from reenact.inference.reenactor import STAGES

    bank, p, target_lm = case
    r = _reenactor(weights_factory(variant), bank.points[p.source_neutral])
    r.add_target(astronaut, target_lm)
    L_s = bank.points[p.source]
    out = r.from_landmarks(align_points(L_s).to_image(L_s), 0.0)
    assert out.shape == astronaut.shape and not np.array_equal(out, astronaut)
    expected = set(STAGES) - ({"warp"} if variant == "paper" else set())
    assert set(r.timings) == expected and all(v >= 0 for v in r.timings.values())


def test_pix2pix_needs_the_paper_variant():
    from reenact.config import model_config
    from reenact.face.topology import TEMPLATE_256
    from reenact.generate import generate_crop

    crop = np.zeros((256, 256, 3), np.uint8)
    with pytest.raises(ValueError, match="paper variant"):
        generate_crop(model_config("guided", "lite"), None, lambda x: x, crop, TEMPLATE_256, TEMPLATE_256,
                      TEMPLATE_256, pix2pix=True)


def test_eval_scores_the_mouth_interior_live_is_told_to_use(case, weights_factory, astronaut):
    """`reenact eval --mouth-interior`: `driver` lays the driver's interior in J_gen's mouth as live
    does; `generated` leaves Ω's, as `reenact live --mouth-interior generated` (and says which it ran)."""
    from reenact.eval.evaluate import load_model

    bank, p, target_lm = case
    folder = weights_factory("guided")
    outs = {}
    for interior in ("driver", "generated"):
        model = load_model(folder, "default", backend="torch", threads=2, mouth_interior=interior)
        assert f"mouth interior: {interior}" in model.description
        r = _reenactor(folder, bank.points[p.source_neutral], mouth_interior=interior)
        r.add_target(astronaut, target_lm)
        outs[interior] = model.generate(bank, p)
        live, _ = r.crop_output(bank.points[p.source], driver=bank.crops[p.source])
        assert np.array_equal(live, outs[interior])
    assert not np.array_equal(outs["driver"], outs["generated"])  # the source's mouth is open: its interior shows


def test_the_guided_residual_acts_on_the_face_only(astronaut, astronaut_points):
    """Ω's mask is kept to J_gen's jaw-and-brow hull grown by 6 px (feathered): full well inside the
    face, none at the crop's corners and the hairline, whatever Ω itself returned."""
    from reenact.config import model_config
    from reenact.face.align import align_points
    from reenact.generate import RESIDUAL_REGION, generate_crop, residual_region

    cfg = model_config("guided", "lite")
    al = align_points(astronaut_points)
    P_t, L_t = al.crop(astronaut), al.to_crop(astronaut_points).astype(np.float32)
    ones = np.ones((1, 4, 256, 256), np.float32)  # an Ω that paints everywhere, at full mask
    g = generate_crop(cfg, lambda *a: a[2], lambda x: ones.copy(), P_t, L_t, L_t, L_t)
    region = residual_region(g.jgen)
    assert np.array_equal(g.out[3], region)
    assert np.array_equal(g.out[:3], ones[0, :3])  # the residual itself is Ω's
    nose = np.round(L_t[30]).astype(int)
    assert region[nose[1], nose[0]] == pytest.approx(1.0)
    brow_top = int(np.floor(L_t[17:27, 1].min()))
    grow = RESIDUAL_REGION[1]
    forehead = brow_top - int(grow) - 20  # 20 px above the grown hull: hair or forehead
    assert region[:max(forehead, 0) + 1].max() < 0.01
    assert region[0, 0] == 0 and region[-1, -1] < 0.01
