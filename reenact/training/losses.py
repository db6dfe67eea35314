"""The paper's losses, eq. (3)-(9), for both variants.

Reading of eq. (4), the cycle loss, whose notation is loose: Φ(a, b) transfers the
expression of ``a`` onto the face ``b``. The forward pass makes J_gen = Φ(L_s, L_t), the
target with the source's expression. Applying Φ back transfers J_gen's expression onto the
source's own reference face J_s (the source's neutral landmarks) and must recover L_s:

    L_cycle = || Φ(J_gen, J_s) − L_s ||_1

For the guided variant, Φ's "neutral" argument of the backward pass is L_t (the target is a
neutral photo): Φ_guided(src=J_gen, src_neutral=L_t, target=J_s) ≈ L_s.

The discriminators end in a Sigmoid (Table 2), so the adversarial terms are binary cross
entropy on probabilities, clamped away from 0 and 1; the PatchGAN map is averaged (the
paper: "the mean value of the feature map of size 30x30 is used for the loss").
"""

from __future__ import annotations

import torch

_EPS = 1e-6


def bce(prob: torch.Tensor, target_is_real: bool) -> torch.Tensor:
    """Mean binary cross entropy of discriminator probabilities against all-real or all-fake."""
    p = prob.clamp(_EPS, 1 - _EPS)
    return -(torch.log(p) if target_is_real else torch.log1p(-p)).mean()


def discriminator_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """Eq. (3)/(7) maximised by D: −[log D(real) + log(1 − D(fake))], halved as in pix2pix."""
    return 0.5 * (bce(d_real, True) + bce(d_fake, False))


def generator_adv_loss(d_fake: torch.Tensor) -> torch.Tensor:
    """Eq. (3)/(7) for the generator, non-saturating form: −log D(G(z))."""
    return bce(d_fake, True)


def l1(a: torch.Tensor, b: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean absolute error (eq. 5 and eq. 8); ``weight`` [N] weights whole samples."""
    err = (a - b).abs().flatten(1).mean(1)
    if weight is None:
        return err.mean()
    return (err * weight).sum() / weight.sum().clamp_min(_EPS)


def phi_total(adv: torch.Tensor, cycle: torch.Tensor, rec: torch.Tensor, lambdas: tuple[float, float, float]) -> torch.Tensor:
    """Eq. (6): L_Φ = λ1 L_adv + λ2 L_cycle + λ3 L_1, λ = (0.1, 10, 100) in the paper."""
    return lambdas[0] * adv + lambdas[1] * cycle + lambdas[2] * rec


def omega_total(cgan: torch.Tensor, pix: torch.Tensor, mus: tuple[float, float]) -> torch.Tensor:
    """Eq. (9): L_Ω = μ1 L_cGAN + μ2 L_pix, μ = (1, 100) in the paper."""
    return mus[0] * cgan + mus[1] * pix
