"""The opt-in additions to L_Ω (eq. 9), one function each, registered by name.

The names and default weights are ``config.EXTRA_LOSS_DEFAULTS`` (a config names them without
importing torch); ``TrainConfig.extra_losses`` switches them on. The Ω step adds
``weight × term`` for each one switched on, in this registry's order whatever the order given,
so a run does not depend on the order of ``--extra-loss`` flags. What each loss is and why: the
docstring of ``training.losses``.

A term is a function of ``OmegaTerms``, what one Ω step offers: Ω's output, the truth, D_I (frozen,
with its features of the output already computed), and the networks some losses bring (D_M for
``mouth_gan``, trained beside D_I by the Ω stage; dlib's face-recognition ResNet for ``identity``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from reenact.errors import ConfigError
from reenact.training import losses


@dataclass
class OmegaTerms:
    """One Ω step, as the extra losses see it (images [B,3,256,256] in [-1,1])."""

    fake: torch.Tensor  # Ω's output, with gradient to Ω
    real: torch.Tensor  # I_o
    condition: torch.Tensor  # P_t, D_I's condition
    J_o: np.ndarray  # [B,68,2] the truth's landmarks: they place the mouth and the identity chip
    weight: torch.Tensor  # [B] sample weights
    disc: nn.Module  # D_I, unwrapped and frozen
    fake_features: list[torch.Tensor]  # D_I's hidden activations on (P_t, fake), with gradient to Ω
    mouth: tuple[torch.Tensor, torch.Tensor] | None = None  # (P_t, fake) mouth windows, cut for D_M's step
    disc_m: nn.Module | None = None  # D_M (mouth_gan), unwrapped and frozen
    face_id: nn.Module | None = None  # dlib's face-recognition ResNet (identity), frozen
    jitter_rng: np.random.Generator | None = None  # the identity chips' jitter, seeded by (seed, step, rank)


Term = Callable[[OmegaTerms], torch.Tensor]

#: name -> unweighted term; the Ω step's order
EXTRA_LOSSES: dict[str, Term] = {}


def register(name: str) -> Callable[[Term], Term]:
    """Register ``fn`` as the extra loss ``name`` (the name must also be in config.EXTRA_LOSS_DEFAULTS)."""

    def add(fn: Term) -> Term:
        EXTRA_LOSSES[name] = fn
        return fn

    return add


def extra_terms(names: tuple[str, ...]) -> list[tuple[str, Term]]:
    """The registered terms of ``names``, in the registry's order."""
    unknown = [n for n in names if n not in EXTRA_LOSSES]
    if unknown:
        raise ConfigError(f"unknown extra losses {unknown}; expected some of {', '.join(EXTRA_LOSSES)}")
    return [(n, fn) for n, fn in EXTRA_LOSSES.items() if n in names]


@register("mouth_l1")
def mouth_l1(s: OmegaTerms) -> torch.Tensor:
    """L1 inside the truth's mouth (outer-lip hull of J_o, grown)."""
    mask = torch.as_tensor(losses.mouth_mask(s.J_o, s.fake.shape[-1]), device=s.fake.device)
    return losses.masked_l1(s.fake, s.real, mask, s.weight)


@register("feature_matching")
def feature_matching(s: OmegaTerms) -> torch.Tensor:
    """L1 between D_I's features of the real face (targets, no gradient) and of Ω's output."""
    with torch.no_grad():
        _, real_feats = s.disc.features(s.condition, s.real)
    return losses.feature_matching(real_feats, s.fake_features)


@register("mouth_gan")
def mouth_gan(s: OmegaTerms) -> torch.Tensor:
    """D_M's adversarial term on the mouth window of Ω's output."""
    if s.disc_m is None or s.mouth is None:
        raise ValueError("mouth_gan needs D_M and the mouth windows of the step")
    condition, fake = s.mouth
    return losses.generator_adv_loss(s.disc_m(condition, fake))


@register("gradient")
def gradient(s: OmegaTerms) -> torch.Tensor:
    """L1 between the pixel differences of the real face and of Ω's output."""
    return losses.gradient_difference(s.fake, s.real)


@register("identity")
def identity(s: OmegaTerms) -> torch.Tensor:
    """Distance between dlib's face descriptors of the real face and of Ω's output, on J_o's chip."""
    if s.face_id is None or s.jitter_rng is None:
        raise ValueError("identity needs the face-recognition network and the step's jitter generator")
    return losses.identity_loss(s.face_id, s.fake, s.real, s.J_o, s.jitter_rng, s.weight)
