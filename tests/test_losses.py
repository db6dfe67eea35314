"""Each loss of eq. (3)-(9) on small hand-made tensors with known values."""

from __future__ import annotations

import math

import torch

from reenact.config import TrainConfig
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
