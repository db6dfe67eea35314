"""Stage 2 (section V-B): Ω on the frozen Φ's J_gen, against D_I with eq. (9) and the opt-in extra losses.

The pix2pix baseline (section V-C) is this stage with ``TrainConfig.pix2pix``: Ω is fed the
source's own landmark image, with no Φ.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from reenact.config import TrainConfig
from reenact.errors import WeightsError
from reenact.face.eyes import retarget_eyes
from reenact.face.mouth import MouthGuide, jitter_guide, mouth_guide
from reenact.inputs import from_net, guided_omega_input, paper_omega_input, raster, to_net
from reenact.models import build_d_i, build_d_m, build_omega, build_phi, compose, zero_residual_
from reenact.training import losses
from reenact.training.batches import Batch
from reenact.training.extra_losses import OmegaTerms, extra_terms
from reenact.training.stage import Stage, frozen
from reenact.weights_io import load_state, read_config


class OmegaStage(Stage):
    """Ω(P_t, J_gen) → the target with the source's expression; Φ frozen, read from ``phi_dir``."""

    name = "omega"

    def __init__(self, cfg: TrainConfig, device: torch.device, rank: int, phi_dir: Path) -> None:
        super().__init__(cfg, device, rank)
        mcfg = self.mcfg
        # Φ is built even for pix2pix, which never uses it: the seeded initialisation of Ω and D_I
        # below then matches runs from before the trainer was split into stages
        self.phi = build_phi(mcfg).to(device)
        if cfg.pix2pix:
            if mcfg.variant != "paper":
                raise WeightsError("the pix2pix baseline uses the paper variant's Ω", hint="pass --variant paper")
            if cfg.omega_landmarks == "truth":
                raise WeightsError("omega_landmarks='truth' applies to stage 2 (Ω) only, not to Φ or the pix2pix baseline")
        else:
            self._load_phi(Path(phi_dir))
        gen = build_omega(mcfg).to(device)
        if mcfg.variant == "guided":
            zero_residual_(gen)  # start from the plain warp (a resumed run loads its own weights)
        disc = build_d_i(mcfg).to(device)
        self.terms = extra_terms(cfg.extra_losses)
        # D_M (mouth_gan): a second PatchGAN on mouth windows, trained beside D_I
        disc_m = build_d_m(mcfg).to(device) if "mouth_gan" in cfg.extra_losses else None
        self._set_networks(gen, disc, disc_m)
        # identity: dlib's face-recognition ResNet, frozen, read from face-recognition-models
        self.face_id: nn.Module | None = None
        if "identity" in cfg.extra_losses:
            from reenact.training.identity import load_face_id_net

            self.face_id = load_face_id_net().to(device)

    def _load_phi(self, src: Path) -> None:
        pcfg = read_config(src)
        if (pcfg.variant, pcfg.preset) != (self.mcfg.variant, self.mcfg.preset) or pcfg.preprocess != self.mcfg.preprocess:
            raise WeightsError(f"Φ in {src} is {pcfg.describe()}, but Ω is being trained as {self.mcfg.describe()}")
        self.phi.load_state_dict(load_state(src / "phi.safetensors", "phi", pcfg))
        self.phi.eval().requires_grad_(False)

    def check_resume(self, keys: set[str], out: Path) -> None:
        if self.disc_m_raw is not None and not any(k.startswith("disc_m.") for k in keys):
            raise WeightsError(f"checkpoint in {out} was trained without the mouth_gan loss, so it has no D_M to resume",
                               hint="use another --out folder, or resume without --extra-loss mouth_gan")

    # ------------------------------------------------------------------ Ω's input

    def _guide(self, b: Batch, i: int, jgen: np.ndarray, rng: np.random.Generator | None) -> MouthGuide | None:
        """Sample i's mouth guide (cfg.model.mouth_guide): the source's interior in J_gen's inner lips.
        While training (``rng``) its colour is jittered and it is left out for ``guide_drop`` of the
        samples, so Ω also paints interiors itself (``--mouth-interior generated``, a lost face)."""
        if not self.mcfg.mouth_guide:
            return None
        if rng is not None and rng.random() < self.cfg.guide_drop:
            return None
        g = mouth_guide(b.S[i], b.L_s[i], jgen, b.P_t[i], b.L_t[i])
        return jitter_guide(g, rng) if rng is not None else g

    def omega_inputs(self, b: Batch, truth: bool = False,
                     rng: np.random.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Ω input and, for guided, the warped target [B,3,256,256]; ``truth``: J_o stands in for J_gen.
        ``rng``: training draws (the mouth guide's jitter and drop-out); None: validation, as live runs."""
        if self.cfg.pix2pix:
            jgen = np.stack([raster(self.mcfg, p) for p in b.L_s])  # the source's own landmarks
        elif truth:
            jgen = b.J_o if self.mcfg.variant == "guided" else np.stack([raster(self.mcfg, p) for p in b.J_o])
        else:
            with torch.no_grad():
                jgen = self.fuse(self.phi, b).cpu().numpy()
            if self.mcfg.variant == "guided":  # the eye retargeting generate_crop applies after Φ
                jgen = np.stack([retarget_eyes(jgen[i], b.L_t[i], b.L_s[i], b.J_s[i]) for i in range(len(jgen))])
        if self.mcfg.variant == "guided":
            xs, ws = [], []
            for i in range(len(b.P_t)):
                x, warped = guided_omega_input(b.P_t[i], b.L_t[i], jgen[i], self.mcfg,
                                               guide=self._guide(b, i, jgen[i], rng))
                xs.append(x)
                ws.append(to_net(warped))
            return torch.as_tensor(np.stack(xs), device=self.device), torch.as_tensor(np.stack(ws), device=self.device)
        x = np.stack([paper_omega_input(b.P_t[i], jgen[i]) for i in range(len(b.P_t))])
        return torch.as_tensor(x, device=self.device), None

    def generate(self, x: torch.Tensor, warped: torch.Tensor | None, net: nn.Module | None = None) -> torch.Tensor:
        """Ω's output image: the network's, or (guided) its residual and mask composed on the warp."""
        y = (net or self.gen)(x)
        return y if warped is None else compose(warped, y)

    # ------------------------------------------------------------------ the step

    def train_step(self, b: Batch, step: int) -> dict[str, float]:
        guide_rng = np.random.default_rng([self.cfg.seed, step, self.rank, 2])
        x, warped = self.omega_inputs(b, truth=self.cfg.omega_landmarks == "truth", rng=guide_rng)
        P_t, I_o, wt = self._imgs(b.P_t), self._imgs(b.I_o), self._pts(b.weight)
        fake = self.generate(x, warped)
        # D_I step (eq. 7), conditioned on P_t
        self.opt_d.zero_grad(set_to_none=True)
        d_loss = losses.discriminator_loss(self.disc(P_t, I_o), self.disc(P_t, fake.detach()))
        d_loss.backward()
        self.opt_d.step()
        logs: dict[str, float] = {}
        mouth = None
        if self.disc_m is not None:
            mouth, logs["loss_dm"] = self._step_d_m(b, P_t, I_o, fake)
        # Ω step (eq. 9), plus the opt-in extra losses; the discriminators frozen
        self.opt_g.zero_grad(set_to_none=True)
        with frozen(self.disc_raw, self.disc_m_raw):
            d_fake, fake_feats = self.disc_raw.features(P_t, fake)
            cgan = losses.generator_adv_loss(d_fake)
            pix = losses.l1(fake, I_o, wt)
            total = losses.omega_total(cgan, pix, self.cfg.mus)
            s = OmegaTerms(fake, I_o, P_t, b.J_o, wt, self.disc_raw, fake_feats, mouth,
                           self.disc_m_raw, self.face_id, np.random.default_rng([self.cfg.seed, step, self.rank, 1]))
            for name, term_of in self.terms:
                term = term_of(s)
                total = total + self.cfg.extra_weight(name) * term
                logs[name] = term.item()
            total.backward()
        self.opt_g.step()
        return {"loss_g": total.item(), "cgan": cgan.item(), "l1": pix.item(), **logs, "loss_d": d_loss.item()}

    def _step_d_m(self, b: Batch, P_t: torch.Tensor, I_o: torch.Tensor,
                  fake: torch.Tensor) -> tuple[tuple[torch.Tensor, torch.Tensor], float]:
        """D_M's step: eq. (7) on mouth windows (placed by J_o, the face I_o shows); the
        (P_t, fake) windows, for mouth_gan's G term, and D_M's loss."""
        corners = losses.mouth_windows(b.J_o, fake.shape[-1])
        Pm, Im, Fm = (losses.crop_windows(t, corners) for t in (P_t, I_o, fake))
        self.opt_dm.zero_grad(set_to_none=True)
        dm_loss = losses.discriminator_loss(self.disc_m(Pm, Im), self.disc_m(Pm, Fm.detach()))
        dm_loss.backward()
        self.opt_dm.step()
        return (Pm, Fm), dm_loss.item()

    # ------------------------------------------------------------------ validation

    def val_scores(self, b: Batch, net: nn.Module) -> dict[str, list[float]]:
        """SSIM and PSNR of Ω's output (on Φ's J_gen) to I_o."""
        from reenact.eval.metrics import psnr, ssim

        x, warped = self.omega_inputs(b)
        fake = self.generate(x, warped, net).cpu().numpy()
        res: dict[str, list[float]] = {"val_ssim": [], "val_psnr": []}
        for k in range(len(fake)):
            g = from_net(fake[k])
            res["val_ssim"].append(ssim(g, b.I_o[k]))
            res["val_psnr"].append(psnr(g, b.I_o[k]))
        return res

    def best_of(self, val: dict[str, float]) -> tuple[str, float] | None:
        return ("val_ssim", -1.0) if "val_ssim" in val else None
