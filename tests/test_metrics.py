"""Evaluation measures (issue 5): SSIM/PSNR against their formulas and skimage, masks,
landmark measures, driver following and dlib identity distance.

Tolerances: SSIM vs skimage 1e-3 (measured agreement ~1e-14); PSNR vs the formula 1e-9 dB.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from reenact.eval import metrics as M
from reenact.face.align import template
from reenact.face.flip import flip_image, flip_points

skimage_data = pytest.importorskip("skimage.data", reason="scikit-image provides the astronaut test image")

REFERENCE = Path(__file__).parent / "data" / "astronaut_landmarks.json"
from _face_fixtures import SHARED_DATA  # noqa: E402

LONDON = SHARED_DATA / "london"


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR)  # 512x512 BGR


@pytest.fixture(scope="module")
def crop(astronaut) -> np.ndarray:
    return np.ascontiguousarray(astronaut[60:316, 150:406])  # 256x256 BGR, the face


@pytest.fixture(scope="module")
def astronaut_points() -> np.ndarray:
    return np.array(json.loads(REFERENCE.read_text())["points"], np.float32)


def _noisy(img: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(img + rng.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)


# -- SSIM ----------------------------------------------------------------------------------
def test_ssim_of_an_image_with_itself_is_one(crop) -> None:
    assert M.ssim(crop, crop) == pytest.approx(1.0, abs=1e-12)
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    assert M.ssim(grey, grey) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("sigma", [3.0, 12.0, 40.0])
def test_ssim_matches_skimage(crop, sigma) -> None:
    from skimage.metrics import structural_similarity

    noisy = _noisy(crop, sigma)
    kw = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)
    ref = structural_similarity(crop, noisy, channel_axis=-1, **kw)
    assert M.ssim(crop, noisy) == pytest.approx(ref, abs=1e-3)
    g0, g1 = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY), cv2.cvtColor(noisy, cv2.COLOR_BGR2GRAY)
    assert M.ssim(g0, g1) == pytest.approx(structural_similarity(g0, g1, **kw), abs=1e-3)


def test_ssim_falls_with_noise(crop) -> None:
    values = [M.ssim(crop, _noisy(crop, s)) for s in (2.0, 10.0, 30.0)]
    assert 1.0 > values[0] > values[1] > values[2] > 0.0


def test_ssim_float_needs_data_range(crop) -> None:
    f = crop.astype(np.float32) / 255.0
    with pytest.raises(TypeError, match="data_range"):
        M.ssim(f, f)
    assert M.ssim(f, f, data_range=1.0) == pytest.approx(1.0)
    n = _noisy(crop, 10.0)
    assert M.ssim(f, n.astype(np.float32) / 255.0, data_range=1.0) == pytest.approx(M.ssim(crop, n), abs=1e-6)


def test_bad_inputs_name_expected_and_actual(crop) -> None:
    with pytest.raises(ValueError, match=r"\(256, 256, 3\).*\(128, 128, 3\)"):
        M.ssim(crop, crop[:128, :128])
    with pytest.raises(TypeError, match="int16"):
        M.psnr(crop.astype(np.int16), crop.astype(np.int16))
    with pytest.raises(TypeError, match="list"):
        M.ssim([1, 2], crop)
    with pytest.raises(ValueError, match="at least 11x11"):
        M.ssim(crop[:8, :8], crop[:8, :8])
    with pytest.raises(ValueError, match=r"\(256, 256\).*\(10, 10\)"):
        M.psnr(crop, crop, mask=np.ones((10, 10), bool))
    with pytest.raises(ValueError, match="empty"):
        M.ssim(crop, crop, mask=np.zeros(crop.shape[:2], bool))


# -- PSNR ----------------------------------------------------------------------------------
def test_psnr_of_known_noise_matches_formula() -> None:
    rng = np.random.default_rng(1)
    base = np.full((64, 80, 3), 128, np.uint8)
    for noise in (
        rng.integers(-10, 11, base.shape),  # uniform, MSE ≈ (21²-1)/12 = 36.7
        np.round(rng.normal(0, 5.0, base.shape)).clip(-120, 120).astype(int),  # Gaussian σ=5
    ):
        other = (base.astype(int) + noise).astype(np.uint8)  # no clipping: |noise| <= 127
        mse = float(np.mean(noise.astype(np.float64) ** 2))
        expected = 10.0 * math.log10(255.0**2 / mse)
        assert M.psnr(base, other) == pytest.approx(expected, abs=1e-9)
    # a constant offset of 1 grey level: MSE 1 -> 48.13 dB
    assert M.psnr(base, base + 1) == pytest.approx(20 * math.log10(255), abs=1e-9)


def test_psnr_of_identical_images_is_capped(crop) -> None:
    assert M.psnr(crop, crop) == M.PSNR_CAP_DB == 100.0
    assert M.psnr(crop, crop, cap=None) == math.inf
    assert M.psnr(crop, _noisy(crop, 10.0)) < 30.0


# -- masks ---------------------------------------------------------------------------------
def test_lower_face_mask_covers_mouth_and_jaw_not_eyes() -> None:
    pts = template(256)
    mask = M.lower_face_mask(pts, 256)
    assert mask.shape == (256, 256) and mask.dtype == bool
    inside = [pts[48:68].mean(0), pts[8] + (0, -6), pts[4] + (4, 0), pts[12] - (4, 0), pts[33] + (0, 2)]
    outside = [pts[36:42].mean(0), pts[42:48].mean(0), (128, 40), (10, 250), (250, 128), pts[27]]
    for x, y in inside:
        assert mask[int(round(y)), int(round(x))], (x, y)
    for x, y in outside:
        assert not mask[int(round(y)), int(round(x))], (x, y)
    # about a quarter of the crop: the lower face of a 64-px-inter-ocular face
    assert 0.12 < mask.mean() < 0.35


def test_lower_face_mask_checks_points() -> None:
    with pytest.raises(ValueError, match=r"\[68,2\].*\(5, 2\)"):
        M.lower_face_mask(np.zeros((5, 2), np.float32))
    with pytest.raises(TypeError, match="numpy array"):
        M.lower_face_mask([[0, 0]] * 68)


def test_masked_scores_see_only_the_mask(crop) -> None:
    mask = M.lower_face_mask(template(256), 256)
    noisy = _noisy(crop, 20.0)
    outside_only = np.where(mask[..., None], crop, noisy)  # differs only outside the mask
    inside_only = np.where(mask[..., None], noisy, crop)  # differs only inside
    # the SSIM window reaches 5 px beyond the mask edge: a little leakage at the edge,
    # none when scored 5 px inside it
    assert M.ssim(crop, outside_only, mask=mask) > 0.9
    core = cv2.erode(mask.astype(np.uint8), np.ones((11, 11), np.uint8)).astype(bool)
    assert M.ssim(crop, outside_only, mask=core) == pytest.approx(1.0, abs=1e-12)
    assert M.ssim(crop, outside_only) < 0.8
    assert M.psnr(crop, outside_only, mask=mask) == 100.0
    assert M.ssim(crop, inside_only, mask=mask) < M.ssim(crop, inside_only)
    assert M.psnr(crop, inside_only, mask=mask) < M.psnr(crop, inside_only)
    assert M.psnr(crop, inside_only, mask=mask.astype(np.uint8)) == M.psnr(crop, inside_only, mask=mask)


# -- landmark measures ---------------------------------------------------------------------
def test_expression_error() -> None:
    a = template(256)
    assert M.expression_error(a, a) == 0.0
    b = a + np.array([3.0, 4.0], np.float32)  # every point moved 5 px
    assert M.expression_error(a, b) == pytest.approx(5.0)
    c = a.copy()
    c[48:68, 1] += 2.0  # only the mouth moved 2 px
    assert M.expression_error(a, c, idx=M.MOUTH) == pytest.approx(2.0)
    assert M.expression_error(a, c) == pytest.approx(2.0 * 20 / 68)
    with pytest.raises(ValueError, match="0..67"):
        M.expression_error(a, c, idx=[70])
    with pytest.raises(ValueError, match=r"points_b must be \[68,2\]"):
        M.expression_error(a, c[:10])


def test_driver_following() -> None:
    t = np.linspace(0, 4 * np.pi, 50)
    s = 0.2 + 0.1 * np.sin(t)
    assert M.driver_following(s, s) == pytest.approx(1.0)
    assert M.driver_following(s, -s) == pytest.approx(-1.0)
    assert M.driver_following(s, 3 * s + 1) == pytest.approx(1.0)  # scale/offset do not matter
    assert abs(M.driver_following(s, 0.2 + 0.1 * np.cos(t))) < 0.2
    # undetected frames (nan) are dropped
    g = s.copy()
    g[[3, 17]] = np.nan
    assert M.driver_following(s, g) == pytest.approx(1.0)
    # undefined -> nan: a constant series, too few frames
    assert math.isnan(M.driver_following(s, np.full_like(s, 0.3)))
    assert math.isnan(M.driver_following(np.full_like(s, 0.1), s))
    assert math.isnan(M.driver_following(s[:2], s[:2]))
    with pytest.raises(ValueError, match="one length"):
        M.driver_following(s, s[:10])


# -- identity ------------------------------------------------------------------------------
dlib_detector = pytest.importorskip("reenact.face.dlib_detector", reason="dlib (dlib-bin) is not installed")


def test_identity_distance_self_is_zero_and_mirror_is_small(astronaut, astronaut_points) -> None:
    assert M.identity_distance(astronaut, astronaut_points, astronaut, astronaut_points) == pytest.approx(0.0, abs=1e-6)
    flipped = flip_image(astronaut)
    d = M.identity_distance(astronaut, astronaut_points, flipped, flip_points(astronaut_points, astronaut.shape[1]))
    assert 0.0 < d < 0.4  # measured 0.21; dlib's same-person threshold is 0.6


def test_face_descriptor_uses_the_given_points(astronaut, astronaut_points) -> None:
    from reenact.face.landmarks import FaceLandmarks, box_of

    lm = FaceLandmarks(points=astronaut_points, found=True, box=box_of(astronaut_points), n_faces=1)
    d_arr = dlib_detector.face_descriptor(astronaut, astronaut_points)
    assert d_arr.shape == (128,) and d_arr.dtype == np.float32
    assert np.array_equal(d_arr, dlib_detector.face_descriptor(astronaut, lm))
    # moved landmarks -> another face chip -> another descriptor (no hidden re-prediction)
    moved = astronaut_points + np.array([25.0, 0.0], np.float32)
    assert np.linalg.norm(dlib_detector.face_descriptor(astronaut, moved) - d_arr) > 0.05
    with pytest.raises(ValueError, match="found"):
        dlib_detector.face_descriptor(astronaut, FaceLandmarks.empty())


@pytest.mark.skipif(not LONDON.is_dir(), reason=f"London faces not found at {LONDON}")
def test_identity_distance_other_person_is_larger() -> None:
    det = dlib_detector.DlibDetector()
    faces = {}
    for name in ("neutral/001.jpg", "neutral/002.jpg", "smiling/001.jpg"):
        img = cv2.imread(str(LONDON / name))
        if img is None:
            pytest.skip(f"{LONDON / name} missing")
        lm = det.detect(img)
        assert lm.found, name
        faces[name] = (img, lm)
    a, b, a_smile = faces["neutral/001.jpg"], faces["neutral/002.jpg"], faces["smiling/001.jpg"]
    same = M.identity_distance(*a, *a)
    other = M.identity_distance(*a, *b)
    smile = M.identity_distance(*a, *a_smile)
    assert same == pytest.approx(0.0, abs=1e-6)
    assert other > 0.6 > smile  # measured: another person 0.78, own smile 0.28


def test_fine_detail_is_zero_on_flat_grey_and_drops_with_blur() -> None:
    fine_detail = M.fine_detail
    rng = np.random.default_rng(0)
    img = np.full((64, 64, 3), 128, np.uint8)
    assert fine_detail(img) == 0.0
    img[32:, 32:] = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)  # texture in one quarter only
    assert fine_detail(img, (0, 0, 32, 32)) == 0.0 and fine_detail(img, (32, 32, 64, 64)) > 1000
    blurred = cv2.GaussianBlur(img, (0, 0), 1.0)
    assert fine_detail(blurred, (32, 32, 64, 64)) < 0.2 * fine_detail(img, (32, 32, 64, 64))
    with pytest.raises(ValueError, match="fine_detail"):
        fine_detail(np.zeros(5, np.uint8))
