"""One Euro filter: less jitter on a still signal, little lag on a ramp with beta > 0."""

from __future__ import annotations

import numpy as np
import pytest

from reenact.face.smoothing import LandmarkSmoother, OneEuroConfig, OneEuroFilter, normalise
from reenact.face.topology import TEMPLATE_256, interocular

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
    rng = np.random.default_rng(1)
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
        raw_err = np.abs(np.array(raw[30:]) - clean).mean() / iod
        out_err = np.abs(np.array(out[30:]) - clean).mean() / iod
        ratios.append(out_err / raw_err)
    assert all(r < 0.5 for r in ratios)
    assert abs(ratios[0] - ratios[1]) < 0.15  # same behaviour near and far


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
