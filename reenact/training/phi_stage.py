"""Stage 1 (section V-B): Φ, the landmark fusion, against D_J with eq. (6)."""

from __future__ import annotations

import torch
from torch import nn

from reenact.config import TrainConfig
from reenact.errors import WeightsError
from reenact.models import build_d_j, build_phi
from reenact.training import losses
from reenact.training.batches import Batch
from reenact.training.stage import Stage, frozen


class PhiStage(Stage):
    """Φ(L_s, L_t) → J_gen, trained with the adversarial, cycle and L1 terms of eq. (6)."""

    name = "phi"

    def __init__(self, cfg: TrainConfig, device: torch.device, rank: int) -> None:
        super().__init__(cfg, device, rank)
        if cfg.extra_losses:
            raise WeightsError(f"extra losses {list(cfg.extra_losses)} apply to stage 2 (Ω) only, not to Φ")
        if cfg.omega_landmarks == "truth":
            raise WeightsError("omega_landmarks='truth' applies to stage 2 (Ω) only, not to Φ or the pix2pix baseline")
        self._set_networks(build_phi(self.mcfg).to(device), build_d_j(self.mcfg).to(device))

    def train_step(self, b: Batch, step: int) -> dict[str, float]:
        wt = self._pts(b.weight)
        if self.mcfg.variant == "guided":
            L_s, J_s, L_t, J_o = (self._pts(a) for a in (b.L_s, b.J_s, b.L_t, b.J_o))
            jgen = self.gen(L_s, J_s, L_t)
            back = self.gen(jgen, L_t, J_s)  # eq. 4, guided reading: J_gen's expression back onto J_s
            scale = 1.0 / self.mcfg.preprocess.crop_size  # coordinate losses in crop-normalised units
            rec = losses.l1(jgen * scale, J_o * scale, wt)
            cyc = losses.l1(back * scale, L_s * scale, wt)
        else:
            L_s, J_s, L_t, J_o = (self._raster(a) for a in (b.L_s, b.J_s, b.L_t, b.J_o))
            jgen = self.gen(L_s, L_t)
            back = self.gen(jgen, J_s)  # eq. 4: Φ(J_gen, J_s) ≈ L_s
            rec = losses.l1(jgen, J_o, wt)
            cyc = losses.l1(back, L_s, wt)
        # D_J step (eq. 3)
        self.opt_d.zero_grad(set_to_none=True)
        d_loss = losses.discriminator_loss(self.disc(J_o), self.disc(jgen.detach()))
        d_loss.backward()
        self.opt_d.step()
        # Φ step (eq. 6), D_J frozen
        self.opt_g.zero_grad(set_to_none=True)
        with frozen(self.disc_raw):
            adv = losses.generator_adv_loss(self.disc_raw(jgen))
            total = losses.phi_total(adv, cyc, rec, self.cfg.lambdas)
            total.backward()
        self.opt_g.step()
        return {"loss_g": total.item(), "adv": adv.item(), "cycle": cyc.item(), "l1": rec.item(), "loss_d": d_loss.item()}

    def val_scores(self, b: Batch, net: nn.Module) -> dict[str, list[float]]:
        """Landmark error in crop pixels (guided) or the landmark image's L1 (paper), to J_o."""
        jgen = self.fuse(net, b)
        if self.mcfg.variant == "guided":
            return {"val_landmark_px": (jgen - self._pts(b.J_o)).norm(dim=2).mean(1).cpu().tolist()}
        return {"val_l1": (jgen - self._raster(b.J_o)).abs().flatten(1).mean(1).cpu().tolist()}

    def best_of(self, val: dict[str, float]) -> tuple[str, float] | None:
        key = "val_landmark_px" if "val_landmark_px" in val else "val_l1"
        return (key, 1.0) if key in val else None
