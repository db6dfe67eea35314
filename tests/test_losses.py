"""Each loss of eq. (3)-(9) on small hand-made tensors with known values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from reenact.config import TrainConfig
from reenact.face.topology import TEMPLATE_256
from reenact.training import losses


def test_bce_known_values():
    half = torch.full((2, 1, 30, 30), 0.5)
    assert math.isclose(losses.bce(half, True).item(), math.log(2), rel_tol=1e-6)
    assert math.isclose(losses.bce(half, False).item(), math.log(2), rel_tol=1e-6)
    p = torch.tensor([0.9, 0.2])
    assert math.isclose(losses.bce(p, True).item(), -(math.log(0.9) + math.log(0.2)) / 2, rel_tol=1e-6)
    assert math.isclose(losses.bce(p, False).item(), -(math.log(0.1) + math.log(0.8)) / 2, rel_tol=1e-6)


def test_bce_is_finite_at_saturation():
    assert torch.isfinite(losses.bce(torch.tensor([0.0, 1.0]), True))


def test_discriminator_and_generator_adversarial_losses():
    real, fake = torch.tensor([0.8]), torch.tensor([0.3])
    d = losses.discriminator_loss(real, fake).item()
    assert math.isclose(d, 0.5 * (-math.log(0.8) - math.log(0.7)), rel_tol=1e-6)
    g = losses.generator_adv_loss(fake).item()
    assert math.isclose(g, -math.log(0.3), rel_tol=1e-6)


def test_l1_and_weighted_l1():
    a = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    b = torch.tensor([[0.0, 0.0], [0.0, 4.0]])
    assert math.isclose(losses.l1(a, b).item(), (1.5 + 2.0) / 2)
    w = torch.tensor([1.0, 3.0])
    assert math.isclose(losses.l1(a, b, w).item(), (1.5 * 1 + 2.0 * 3) / 4)


def test_totals_use_the_paper_weights():
    cfg = TrainConfig()
    assert cfg.lambdas == (0.1, 10.0, 100.0) and cfg.mus == (1.0, 100.0)
    one = torch.tensor(1.0)
    assert math.isclose(losses.phi_total(one, 2 * one, 3 * one, cfg.lambdas).item(), 0.1 + 20 + 300, rel_tol=1e-6)
    assert losses.omega_total(2 * one, 3 * one, cfg.mus).item() == 2 + 300
    assert cfg.betas == (0.5, 0.999) and cfg.batch_size == 8 and cfg.lr_g == 2e-4 and cfg.lr_d == 1e-4


# --------------------------------------------------------------------------- extra losses (beyond the paper)


def _face_points() -> np.ndarray:
    from reenact.face.align import template

    return template(256)


def test_extra_loss_weights_default_override_and_round_trip():
    from reenact.config import EXTRA_LOSS_DEFAULTS

    cfg = TrainConfig(extra_losses=("mouth_l1", "gradient"), extra_loss_weights=(("mouth_l1", 50.0),))
    assert cfg.extra_weight("mouth_l1") == 50.0 and cfg.extra_weight("gradient") == EXTRA_LOSS_DEFAULTS["gradient"] == 100.0
    d = cfg.to_dict()
    assert d["extra_loss_weights"] == {"mouth_l1": 50.0, "gradient": 100.0}  # the record names every used weight
    back = TrainConfig.from_dict(d)
    assert back.extra_weight("mouth_l1") == 50.0 and back.extra_weight("gradient") == 100.0
    # a record written before weights were recorded reads back with the defaults
    d.pop("extra_loss_weights")
    assert TrainConfig.from_dict(d).extra_weight("mouth_l1") == 25.0


def test_mouth_mask_covers_the_mouth_and_nothing_of_the_eyes():
    pts = _face_points()
    m = losses.mouth_mask(pts[None], 256, grow=0)
    assert m.shape == (1, 1, 256, 256) and m.dtype == np.float32
    for x, y in np.round(pts[48:68]).astype(int):  # every lip point is inside (hull edges included)
        assert m[0, 0, y, x] == 1.0
    for x, y in np.round(pts[36:48]).astype(int):  # eyes are not
        assert m[0, 0, y, x] == 0.0
    grown = losses.mouth_mask(pts[None], 256, grow=6)
    assert grown.sum() > m.sum() and np.all(grown >= m)
    with pytest.raises(ValueError, match="68"):
        losses.mouth_mask(pts[None, :60])


def test_masked_l1_is_the_mean_error_inside_the_mask_only():
    a = torch.zeros(2, 3, 4, 4)
    b = torch.zeros(2, 3, 4, 4)
    b[0, :, :2, :2] = 0.5  # inside sample 0's mask
    b[0, :, 3, 3] = 9.0  # outside it: must not count
    mask = torch.zeros(2, 1, 4, 4)
    mask[0, :, :2, :] = 1.0  # 8 pixels, 4 of them with error 0.5
    got = losses.masked_l1(a, b, mask)  # sample 0: 0.25, sample 1: empty mask -> 0
    assert math.isclose(got.item(), (0.25 + 0.0) / 2, rel_tol=1e-6)
    w = torch.tensor([1.0, 0.0])
    assert math.isclose(losses.masked_l1(a, b, mask, w).item(), 0.25, rel_tol=1e-6)


def test_feature_matching_is_zero_for_equal_features_and_trains_only_the_fake():
    real = [torch.ones(1, 2, 3, 3), torch.zeros(1, 1, 2, 2)]
    fake = [torch.ones(1, 2, 3, 3, requires_grad=True), torch.full((1, 1, 2, 2), 0.5, requires_grad=True)]
    assert losses.feature_matching(real, [f.detach().clone() for f in real]).item() == 0.0
    r = [t.clone().requires_grad_(True) for t in real]
    v = losses.feature_matching(r, fake)
    assert math.isclose(v.item(), (0.0 + 0.5) / 2, rel_tol=1e-6)
    v.backward()
    assert r[0].grad is None and fake[1].grad is not None
    with pytest.raises(ValueError):
        losses.feature_matching([], [])


def test_markov_discriminator_features_end_in_its_output():
    from reenact.models import MarkovDiscriminator

    torch.manual_seed(0)
    d = MarkovDiscriminator(6, 4).eval()
    c, x = torch.randn(1, 3, 64, 64), torch.randn(1, 3, 64, 64)
    out, feats = d.features(c, x)
    assert len(feats) == 4 and torch.allclose(out, d(c, x))


def test_unknown_extra_loss_is_a_config_error():
    from reenact.errors import ConfigError

    with pytest.raises(ConfigError, match="perceptual"):
        TrainConfig(extra_losses=("perceptual",))
    with pytest.raises(ConfigError, match="not switched on"):
        TrainConfig(extra_losses=("gradient",), extra_loss_weights=(("mouth_l1", 50.0),))
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ConfigError, match="positive number"):
            TrainConfig(extra_losses=("mouth_l1",), extra_loss_weights=(("mouth_l1", bad),))


def test_mouth_windows_centre_the_mouth_and_stay_inside_the_crop():
    pts = TEMPLATE_256[None].astype(np.float64)
    (x0, y0), = losses.mouth_windows(pts, 256, 96)
    centre = pts[0, 48:68].mean(0)
    assert abs(x0 + 48 - centre[0]) <= 0.5 and abs(y0 + 48 - centre[1]) <= 0.5
    low = pts + np.array([0.0, 200.0])  # mouth pushed below the crop: the window is shifted back in
    (x1, y1), = losses.mouth_windows(low, 256, 96)
    assert y1 == 256 - 96 and x1 == x0
    with pytest.raises(ValueError, match="window"):
        losses.mouth_windows(pts, 256, 300)


def test_crop_windows_cuts_each_image_at_its_corner_and_passes_gradients():
    imgs = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8).requires_grad_(True)
    out = losses.crop_windows(imgs, np.array([[1, 2], [4, 0]]), win=4)
    assert out.shape == (2, 3, 4, 4)
    assert torch.equal(out[0], imgs[0, :, 2:6, 1:5]) and torch.equal(out[1], imgs[1, :, 0:4, 4:8])
    out.sum().backward()
    assert imgs.grad[0, :, 2:6, 1:5].eq(1).all() and imgs.grad[0].sum() == 3 * 16


def test_gradient_difference_sees_edges_that_pixel_l1_cannot_tell_apart():
    real = torch.zeros(1, 3, 8, 8)
    real[..., :, 4:] = 1.0  # a vertical edge
    assert losses.gradient_difference(real, real).item() == 0.0
    blurred = real.clone()
    blurred[..., :, 3] = 0.5  # the same edge, smeared over two steps of 0.5
    brighter = real + 0.0625  # a uniform offset with the same pixel L1 as the smear
    assert torch.allclose((blurred - real).abs().mean(), (brighter - real).abs().mean())
    # horizontal differences: 7 per row, the smear changes two of them by 0.5 each -> 1/7
    assert losses.gradient_difference(blurred, real).item() == pytest.approx(1.0 / 7)
    assert losses.gradient_difference(brighter, real).item() == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(ValueError, match="one shape"):
        losses.gradient_difference(real, real[..., :4])
