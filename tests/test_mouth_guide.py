"""The mouth-interior guide (issue 17): the driver's interior placed in J_gen's inner lips, and never
a driver pixel when the face is lost or the interior is ``generated``."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from _face_fixtures import shared_data  # noqa: F401

from reenact.eval.expressive import teeth_area
from reenact.face.align import align_points
from reenact.face.mouth import (
    MouthGuide,
    driver_mouth_crop,
    jitter_guide,
    match_colour,
    mouth_guide,
    mouth_skin_mean,
    paste_interior,
    polygon_mask,
    skin_ring,
)
from reenact.synthetic import open_mouth


@pytest.fixture(scope="module")
def faces(astronaut, astronaut_points):
    """(target crop, L_t, driver crop, L_s with the mouth open and white teeth drawn inside, driver frame,
    the driver frame's points): the astronaut as target, a darker astronaut as driver."""
    from reenact.face.warp import image_mesh, warp_image

    al = align_points(astronaut_points)
    target, L_t = al.crop(astronaut), al.to_crop(astronaut_points)
    opened = open_mouth(astronaut_points, 0.35)
    frame = warp_image(cv2.convertScaleAbs(astronaut, alpha=0.7, beta=0), image_mesh(astronaut_points, opened, al.M))
    inner = np.round(opened[60:68]).astype(np.int32)
    teeth = np.zeros(frame.shape[:2], np.uint8)
    cv2.fillPoly(teeth, [inner], 1)
    top = opened[60:68, 1].min()
    h = opened[60:68, 1].max() - top
    teeth[int(top + 0.45 * h):] = 0  # upper teeth: the top half of the opening, white; the rest dark
    frame[(teeth == 0) & (cv2.fillPoly(np.zeros_like(teeth), [inner], 1) == 1)] = (40, 30, 60)
    frame[teeth == 1] = (200, 200, 200)  # grey-white teeth, as a dark driver's look
    dal = align_points(opened)
    return target, L_t, dal.crop(frame), dal.to_crop(opened), frame, opened


def _closed(points: np.ndarray) -> np.ndarray:
    """The inner lips pressed together (upper and lower inner-lip points meet midway)."""
    p = points.copy()
    for a, b in ((61, 67), (62, 66), (63, 65)):
        p[a] = p[b] = (p[a] + p[b]) / 2
    return p


def test_a_closed_mouth_or_no_driver_gives_no_guide(faces):
    target, L_t, driver, L_s, _, _ = faces
    for g in (mouth_guide(driver, _closed(L_s), L_t, target, L_t), mouth_guide(None, L_s, L_s, target, L_t)):
        assert not g.mask.any() and not g.image.any()


def test_the_guide_brings_the_drivers_teeth_into_jgens_mouth(faces):
    target, L_t, driver, L_s, _, _ = faces
    jgen = open_mouth(L_t, 0.3)  # a narrower opening than the driver's
    g = mouth_guide(driver, L_s, jgen, target, L_t)
    inside = polygon_mask(jgen[60:68]) > 0
    assert g.mask.max() == pytest.approx(1.0) and np.array_equal(g.mask > 0, inside)
    assert not g.image[~inside].any()  # nothing of the driver outside J_gen's inner lips
    composite = target.copy()
    composite[g.mask > 0.5] = g.image[g.mask > 0.5]
    assert teeth_area(composite, jgen) > 0.05  # visible teeth, by the evaluation's own measure
    dark = driver.copy()
    dark[driver.min(2) > 150] = (40, 30, 60)  # the same driver without teeth: none in the guide either
    g = mouth_guide(dark, L_s, jgen, target, L_t)
    composite[g.mask > 0.5] = g.image[g.mask > 0.5]
    assert teeth_area(composite, jgen) < 0.01


def _lab(bgr: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.asarray(bgr, np.uint8).reshape(-1, 1, 3), cv2.COLOR_BGR2LAB).reshape(-1, 3).astype(np.float64)


def test_colour_matching_moves_the_drivers_light_toward_the_targets(faces):
    from reenact.face.mouth import LIGHT_SHARE

    target, L_t, driver, L_s, _, _ = faces
    src, dst = mouth_skin_mean(driver, L_s), mouth_skin_mean(target, L_t)
    assert dst[0] - src[0] > 15  # the driver is darker
    gain = (dst[0] / src[0]) ** LIGHT_SHARE
    moved = _lab(match_colour(driver[skin_ring(L_s)], src, dst)).mean(0)
    assert moved[0] == pytest.approx(src[0] * gain, abs=3.0)  # the driver's skin lightened toward the target's
    grey = _lab([[150, 150, 150]])[0]
    teeth = _lab(match_colour(np.array([[150, 150, 150]], np.uint8), src, dst))[0]  # the dark driver's teeth
    assert teeth[0] == pytest.approx(grey[0] * gain, rel=0.05)  # lightened by the same ratio
    assert np.hypot(teeth[1] - 128, teeth[2] - 128) < 3  # grey stays grey


def test_a_warm_lit_drivers_teeth_turn_white_on_a_pale_target_not_blue():
    """A driver under orange light (skin far from grey in b*) onto a pale, grey-lit target: yellowish
    teeth become near-white, and nothing turns to the opposite colour (blue)."""
    src = np.array([170.0, 150.0, 175.0], np.float32)  # warm-lit skin: a* +22, b* +47
    dst = np.array([180.0, 134.0, 136.0], np.float32)  # pale skin: a* +6, b* +8
    yellow_teeth = cv2.cvtColor(np.array([[[185, 132, 160]]], np.uint8), cv2.COLOR_LAB2BGR)
    out = _lab(match_colour(yellow_teeth, src, dst))[0]
    assert np.hypot(out[1] - 128, out[2] - 128) < 8  # near-white (32 before)
    assert out[1] >= 127 and out[2] >= 127  # still on the warm side of grey: no teal, no blue
    red = cv2.cvtColor(np.array([[[90, 160, 145]]], np.uint8), cv2.COLOR_LAB2BGR)  # a tongue
    assert _lab(match_colour(red, src, dst))[0][1] > 128  # stays red, only less so


def test_the_pasted_interior_shows_the_drivers_teeth_whatever_omega_painted(faces):
    target, L_t, driver, L_s, _, _ = faces
    jgen = open_mouth(L_t, 0.3)
    g = mouth_guide(driver, L_s, jgen, target, L_t)
    painted = target.copy()
    painted[polygon_mask(jgen[60:68]) > 0] = (60, 60, 150)  # Ω's own red interior
    assert teeth_area(painted, jgen) < 0.01
    out = paste_interior(painted, g)
    assert teeth_area(out, jgen) > 0.05
    assert np.array_equal(out[g.mask == 0], painted[g.mask == 0])  # nothing outside J_gen's inner lips
    assert np.array_equal(paste_interior(painted, MouthGuide.empty()), painted)


def test_jitter_keeps_the_mask_and_stays_inside_it(faces):
    target, L_t, driver, L_s, _, _ = faces
    g = mouth_guide(driver, L_s, open_mouth(L_t, 0.3), target, L_t)
    j = jitter_guide(g, np.random.default_rng(0))
    assert np.array_equal(j.mask, g.mask) and not j.image[g.mask <= 0].any()
    assert not np.array_equal(j.image, g.image)
    assert jitter_guide(MouthGuide.empty(), np.random.default_rng(0)).mask.max() == 0


def test_the_live_cut_matches_the_full_crop_around_the_mouth(faces):
    _, _, driver, L_s, frame, opened = faces
    cut = driver_mouth_crop(frame, align_points(opened).M, L_s)
    kept = cut.any(2)
    assert 0 < kept.mean() < 0.2  # only the mouth area is cut from the frame
    assert np.abs(cut[kept].astype(int) - driver[kept]).max() <= 1
    assert skin_ring(L_s)[~kept].sum() == 0  # everything the colour match reads is cut


def test_the_guide_is_a_guided_config_field_that_old_configs_lack():
    from reenact.config import ModelConfig, model_config
    from reenact.errors import ConfigError

    assert model_config("guided", "lite").omega_in_channels == 9  # the shipped Ω, unchanged
    cfg = model_config("guided", "lite", mouth_guide=True)
    assert cfg.omega_in_channels == 13 and ModelConfig.from_dict(cfg.to_dict()) == cfg
    old = model_config("guided", "lite").to_dict()
    del old["mouth_guide"]  # a config.json written before the field (the shipped weights')
    assert ModelConfig.from_dict(old).mouth_guide is False
    with pytest.raises(ConfigError, match="guided"):
        model_config("paper", "lite", mouth_guide=True)


pytest.importorskip("torch")


def _reenactor(folder, interior: str, **opts):
    from reenact.inference.backend import create_backend
    from reenact.inference.reenactor import Reenactor, ReenactorOptions

    return Reenactor(create_backend("torch", folder, device="cpu", threads=2), None,
                     options=ReenactorOptions(smoothing=False, mouth_interior=interior, **opts))


@pytest.mark.parametrize("trained_with_guide", [True, False], ids=["guide-omega", "nine-channel-omega"])
def test_driver_pixels_reach_the_output_only_with_the_driver_interior(faces, weights_factory, astronaut, astronaut_points,
                                                                       trained_with_guide):
    """Both kinds of Ω: the shipped 9-channel one gets the interior laid over its output too."""
    from reenact.face.landmarks import FaceLandmarks

    _, _, _, _, frame, opened = faces
    folder = weights_factory("guided", mouth_guide=trained_with_guide)
    other = frame.copy()
    other[cv2.fillPoly(np.zeros(frame.shape[:2], np.uint8), [np.round(opened[60:68]).astype(np.int32)], 1) == 1] = (0, 200, 0)
    outs = {}
    for interior in ("driver", "generated"):
        r = _reenactor(folder, interior)
        r.add_target(astronaut, FaceLandmarks(points=astronaut_points, found=True, n_faces=1))
        outs[interior] = [r.from_landmarks(opened, 0.0, image=f) for f in (frame, other)]
    assert not np.array_equal(*outs["driver"])  # the driver's mouth pixels change the output …
    assert np.array_equal(*outs["generated"])  # … and with `generated` they never reach it


@pytest.mark.parametrize("trained_with_guide", [True, False], ids=["guide-omega", "nine-channel-omega"])
def test_no_driver_pixel_reaches_the_output_when_the_face_is_lost(faces, weights_factory, astronaut, astronaut_points,
                                                                  trained_with_guide):
    """After the face is lost (the frames are a bright green screen) the held output is the last face
    made again with a painted interior, then the target's own photo: never the driver's mouth."""
    from reenact.face.landmarks import FaceLandmarks

    _, _, _, _, frame, opened = faces
    folder = weights_factory("guided", mouth_guide=trained_with_guide)
    target_lm = FaceLandmarks(points=astronaut_points, found=True, n_faces=1)
    painted = _reenactor(folder, "generated")
    painted.add_target(astronaut, target_lm)
    painted_out = painted.from_landmarks(opened, 0.0, image=frame)
    for hold in (0.0, 60.0):
        r = _reenactor(folder, "driver", hold_s=hold, ease_s=0.0)
        r.add_target(astronaut, target_lm)
        live = r.from_landmarks(opened, 0.0, image=frame)
        assert not np.array_equal(live, painted_out)  # the driver's interior showed while tracked
        green = np.full_like(frame, (0, 255, 0))
        for k in range(3):
            out = r(green)  # no detector: every frame is a lost face
            assert not r.face_found
            assert np.array_equal(out, painted_out if hold > 0 else astronaut) or (k == 0 and np.array_equal(out, painted_out)), k


def test_live_and_eval_make_the_same_crop_with_the_guide(faces, weights_factory):
    """generate_crop with the driver's full crop (eval) and with the live path's mouth cut: one result."""
    from reenact.face.landmarks import FaceLandmarks
    from reenact.generate import generate_crop
    from reenact.inference.backend import create_backend

    target, L_t, driver, L_s, frame, opened = faces
    folder = weights_factory("guided", mouth_guide=True)
    be = create_backend("torch", folder, device="cpu", threads=2)
    ev = generate_crop(be.cfg, be.phi, be.omega, target, L_t, L_s, L_t, driver=driver)
    assert ev.guide is not None and ev.guide.mask.any()
    r = _reenactor(folder, "driver")
    r.add_target(target, FaceLandmarks(points=L_t, found=True, n_faces=1))
    r.set_neutral(L_t)
    cut = driver_mouth_crop(frame, align_points(opened).M, L_s)
    live, _ = r.crop_output(L_s, driver=cut)
    assert np.abs(live.astype(int) - ev.crop()).max() <= 2
    none = generate_crop(be.cfg, be.phi, be.omega, target, L_t, L_s, L_t, driver=None)
    assert not np.array_equal(none.crop(), ev.crop())


def test_an_omega_with_the_guide_exports_to_onnx_and_matches_torch(weights_factory, tmp_path):
    """13 input channels through ONNX export; the sample inputs carry a real (non-empty) guide."""
    pytest.importorskip("onnxscript", reason="the dynamo ONNX exporter needs onnxscript")
    from reenact.inference.backend import create_backend
    from reenact.inference.export import export_onnx
    from reenact.inference.samples import sample_inputs

    folder = weights_factory("guided", mouth_guide=True)
    export_onnx(folder)
    onnx_b, torch_b = create_backend("onnx", folder), create_backend("torch", folder, device="cpu")
    assert onnx_b.cfg.mouth_guide and onnx_b.cfg.omega_in_channels == 13
    cases = sample_inputs(onnx_b.cfg, 4)
    assert any(np.abs(x[0, 9:]).max() > 0 for _, x in cases)  # an open mouth: the guide is there
    for _, x in cases:
        assert np.abs(onnx_b.omega(x) - torch_b.omega(x)).max() <= 1e-4
    with pytest.raises(Exception, match="13|channel|shape"):
        create_backend("onnx", folder).omega(np.zeros((1, 9, 256, 256), np.float32))  # a 9-channel input is refused


def test_live_output_with_the_shipped_weights_shows_the_drivers_teeth(faces, astronaut_points, shared_data):  # noqa: F811
    """End to end through the Reenactor with the shipped (9-channel) weights and the full-resolution
    paste-back, onto a closed-mouth London photo: the driver opens their mouth over white teeth; dlib
    re-detects the output, and the evaluation's teeth measure finds at least half the driver's teeth
    area with ``driver``, next to none with ``generated`` (Ω alone paints no teeth)."""
    from reenact.face.landmarks import create_detector
    from reenact.inference.backend import create_backend
    from reenact.inference.reenactor import Reenactor, ReenactorOptions
    from reenact.paths import WEIGHTS_DIR

    _, _, _, _, frame, opened = faces
    det = create_detector("dlib")
    target = cv2.imread(str(shared_data / "london" / "neutral" / "063.jpg"))
    target_lm = det.detect(target)
    assert target_lm.found and teeth_area(target, target_lm.points) == 0  # a closed mouth
    backend = create_backend("torch", WEIGHTS_DIR, device="cpu", threads=2)
    driver_teeth = teeth_area(frame, det.detect(frame).points)
    assert driver_teeth > 0.05
    areas = {}
    for interior in ("driver", "generated"):
        r = Reenactor(backend, None, neutral=align_points(astronaut_points).to_crop(astronaut_points),
                      options=ReenactorOptions(smoothing=False, mouth_interior=interior))
        r.add_target(target, target_lm)
        out = r.from_landmarks(opened, 0.0, image=frame)
        lm = det.detect(out)
        assert lm.found
        areas[interior] = teeth_area(out, lm.points)
    assert areas["driver"] >= 0.5 * driver_teeth, (areas, driver_teeth)
    assert areas["generated"] < 0.2 * driver_teeth, (areas, driver_teeth)


def test_the_session_says_whose_mouth_interior_it_shows():
    from reenact.config import model_config
    from reenact.session import mouth_interior_line

    shipped = model_config("guided", "lite")  # no guide channels: the interior is still laid in
    assert "your own mouth's pixels" in mouth_interior_line(shipped, "driver")
    assert "generated" in mouth_interior_line(shipped, "generated")
    assert "paper variant" in mouth_interior_line(model_config("paper", "lite"), "driver")


def test_degenerate_mouth_points_do_not_break_the_colour_reference(faces):
    target, L_t, _, _, _, _ = faces
    collapsed = L_t.copy()
    collapsed[48:68] = L_t[48:68].mean(0)  # every mouth point in one place: no ring of skin
    ref = mouth_skin_mean(target, collapsed)
    assert ref.shape == (3,) and np.all(np.isfinite(ref))
