"""What a training stage puts on the shared loop (``trainer.Trainer``): its networks, one step, its validation.

Both stages of section V-B are pix2pix GAN stages: a generator G (Φ or Ω) and a discriminator D
(D_J or D_I), each with its Adam optimiser; a step is a D step, then a G step in which D is
frozen (``frozen``: D is judged through, not trained). The loop owns everything the two share
(batches, seeding, EMA, checkpoints, validation schedule, metrics, DDP); a stage owns what
differs (``PhiStage``, ``OmegaStage``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn

from reenact.config import TrainConfig
from reenact.inputs import raster, to_net
from reenact.training.batches import Batch


@contextmanager
def frozen(*nets: nn.Module | None) -> Iterator[None]:
    """Inside, the parameters of ``nets`` need no gradient (the G step judges through D without
    training it); each parameter's own flag is restored on leaving."""
    params = [p for net in nets if net is not None for p in net.parameters()]
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, flags, strict=True):
            p.requires_grad_(flag)


class Stage:
    """One stage's generator and discriminator(s), their optimisers, its step and validation.

    ``gen_raw``/``disc_raw`` are the networks; ``gen``/``disc`` the same, wrapped in
    DistributedDataParallel once ``distribute`` ran (D steps and G forwards go through the
    wrappers, so gradients are averaged over ranks; the frozen D of a G step is called unwrapped).
    """

    name = ""  # 'phi' | 'omega': the weights file (<name>.safetensors) and the checkpoint's name

    def __init__(self, cfg: TrainConfig, device: torch.device, rank: int) -> None:
        self.cfg, self.mcfg, self.device, self.rank = cfg, cfg.model, device, rank

    def _set_networks(self, gen: nn.Module, disc: nn.Module, disc_m: nn.Module | None = None) -> None:
        """Place the networks and build their optimisers (G at lr_g, D and D_M at lr_d)."""
        cfg = self.cfg
        self.gen_raw, self.disc_raw, self.disc_m_raw = gen, disc, disc_m
        self.gen, self.disc, self.disc_m = gen, disc, disc_m
        self.opt_g = torch.optim.Adam(gen.parameters(), lr=cfg.lr_g, betas=cfg.betas)
        self.opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.lr_d, betas=cfg.betas)
        self.opt_dm = torch.optim.Adam(disc_m.parameters(), lr=cfg.lr_d, betas=cfg.betas) if disc_m is not None else None

    def distribute(self) -> None:
        """Wrap the trained networks in DistributedDataParallel (under torchrun)."""
        from torch.nn.parallel import DistributedDataParallel as DDP

        self.gen, self.disc = DDP(self.gen_raw), DDP(self.disc_raw)
        if self.disc_m_raw is not None:
            self.disc_m = DDP(self.disc_m_raw)

    def networks(self) -> list[tuple[str, nn.Module]]:
        """The trained networks with their checkpoint key prefixes."""
        nets = [("gen.", self.gen_raw), ("disc.", self.disc_raw)]
        return nets + ([("disc_m.", self.disc_m_raw)] if self.disc_m_raw is not None else [])

    def optimizers(self) -> list[tuple[str, torch.optim.Optimizer]]:
        """The optimisers with their checkpoint key prefixes."""
        opts = [("opt_g.", self.opt_g), ("opt_d.", self.opt_d)]
        return opts + ([("opt_dm.", self.opt_dm)] if self.opt_dm is not None else [])

    def check_resume(self, keys: set[str], out: Path) -> None:
        """Refuse a checkpoint that lacks a network this stage trains (default: nothing to check)."""

    def train_mode(self) -> None:
        self.gen.train()
        self.disc.train()

    def train_step(self, b: Batch, step: int) -> dict[str, float]:
        """One D step and one G step on ``b``; the logged figures."""
        raise NotImplementedError

    def val_scores(self, b: Batch, net: nn.Module) -> dict[str, list[float]]:
        """Per-pair validation figures of the generator ``net`` (eval mode, no gradient)."""
        raise NotImplementedError

    def best_of(self, val: dict[str, float]) -> tuple[str, float] | None:
        """The validation figure that picks the best weights and its sign (+1: lower is better)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ tensors

    def fuse(self, phi: nn.Module, b: Batch) -> torch.Tensor:
        """J_gen = Φ(L_s, L_t) from the Φ network ``phi``: [B,68,2] (guided, which also takes J_s)
        or [B,1,256,256] (paper). Stage 1 validates with it, stage 2 feeds Ω with it."""
        if self.mcfg.variant == "guided":
            return phi(self._pts(b.L_s), self._pts(b.J_s), self._pts(b.L_t))
        return phi(self._raster(b.L_s), self._raster(b.L_t))

    def _pts(self, a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(a, device=self.device)

    def _imgs(self, a: np.ndarray) -> torch.Tensor:  # [B,H,W,3] uint8 -> [B,3,H,W] [-1,1]
        return torch.as_tensor(np.stack([to_net(x) for x in a]), device=self.device)

    def _raster(self, pts: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.stack([raster(self.mcfg, p) for p in pts]), device=self.device)
