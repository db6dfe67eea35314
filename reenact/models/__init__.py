"""The networks (torch). Importing this package imports torch; the live path never does."""

from __future__ import annotations

from torch import nn

from reenact.config import ModelConfig
from reenact.models.discriminator import LandmarkCoordDiscriminator, LandmarkImageDiscriminator, MarkovDiscriminator
from reenact.models.omega import ExpressionTransfer, UNetGenerator, compose, zero_residual_
from reenact.models.phi import GuidedLandmarkFusion, LandmarkFusion


def build_phi(cfg: ModelConfig) -> nn.Module:
    """Φ for the config's variant."""
    return LandmarkFusion(cfg) if cfg.variant == "paper" else GuidedLandmarkFusion(cfg)


def build_omega(cfg: ModelConfig) -> ExpressionTransfer:
    """Ω for the config's variant and width."""
    return ExpressionTransfer(cfg)


def build_d_j(cfg: ModelConfig) -> nn.Module:
    """D_J for the config's variant (image PatchGAN or coordinate MLP)."""
    return LandmarkImageDiscriminator(cfg.phi_width) if cfg.variant == "paper" else LandmarkCoordDiscriminator(cfg.phi_hidden)


def build_d_i(cfg: ModelConfig) -> MarkovDiscriminator:
    """D_I (Table 2), conditioned on P_t: 3 + 3 input channels."""
    return MarkovDiscriminator(6, cfg.base_width)


def build_d_m(cfg: ModelConfig) -> MarkovDiscriminator:
    """D_M (beyond the paper, ``mouth_gan``): D_I's architecture on mouth windows of P_t and the face."""
    return MarkovDiscriminator(6, cfg.base_width)


__all__ = [
    "ExpressionTransfer",
    "GuidedLandmarkFusion",
    "LandmarkCoordDiscriminator",
    "LandmarkFusion",
    "LandmarkImageDiscriminator",
    "MarkovDiscriminator",
    "UNetGenerator",
    "build_d_i",
    "build_d_m",
    "build_d_j",
    "build_omega",
    "build_phi",
    "compose",
    "zero_residual_",
]
