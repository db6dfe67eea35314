"""Eye-opening retargeting (issue 17): pure geometry on real dlib landmarks of the astronaut."""

from __future__ import annotations

import numpy as np
import pytest

from reenact.eval.expressive import move
from reenact.face.align import align_points
from reenact.face.eyes import EYES, MAX_RATIO, eye_ratios, lid_gaps, retarget_eyes
from reenact.face.flip import flip_points

UPPER = [a for _, pairs in EYES for a, _ in pairs]


@pytest.fixture(scope="module")
def face(astronaut_points):
    """The astronaut's landmarks in the canonical crop."""
    return align_points(astronaut_points).to_crop(astronaut_points).astype(np.float64)


def _eyes_scaled(points: np.ndarray, scale: float) -> np.ndarray:
    """The same face with both eyes' lid gaps scaled about each lid pair's midpoint (a smaller or larger eye)."""
    p = points.copy()
    for _, pairs in EYES:
        for a, b in pairs:
            m = (p[a] + p[b]) / 2
            p[a], p[b] = m + scale * (p[a] - m), m + scale * (p[b] - m)
    return p


def test_a_neutral_driver_leaves_phis_eyes_and_a_half_closed_one_halves_the_targets(face):
    target = _eyes_scaled(face, 1.4)  # a large-eyed target
    jgen = (target + np.random.default_rng(0).normal(0, 0.7, target.shape)).astype(np.float32)  # Φ moved the lids
    np.testing.assert_array_equal(retarget_eyes(jgen, target, face, face), jgen)
    half = retarget_eyes(jgen, target, _eyes_scaled(face, 0.5), face)
    np.testing.assert_allclose(lid_gaps(half), 0.5 * lid_gaps(target), atol=1e-3)


def test_a_small_eyed_drivers_blink_closes_a_large_eyed_targets_lids(face):
    driver_neutral = _eyes_scaled(face, 0.6)  # small eyes
    target = _eyes_scaled(face, 1.5)  # large eyes
    driver_blink = _eyes_scaled(face, 0.6 * 0.3)  # the driver's lids at 0.3 of their opening
    plain = target + (driver_blink - driver_neutral)  # J_gen = L_t + (L_s − J_s): the lids only squeezed
    assert (lid_gaps(plain) / lid_gaps(target)).min() > 0.6
    out = retarget_eyes(plain, target, driver_blink, driver_neutral)
    np.testing.assert_allclose(lid_gaps(out) / lid_gaps(target), 0.3, atol=1e-3)
    moved = np.flatnonzero(np.abs(out - plain).max(1) > 1e-4)
    assert set(moved.tolist()) <= set(UPPER)  # only the upper lids move


def test_a_scripted_blink_shuts_the_lids(face):
    """expressive.move's blink puts the upper lids on the lower ones: the output's gaps go to ~0."""
    blink = move(face, "blink", 1.0)
    target = _eyes_scaled(face, 1.3)
    out = retarget_eyes(target + (blink - face), target, blink, face)
    assert np.abs(lid_gaps(out)).max() < 1e-3 * lid_gaps(target).max()


def test_opening_wider_keeps_phis_displacement_and_the_ratio_is_clamped(face):
    """An eye opened wider than neutral is not retargeted (a narrow-eyed target photo could never open
    by a ratio of its gap): J_gen passes through unchanged."""
    wide = _eyes_scaled(face, 3.0)
    np.testing.assert_allclose(eye_ratios(wide, face), MAX_RATIO)
    narrow_target = _eyes_scaled(face, 0.4)
    jgen = (narrow_target + (wide - face)).astype(np.float32)
    np.testing.assert_array_equal(retarget_eyes(jgen, narrow_target, wide, face), jgen)
    shut_neutral = _eyes_scaled(face, 0.0)  # a neutral captured with shut eyes gives no ratio
    np.testing.assert_allclose(eye_ratios(face, shut_neutral), 1.0)


def test_mirroring_commutes_with_retargeting(face):
    rng = np.random.default_rng(1)
    driver_neutral, target = _eyes_scaled(face, 0.8), _eyes_scaled(face, 1.2)
    driver = _eyes_scaled(face, 0.8) + rng.normal(0, 0.5, face.shape)
    driver[[37, 38]] += (0, 2.0)  # one eye half closed: the two eyes differ
    jgen = target + (driver - driver_neutral)
    f = lambda p: flip_points(p, 256)  # noqa: E731
    a = f(retarget_eyes(jgen, target, driver, driver_neutral))
    b = retarget_eyes(f(jgen), f(target), f(driver), f(driver_neutral))
    np.testing.assert_allclose(a, b, atol=1e-3)


def test_bad_shape_is_refused(face):
    with pytest.raises(ValueError, match=r"\[68,2\]"):
        retarget_eyes(face[:60], face, face, face)


# ----------------------------------------------------------------------------- lids
def _shut(points: np.ndarray, ratio: float) -> np.ndarray:
    """The face with each upper lid moved down to ``ratio`` of its gap (the lower lids stay)."""
    p = points.copy()
    for _, pairs in EYES:
        for a, b in pairs:
            p[a] = p[b] + ratio * (p[a] - p[b])
    return p


def test_lid_amounts_follow_the_opening(face):
    from reenact.face.eyes import LID_FROM, LID_FULL, lid_amounts

    np.testing.assert_allclose(lid_amounts(face, face), 0.0)
    np.testing.assert_allclose(lid_amounts(_shut(face, LID_FULL - 0.05), face), 1.0)
    mid = lid_amounts(_shut(face, (LID_FROM + LID_FULL) / 2), face)
    np.testing.assert_allclose(mid, 0.5, atol=0.02)


def test_open_eyes_get_exactly_the_plain_warp(astronaut, astronaut_points, face):
    from reenact.face.warp import warp_crop
    from reenact.inputs import warp_with_lids
    from reenact.synthetic import open_mouth

    crop = align_points(astronaut_points).crop(astronaut)
    jgen = open_mouth(face, 0.2).astype(np.float32)
    assert np.array_equal(warp_with_lids(crop, face, jgen), warp_crop(crop, face, jgen))


def test_a_shut_eye_is_painted_and_dlib_reads_it_shut(astronaut, astronaut_points, face):
    """The plain warp only squeezes the eye (dlib still reads it open); with the lid painted it reads shut."""
    import cv2

    from reenact.eval.expressive import face_features
    from reenact.face.landmarks import create_detector
    from reenact.face.warp import warp_crop
    from reenact.inputs import warp_with_lids

    det = create_detector("dlib")
    crop = align_points(astronaut_points).crop(astronaut)
    jgen = _shut(face, 0.3).astype(np.float32)

    def opening(img):
        lm = det.detect(cv2.resize(img, (512, 512)))
        assert lm.found
        return face_features(lm.points)[0, 1]

    open_ = opening(crop)
    squeezed, painted = opening(warp_crop(crop, face, jgen)), opening(warp_with_lids(crop, face, jgen))
    assert painted < squeezed
    assert painted <= 0.55 * open_, (painted / open_, squeezed / open_)


def test_live_output_shows_shut_lids(astronaut, astronaut_points):
    """End to end through the Reenactor (Φ, Ω, the full-resolution paste-back): the driver shuts their eyes,
    dlib re-detects the output's eyes at most 0.55 as open as the target's."""
    pytest.importorskip("torch")
    from reenact.eval.expressive import face_features
    from reenact.face.landmarks import FaceLandmarks, create_detector
    from reenact.inference.backend import create_backend
    from reenact.inference.reenactor import Reenactor, ReenactorOptions
    from reenact.paths import WEIGHTS_DIR

    det = create_detector("dlib")
    r = Reenactor(create_backend("torch", WEIGHTS_DIR, device="cpu", threads=2), None,
                  neutral=align_points(astronaut_points).to_crop(astronaut_points),
                  options=ReenactorOptions(smoothing=False))
    r.add_target(astronaut, FaceLandmarks(points=astronaut_points, found=True, n_faces=1))
    shut = _shut(astronaut_points.astype(np.float64), 0.3)
    opened = face_features(det.detect(r.from_landmarks(astronaut_points, 0.0)).points)[0, 1]
    closed = face_features(det.detect(r.from_landmarks(shut, 0.1)).points)[0, 1]
    assert closed <= 0.55 * opened, closed / opened


def test_the_lid_mask_covers_the_upper_lashes_above_the_lid_points(face):
    """The open eye's upper lashes lie above dlib's lid points; left uncovered they show as a dark arc
    over the painted lid (dlib reads it as an open upper lid), so the mask reaches LID_COVER above them."""
    from reenact.face import eyes

    for eye, (corners, pairs) in enumerate(EYES):
        m, (x0, y0, _, _) = eyes.eye_region(face, eye, (256, 256))
        down = eyes._down(face, corners)
        for a, _ in pairs:
            above = face[a] - eyes.LID_COVER * down  # the lash line's height over the lid point
            x, y = np.round(above - (x0, y0)).astype(int)
            assert m[y, x] > 0.9, (eye, a, m[y, x])
        # and not the brow: the mask ends well below it
        brow = face[19] if eye == 0 else face[24]
        bx, by = np.round(brow - (x0, y0)).astype(int)
        assert by < 0 or m[by, min(bx, m.shape[1] - 1)] == 0


def test_the_lash_line_tapers_and_the_lid_margin_is_shaded_above_it():
    """A shut, level eye drawn on a flat grey picture at 4x the crop's scale: the line is thicker at the
    middle of the lid than near the corners, the skin just above it is darkened (the lid margin's
    shadow), the skin well above and below it is left (all but) alone."""
    from reenact.face import eyes

    pts = np.zeros((68, 2))
    for (c0, c1), ((u0, l0), (u1, l1)) in EYES:
        x = 60.0 if c0 == 36 else 160.0
        pts[c0], pts[c1] = (x, 128), (x + 160, 128)  # 40 crop px wide at scale 4
        pts[[u0, u1]] = (x + 53, 126), (x + 107, 126)  # shut: upper lids 2 px (at 4x) over the lower
        pts[[l0, l1]] = (x + 53, 134), (x + 107, 134)
    pts[42:48] += (200, 0)  # the second eye apart from the first
    grey = np.full((256, 512, 3), 180, np.uint8)
    out = eyes.draw_lashes(grey.copy(), pts, np.array([1.0, 1.0]), scale=4.0)
    dark = out[..., 0] < 80  # the line itself (the shadow alone darkens to no less than 90)
    x_mid, x_near = 140, 63  # the middle of the first eye's lid, and 3 px (at 4x) from its outer corner
    assert dark[:, x_mid].sum() >= dark[:, x_near].sum() + 2 > 2
    rows = np.flatnonzero(dark[:, x_mid])
    top, bottom = rows.min(), rows.max()
    assert out[top - 4, x_mid, 0] < 170  # shaded just above the line
    assert out[top - 4 - int(3 * 4 * eyes.LID_SHADOW), x_mid, 0] >= 178  # not far above it
    assert out[bottom + 3 * 4, x_mid, 0] >= 178  # nor 3 crop px below it
    # nothing drawn for an open eye
    assert np.array_equal(eyes.draw_lashes(grey.copy(), pts, np.array([0.0, 0.0]), scale=4.0), grey)
