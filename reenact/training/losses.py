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

Beyond the paper (stage 2 only, opt-in with ``TrainConfig.extra_losses``; default weights in
``config.EXTRA_LOSS_DEFAULTS``): ``mouth_l1``, an L1
on the mouth alone, where a warp cannot supply content (teeth, the inside of an open mouth) and
the whole-crop L1 gives it ~3 % of its weight; ``feature_matching``, L1 between D_I's
intermediate features of the real and the generated face (pix2pixHD), a perceptual term that
needs no pretrained network; ``mouth_gan``, a second conditional PatchGAN (D_M) that sees only a
96² window around the mouth, so the adversarial signal is spent where sharp detail (teeth, lip
edges) is missing rather than spread over the whole face; ``identity``, the distance between dlib's
face descriptors (``training.identity``) of the real and the generated face, each cut on J_o's
chip with a small random jitter so that texture which fools only one exact alignment does not pay;
``gradient``, the gradient difference loss (Mathieu et al. 2016): L1 between the horizontal and
vertical pixel differences of the real and the generated face, which an L1 on pixels alone lets
blur (lip and jaw edges).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from reenact.face.rasterize import hull_mask
from reenact.face.topology import PARTS

_EPS = 1e-6

#: Jitter of the identity loss's chips: shift (chip pixels, each axis) and log-scale, standard deviations.
ID_JITTER = (1.0, 1.0, 0.02)
#: Side of the square window D_M sees, in canonical-crop pixels (the neutral mouth is ~51 x 19).
MOUTH_WINDOW = 96
#: Outer-lip points: the mouth region of ``mouth_mask``.
_OUTER_LIP = range(*PARTS["outer_lip"])


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


def mouth_mask(points: np.ndarray, size: int = 256, grow: int = 6) -> np.ndarray:
    """[B,1,size,size] float32 masks of the mouth: each face's outer-lip hull, grown by ``grow`` px.

    ``points`` [B,68,2] are the landmarks of the face the loss compares with (J_o for I_o).
    """
    pts = np.asarray(points, np.float64)
    if pts.ndim != 3 or pts.shape[1:] != (68, 2):
        raise ValueError(f"mouth_mask: need [B,68,2] points, got {pts.shape}")
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)) if grow > 0 else None
    out = np.zeros((len(pts), 1, size, size), np.float32)
    for i, p in enumerate(pts):
        m = hull_mask(p, _OUTER_LIP, size)
        out[i, 0] = cv2.dilate(m, kernel) if kernel is not None else m
    return out


def masked_l1(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean absolute error inside ``mask`` [N,1,H,W] per sample (an empty mask counts 0), then
    averaged over samples as :func:`l1` does (``weight`` [N] weights whole samples)."""
    err = ((a - b).abs() * mask).flatten(1).sum(1) / (mask.flatten(1).sum(1) * a.shape[1]).clamp_min(1.0)
    if weight is None:
        return err.mean()
    return (err * weight).sum() / weight.sum().clamp_min(_EPS)


def feature_matching(real_feats: list[torch.Tensor], fake_feats: list[torch.Tensor]) -> torch.Tensor:
    """pix2pixHD's feature matching: mean over D's layers of L1(fake features, real features);
    the real features are targets (no gradient)."""
    if len(real_feats) != len(fake_feats) or not real_feats:
        raise ValueError("feature_matching: need one non-empty list of features each for real and fake")
    return sum((f - r.detach()).abs().mean() for r, f in zip(real_feats, fake_feats, strict=True)) / len(real_feats)


def mouth_windows(points: np.ndarray, size: int = 256, win: int = MOUTH_WINDOW) -> np.ndarray:
    """[B,2] int (x0, y0): top-left corners of ``win``² windows centred on each face's mouth
    (mean of the 20 lip points), shifted to lie inside the ``size``² crop."""
    pts = np.asarray(points, np.float64)
    if pts.ndim != 3 or pts.shape[1:] != (68, 2):
        raise ValueError(f"mouth_windows: need [B,68,2] points, got {pts.shape}")
    if not 0 < win <= size:
        raise ValueError(f"mouth_windows: window {win} does not fit a {size}² crop")
    centre = pts[:, 48:68].mean(1)
    return np.clip(np.round(centre - win / 2), 0, size - win).astype(np.int64)


def crop_windows(images: torch.Tensor, corners: np.ndarray, win: int = MOUTH_WINDOW) -> torch.Tensor:
    """[N,C,win,win]: each image's window at its corner (slicing, so gradients flow back)."""
    return torch.stack([img[:, y : y + win, x : x + win] for img, (x, y) in zip(images, corners, strict=True)])


def identity_loss(net: torch.nn.Module, fake: torch.Tensor, real: torch.Tensor, points: np.ndarray,
                  rng: np.random.Generator, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean Euclidean distance between the dlib descriptors of ``fake`` and ``real`` (the real
    ones are targets, no gradient), both cut on the chip of ``points`` (J_o) with one random
    jitter per face (``ID_JITTER``)."""
    from reenact.training.identity import chip_grid, descriptors

    jitter = rng.normal(0.0, ID_JITTER, (len(points), 3))
    grid = chip_grid(points, fake.shape[-1], jitter)
    with torch.no_grad():
        d_real = descriptors(net, real, grid)
    dist = (descriptors(net, fake, grid) - d_real).norm(dim=1)
    if weight is None:
        return dist.mean()
    return (dist * weight).sum() / weight.sum().clamp_min(_EPS)


def gradient_difference(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Mean L1 between the horizontal and the vertical neighbour differences of two images [B,C,H,W]."""
    if fake.shape != real.shape or fake.dim() != 4:
        raise ValueError(f"gradient_difference: need two [B,C,H,W] images of one shape, got {tuple(fake.shape)}, {tuple(real.shape)}")

    def dx(t: torch.Tensor) -> torch.Tensor:
        return t[..., :, 1:] - t[..., :, :-1]

    def dy(t: torch.Tensor) -> torch.Tensor:
        return t[..., 1:, :] - t[..., :-1, :]

    return (dx(fake) - dx(real)).abs().mean() + (dy(fake) - dy(real)).abs().mean()
