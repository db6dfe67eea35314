"""One Euro filter: less jitter on a still signal, little lag on a ramp with beta > 0."""

from __future__ import annotations

import numpy as np
import pytest

from reenact.face.smoothing import LandmarkSmoother, OneEuroConfig, OneEuroFilter, normalise
from reenact.face.topology import EXPRESSION_POINTS, TEMPLATE_256, interocular

FPS = 30.0


def test_static_noise_jitter_reduced() -> None:
    rng = np.random.default_rng(0)
    f = OneEuroFilter(mincutoff=1.0, beta=0.0, dcutoff=1.0)
    x = 5.0 + rng.normal(0, 0.5, 300)
    y = np.array([f(np.array([v]), i / FPS)[0] for i, v in enumerate(x)])
    raw_jitter = np.std(np.diff(x[50:]))
    out_jitter = np.std(np.diff(y[50:]))
    assert out_jitter < 0.25 * raw_jitter
    assert abs(y[50:].mean() - 5.0) < 0.1  # no bias


def test_ramp_lag_small_with_beta() -> None:
    t = np.arange(120) / FPS
    ramp = 50.0 * t  # 50 units per second
    lags = {}
    for beta in (0.0, 0.5):
        f = OneEuroFilter(mincutoff=1.0, beta=beta, dcutoff=1.0)
        y = np.array([f(np.array([v]), ti)[0] for v, ti in zip(ramp, t, strict=True)])
        lags[beta] = float(np.mean(ramp[60:] - y[60:]))
    # beta=0 is a plain 1 Hz low-pass: lag ~ speed * tau = 50 / (2 pi) ~ 8 units
    assert lags[0.0] > 5.0
    assert lags[0.5] < 0.5  # the adaptive cutoff follows the ramp
    assert lags[0.5] < lags[0.0] / 10


def test_reset_and_first_sample_pass_through() -> None:
    f = OneEuroFilter(OneEuroConfig(mincutoff=0.5, beta=0.0))
    assert f(np.array([1.0]), 0.0)[0] == 1.0
    assert f(np.array([10.0]), 1 / FPS)[0] < 10.0
    f.reset()
    assert f(np.array([10.0]), 2 / FPS)[0] == 10.0


def test_repeated_timestamp_keeps_state() -> None:
    f = OneEuroFilter()
    f(np.array([0.0]), 1.0)
    assert f(np.array([100.0]), 1.0)[0] == 0.0


def test_bad_config() -> None:
    with pytest.raises(ValueError):
        OneEuroConfig(mincutoff=0)
    with pytest.raises(ValueError):
        OneEuroConfig(beta=-1)


def _face(scale: float, shift: tuple[float, float]) -> np.ndarray:
    return (TEMPLATE_256 * scale + np.array(shift)).astype(np.float32)


def test_landmark_smoother_reduces_jitter_scale_independent() -> None:
    """A still face with noise: the steady points (brows, nose, jaw sides) are smoothed hard,
    the expression points (lips, eyes, chin) less but still, the same near and far."""
    rng = np.random.default_rng(1)
    fast = np.zeros(68, bool)
    fast[list(EXPRESSION_POINTS)] = True
    ratios = []
    for scale in (0.5, 2.0):
        clean = _face(scale, (100, 50))
        sm = LandmarkSmoother()
        iod = interocular(clean)
        raw, out = [], []
        for i in range(150):
            noisy = clean + rng.normal(0, 0.02 * iod, clean.shape).astype(np.float32)
            raw.append(noisy)
            out.append(sm(noisy, i / FPS))
        raw_err = np.abs(np.array(raw[30:]) - clean).mean(axis=(0, 2))
        out_err = np.abs(np.array(out[30:]) - clean).mean(axis=(0, 2))
        ratios.append((out_err[~fast].mean() / raw_err[~fast].mean(), out_err[fast].mean() / raw_err[fast].mean()))
    assert all(steady < 0.5 and expr < 0.8 for steady, expr in ratios)
    assert all(steady < expr for steady, expr in ratios)
    assert abs(ratios[0][0] - ratios[1][0]) < 0.15 and abs(ratios[0][1] - ratios[1][1]) < 0.15  # near = far


def _speech(frames: int = 40, fps: float = 25.0, open_iod: float = 0.2, blink: bool = False) -> list[np.ndarray]:
    """A face (interocular 64 px) whose lips open by ``open_iod`` for a syllable (3 frames up, 2 held,
    3 down), or whose eyes close for a blink, starting at frame 20."""
    face = _face(1.0, (0.0, 0.0))
    iod = interocular(face)
    ramp = np.interp(np.arange(frames), [19, 22, 24, 27], [0.0, 1.0, 1.0, 0.0])
    out = []
    for k in ramp:
        f = face.copy()
        if blink:  # upper lids (37, 38, 43, 44) down onto the lower ones
            for up, low in ((37, 41), (38, 40), (43, 47), (44, 46)):
                f[up] += k * (face[low] - face[up])
        else:
            f[[56, 57, 58, 65, 66, 67], 1] += k * open_iod * iod  # lower lip
            f[5:12, 1] += k * 0.5 * open_iod * iod  # chin follows
        out.append(f)
    return out


def test_landmark_smoother_lets_speech_and_blinks_through() -> None:
    """A syllable reaches >= 85 % of its mouth opening and a blink >= 70 % of its depth (one beta
    of 0.5 for all points, as before: 75 % and 67 %), while the still brows stay put."""
    one = OneEuroConfig(beta=0.5)
    for blink, measure, floor in ((False, lambda f: f[66, 1] - f[62, 1], 0.85),
                                  (True, lambda f: -(f[41, 1] - f[37, 1]), 0.70)):
        raw = _speech(blink=blink)
        results = {}
        for name, sm in (("default", LandmarkSmoother()), ("one beta", LandmarkSmoother(expression=one, eyes=one, brows=one, blink_gate=None))):
            out = [sm(f, i / 25.0) for i, f in enumerate(raw)]
            a = np.array([measure(f) for f in raw])
            b = np.array([measure(f) for f in out])
            results[name] = (b.max() - b[0]) / (a.max() - a[0])
            np.testing.assert_allclose(np.array(out)[:, 17:27], np.array(raw)[:, 17:27], atol=0.5)  # brows stay
        assert results["default"] >= floor, results
        assert results["one beta"] < results["default"] - 0.2, results


def _expression_response(smoother, kind: str, down: int, hold: int, up: int, fps: float = 30.0) -> np.ndarray:
    """Smoothed over raw amplitude (brow height or eye closing, expressive.face_features) frame by
    frame, for a template face whose expression rises over ``down`` frames from frame 10, holds
    and falls; index 0 = the frame the raw expression first reaches its full amplitude."""
    from reenact.eval.expressive import face_features, move

    face = _face(1.5, (40.0, 20.0))
    amount = np.interp(np.arange(40), [10, 10 + down, 10 + down + hold, 10 + down + hold + up], [0, 1, 1, 0])
    raw = np.array([move(face, kind, k) for k in amount], np.float32)
    out = np.array([smoother(p, i / fps) for i, p in enumerate(raw)])
    col = 0 if kind == "brows" else 1
    a, b = face_features(raw)[:, col], face_features(out)[:, col]
    full = a[10 + down] - a[0]
    return ((b - b[0]) / full)[10 + down:]


def test_brow_raise_and_fast_blink_pass_the_smoother() -> None:
    """Issue 17: a brow raise (over 3 frames at 30 fps) reaches >= 90 % of its height within 2
    frames of dlib's, a fast blink (closed in 2 frames, open again over 4) >= 80 % of its depth,
    a subtle raise (0.06 eye distances) >= 85 %. The settings before (brows held like the nose,
    eyes with the mouth's beta 20) reached 68 % and 75 %."""
    before = {"eyes": OneEuroConfig(mincutoff=1.0, beta=20.0), "brows": OneEuroConfig(mincutoff=1.0, beta=0.5), "blink_gate": None}
    brow = _expression_response(LandmarkSmoother(), "brows", 3, 10, 3)
    assert brow[2] >= 0.9 and brow.max() <= 1.05, brow[:4]
    blink = _expression_response(LandmarkSmoother(), "blink", 2, 0, 4)
    assert blink.max() >= 0.8, blink[:4]  # the eye opening falls by >= 80 % of the raw closing
    old_brow = _expression_response(LandmarkSmoother(**before), "brows", 3, 10, 3)
    old_blink = _expression_response(LandmarkSmoother(**before), "blink", 2, 0, 4)
    assert old_brow[2] < 0.75 and old_blink.max() < 0.8, (old_brow[2], old_blink.max())
    from reenact.eval.expressive import face_features, move

    face = _face(1.5, (40.0, 20.0))
    sm = LandmarkSmoother()
    raw = [move(face, "brows", 0.4 * min(1.0, max(0.0, (i - 10) / 3))).astype(np.float32) for i in range(20)]
    out = [sm(p, i / 30.0) for i, p in enumerate(raw)]
    rise = face_features(np.array(out))[:, 0] - face_features(face)[0, 0]
    assert rise[15] >= 0.85 * 0.4 * 0.15, rise[13:16]


@pytest.mark.slow
def test_real_clip_mouth_follows_without_lag(grid_clips, smoothing_study) -> None:
    """On real GRID clips (dlib on every frame): the smoothed mouth opening trails the raw one by
    under half a frame and reaches >= 90 % of its peaks; the steady points' still noise is cut to
    under a third of dlib's."""
    study, clips = smoothing_study, grid_clips
    raw = study.measure(clips, lambda: None)
    now = study.measure(clips, LandmarkSmoother)
    assert now["mouth lag (frames)"] < 0.5
    assert now["mouth peak"] >= 0.9
    for part in ("brows", "jaw sides", "nose"):
        assert now[f"still noise {part}"] < raw[f"still noise {part}"] / 3


@pytest.mark.slow
def test_real_clips_brows_and_blinks_pass_steadily(grid_clips, cremad_clips, smoothing_study) -> None:
    """Issue 17 on real clips, talking (GRID) and expressive (CREMA-D): eye closings reach >= 80 %
    of their depth, the smoothed brow height follows dlib's better than before (r >= 0.8; before
    0.74 / 0.75), and the brows' and eyes' still noise is at most 1.5x the setting before."""
    for clips in (grid_clips, cremad_clips):
        old = smoothing_study.measure(clips, lambda: LandmarkSmoother(eyes=OneEuroConfig(beta=20.0), brows=OneEuroConfig(beta=0.5),
                                                                      blink_gate=None))
        now = smoothing_study.measure(clips, LandmarkSmoother)
        assert now["blink depth"] >= 0.8, now
        assert now["brow following"] >= 0.8 and now["brow following"] > old["brow following"] + 0.05, (old, now)
        for part in ("brows", "eyes"):
            assert now[f"still noise {part}"] <= 1.5 * old[f"still noise {part}"], (part, old, now)


def test_a_blink_closes_and_reopens_with_dlib_and_a_still_eye_stays_smoothed() -> None:
    """The blink gate: through a fast blink (closed in 2 frames, held 1, open over 3) the smoothed eye
    opening stays within 15 % (of the raw closing) of dlib's on every frame, closing and reopening
    (without the gate it trails by over 25 % on the way up); a still eye's jitter is smoothed exactly
    as without the gate."""
    rng = np.random.default_rng(0)
    gated = _expression_response(LandmarkSmoother(), "blink", 2, 1, 3)
    plain = _expression_response(LandmarkSmoother(blink_gate=None), "blink", 2, 1, 3)
    raw = _expression_response(lambda p, t: p, "blink", 2, 1, 3)
    assert np.abs(gated - raw).max() <= 0.15, np.round(gated - raw, 2)
    assert np.abs(plain - raw).max() > 0.25, np.round(plain - raw, 2)
    face = _face(1.5, (40.0, 20.0))
    noisy = [(face + rng.normal(0, 0.8, face.shape)).astype(np.float32) for _ in range(90)]
    a, b = LandmarkSmoother(), LandmarkSmoother(blink_gate=None)
    for i, p in enumerate(noisy):
        np.testing.assert_array_equal(a(p, i / FPS), b(p, i / FPS))
    with pytest.raises(ValueError, match="blink_gate"):
        LandmarkSmoother(blink_gate=(0.8, 0.6))


def test_landmark_smoother_follows_moving_face() -> None:
    sm = LandmarkSmoother()
    for i in range(60):
        face = _face(1.0, (10.0 * i, 0.0))  # 300 px/s sideways
        out = sm(face, i / FPS)
    assert np.abs(out - face).max() < 10.0  # lags well under one frame of motion (10 px)
    sm.reset()
    far = _face(1.0, (500.0, 500.0))
    np.testing.assert_allclose(sm(far, 10.0), far, atol=1e-3)


def test_landmark_smoother_checks_input() -> None:
    sm = LandmarkSmoother()
    with pytest.raises(ValueError, match=r"\[68,2\]"):
        sm(np.zeros((5, 2), np.float32), 0.0)
    with pytest.raises(TypeError):
        sm(np.zeros((68, 2), np.int32), 0.0)


def test_normalise_units() -> None:
    norm, origin, scale = normalise(TEMPLATE_256.astype(np.float64))
    assert scale == pytest.approx(64.0, abs=0.5)
    np.testing.assert_allclose(origin, (128, 98), atol=0.5)
    assert interocular(norm) == pytest.approx(1.0)
