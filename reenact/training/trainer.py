"""The two training stages of section V-B, for both variants.

Stage 1 (``phi``) trains Φ with eq. (6); stage 2 (``omega``) freezes Φ and trains Ω on Φ's
output with eq. (9). Each step is the pix2pix GAN step: a D step, then a G step.

Determinism: the batch and the flips of step k are drawn from a generator seeded with
(seed, k, rank), so a resumed run continues the same loss curve as an uninterrupted one.
Checkpoints (every K steps) hold the networks, the discriminator and both Adam states: one
safetensors file whose header carries the JSON state (step, config, optimiser groups), written
atomically, so tensors and state of two different steps can never be paired. Under ``torchrun`` the networks are wrapped in
DistributedDataParallel (gloo on CPU, nccl on CUDA) and rank 0 alone writes files.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from reenact.config import TrainConfig
from reenact.data.datasets import FaceBank, Pair, make_pairs
from reenact.errors import WeightsError
from reenact.face.flip import flip_image, flip_points
from reenact.inputs import guided_omega_input, paper_omega_input, raster, to_net
from reenact.models import build_d_i, build_d_j, build_d_m, build_omega, build_phi, compose, zero_residual_
from reenact.training import losses
from reenact.weights_io import (
    atomic_write_bytes,
    atomic_write_json,
    load_state,
    read_config,
    read_meta,
    save_state,
    write_config,
)

log = logging.getLogger(__name__)

CKPT_STATE = "checkpoint_{stage}.safetensors"
CKPT_META = "checkpoint_{stage}.json"  # the state beside the tensors in checkpoints written before 2026-11-30 (read only)
CKPT_META_KEY = "reenact.checkpoint"  # the state, as JSON, in the checkpoint's safetensors header


@dataclass
class Batch:
    """One batch in numpy, everything in the canonical crop."""

    P_t: np.ndarray  # [B,256,256,3] uint8
    L_t: np.ndarray  # [B,68,2]
    L_s: np.ndarray
    J_s: np.ndarray
    J_o: np.ndarray
    I_o: np.ndarray  # [B,256,256,3] uint8
    weight: np.ndarray  # [B]


def _flip_sample(crops: list[np.ndarray], points: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    w = crops[0].shape[1]
    return [flip_image(c) for c in crops], [flip_points(p, w) for p in points]


def make_batch(bank: FaceBank, pairs: list[Pair], rng: np.random.Generator, batch_size: int, flip: bool = True) -> Batch:
    """Draw a batch: photo and video pairs half and half when both exist; random left-right flips."""
    photo = [p for p in pairs if p.kind == "photo"]
    video = [p for p in pairs if p.kind == "video"]
    chosen = []
    for _ in range(batch_size):
        pool = photo if (photo and (not video or rng.random() < 0.5)) else video
        chosen.append(pool[int(rng.integers(len(pool)))])
    cols: dict[str, list] = {k: [] for k in ("P_t", "L_t", "L_s", "J_s", "J_o", "I_o", "weight")}
    for p in chosen:
        crops = [bank.crops[p.target], bank.crops[p.truth]]
        pts = [bank.points[p.target], bank.points[p.source], bank.points[p.source_neutral], bank.points[p.truth]]
        if flip and rng.random() < 0.5:
            crops, pts = _flip_sample(crops, pts)
        cols["P_t"].append(crops[0])
        cols["I_o"].append(crops[1])
        for k, v in zip(("L_t", "L_s", "J_s", "J_o"), pts, strict=True):
            cols[k].append(v)
        cols["weight"].append(min(bank.weights[p.target], bank.weights[p.truth]))
    return Batch(**{k: np.stack(v).astype(np.float32 if k not in ("P_t", "I_o") else np.uint8) for k, v in cols.items()})


def _dist() -> tuple[int, int]:
    """(rank, world size) when launched by torchrun, else (0, 1)."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


class Trainer:
    """Runs one stage. ``out_dir`` is the weights folder (config.json, phi/omega.safetensors)."""

    def __init__(self, cfg: TrainConfig, bank: FaceBank, out_dir: str | os.PathLike, val_bank: FaceBank | None = None,
                 phi_dir: str | os.PathLike | None = None) -> None:
        self.cfg = cfg
        self.mcfg = cfg.model
        self.bank = bank
        self.out = Path(out_dir)
        self.rank, self.world = _dist()
        self.device = torch.device(cfg.device)
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        torch.manual_seed(cfg.seed)
        self.pairs = make_pairs(bank, "train", seed=cfg.seed)
        if not self.pairs:
            raise WeightsError("no training pairs: the train split has no usable faces", hint="check the dataset folder and the landmark report")
        vb = val_bank or bank
        vpairs = make_pairs(vb, "val", seed=cfg.seed)
        vr = np.random.default_rng(cfg.seed + 1)
        self.val_bank = vb
        n_val = len(vpairs) if cfg.stage == "phi" else min(cfg.val_pairs, len(vpairs))  # Φ validation is cheap: use all
        self.val_pairs = [vpairs[i] for i in sorted(vr.choice(len(vpairs), n_val, replace=False))] if vpairs else []
        n_targets = len({p.target for p in self.pairs})
        self.steps_per_epoch = max(1, math.ceil(n_targets / cfg.batch_size))
        self.val_every = cfg.val_every or self.steps_per_epoch

        self.phi = build_phi(self.mcfg).to(self.device)
        if cfg.stage == "phi":
            self.gen: nn.Module = self.phi
            self.disc: nn.Module = build_d_j(self.mcfg).to(self.device)
        elif cfg.pix2pix:
            # the pix2pix baseline (section V-C): Ω fed the source's landmark image directly, no Φ
            if self.mcfg.variant != "paper":
                raise WeightsError("the pix2pix baseline uses the paper variant's Ω", hint="pass --variant paper")
            self.gen = build_omega(self.mcfg).to(self.device)
            self.disc = build_d_i(self.mcfg).to(self.device)
        else:
            src = Path(phi_dir) if phi_dir else self.out
            pcfg = read_config(src)
            if (pcfg.variant, pcfg.preset) != (self.mcfg.variant, self.mcfg.preset) or pcfg.preprocess != self.mcfg.preprocess:
                raise WeightsError(f"Φ in {src} is {pcfg.describe()}, but Ω is being trained as {self.mcfg.describe()}")
            self.phi.load_state_dict(load_state(src / "phi.safetensors", "phi", pcfg))
            self.phi.eval().requires_grad_(False)
            self.gen = build_omega(self.mcfg).to(self.device)
            if self.mcfg.variant == "guided":
                zero_residual_(self.gen)  # start from the plain warp (a resumed run loads its own weights)
            self.disc = build_d_i(self.mcfg).to(self.device)
        if cfg.extra_losses and cfg.stage != "omega":
            raise WeightsError(f"extra losses {list(cfg.extra_losses)} apply to stage 2 (Ω) only, not to Φ")
        if cfg.omega_landmarks == "truth" and (cfg.stage != "omega" or cfg.pix2pix):
            raise WeightsError("omega_landmarks='truth' applies to stage 2 (Ω) only, not to Φ or the pix2pix baseline")
        # D_M (mouth_gan): a second PatchGAN on mouth windows, trained beside D_I
        self.disc_m: nn.Module | None = build_d_m(self.mcfg).to(self.device) if "mouth_gan" in cfg.extra_losses else None
        # identity: dlib's face-recognition ResNet, frozen, read from face-recognition-models
        self.face_id: nn.Module | None = None
        if "identity" in cfg.extra_losses:
            from reenact.training.identity import load_face_id_net

            self.face_id = load_face_id_net().to(self.device)
        self.gen_raw, self.disc_raw, self.disc_m_raw = self.gen, self.disc, self.disc_m
        # the moving average of the generator (cfg.ema): starts at the initial weights (for guided Ω,
        # the plain warp), is never trained, and is what validation scores and the weights file holds
        self.ema: nn.Module | None = None
        if cfg.ema > 0:
            self.ema = copy.deepcopy(self.gen_raw).eval().requires_grad_(False)
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            self.gen, self.disc = DDP(self.gen), DDP(self.disc)
            if self.disc_m is not None:
                self.disc_m = DDP(self.disc_m)
        self.opt_g = torch.optim.Adam(self.gen.parameters(), lr=cfg.lr_g, betas=cfg.betas)
        self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=cfg.lr_d, betas=cfg.betas)
        self.opt_dm = torch.optim.Adam(self.disc_m.parameters(), lr=cfg.lr_d, betas=cfg.betas) if self.disc_m is not None else None
        self.step = 0

    # ------------------------------------------------------------------ tensors

    def _pts(self, a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(a, device=self.device)

    def _imgs(self, a: np.ndarray) -> torch.Tensor:  # [B,H,W,3] uint8 -> [B,3,H,W] [-1,1]
        return torch.as_tensor(np.stack([to_net(x) for x in a]), device=self.device)

    def _raster(self, pts: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.stack([raster(self.mcfg, p) for p in pts]), device=self.device)

    def _phi_forward(self, b: Batch) -> torch.Tensor:
        """J_gen from the (frozen, in stage 2) Φ: [B,68,2] (guided) or [B,1,256,256] (paper)."""
        if self.mcfg.variant == "guided":
            return self.phi(self._pts(b.L_s), self._pts(b.J_s), self._pts(b.L_t))
        return self.phi(self._raster(b.L_s), self._raster(b.L_t))

    def omega_inputs(self, b: Batch, truth: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Ω input and, for guided, the warped target [B,3,256,256]; ``truth``: J_o stands in for J_gen."""
        if self.cfg.pix2pix:
            jgen = np.stack([raster(self.mcfg, p) for p in b.L_s])  # the source's own landmarks
        elif truth:
            jgen = b.J_o if self.mcfg.variant == "guided" else np.stack([raster(self.mcfg, p) for p in b.J_o])
        else:
            with torch.no_grad():
                jgen = self._phi_forward(b).cpu().numpy()
        if self.mcfg.variant == "guided":
            xs, ws = [], []
            for i in range(len(b.P_t)):
                x, warped = guided_omega_input(b.P_t[i], b.L_t[i], jgen[i], self.mcfg)
                xs.append(x)
                ws.append(to_net(warped))
            return torch.as_tensor(np.stack(xs), device=self.device), torch.as_tensor(np.stack(ws), device=self.device)
        x = np.stack([paper_omega_input(b.P_t[i], jgen[i]) for i in range(len(b.P_t))])
        return torch.as_tensor(x, device=self.device), None

    def generate(self, x: torch.Tensor, warped: torch.Tensor | None, net: nn.Module | None = None) -> torch.Tensor:
        y = (net or self.gen)(x)
        return y if warped is None else compose(warped, y)

    # ------------------------------------------------------------------ steps

    def _step_phi(self, b: Batch) -> dict[str, float]:
        lam = self.cfg.lambdas
        wt = self._pts(b.weight)
        if self.mcfg.variant == "guided":
            L_s, J_s, L_t, J_o = (self._pts(a) for a in (b.L_s, b.J_s, b.L_t, b.J_o))
            jgen = self.gen(L_s, J_s, L_t)
            real = J_o
            back = self.gen(jgen, L_t, J_s)  # eq. 4, guided reading: J_gen's expression back onto J_s
            scale = 1.0 / self.mcfg.preprocess.crop_size  # coordinate losses in crop-normalised units
            rec = losses.l1(jgen * scale, J_o * scale, wt)
            cyc = losses.l1(back * scale, L_s * scale, wt)
        else:
            L_s, J_s, L_t, J_o = (self._raster(a) for a in (b.L_s, b.J_s, b.L_t, b.J_o))
            jgen = self.gen(L_s, L_t)
            real = J_o
            back = self.gen(jgen, J_s)  # eq. 4: Φ(J_gen, J_s) ≈ L_s
            rec = losses.l1(jgen, J_o, wt)
            cyc = losses.l1(back, L_s, wt)
        # D_J step (eq. 3)
        self.opt_d.zero_grad(set_to_none=True)
        d_loss = losses.discriminator_loss(self.disc(real), self.disc(jgen.detach()))
        d_loss.backward()
        self.opt_d.step()
        # Φ step (eq. 6)
        self.opt_g.zero_grad(set_to_none=True)
        adv = losses.generator_adv_loss(self.disc(jgen))
        total = losses.phi_total(adv, cyc, rec, lam)
        total.backward()
        self.opt_g.step()
        return {"loss_g": total.item(), "adv": adv.item(), "cycle": cyc.item(), "l1": rec.item(), "loss_d": d_loss.item()}

    def _step_omega(self, b: Batch) -> dict[str, float]:
        x, warped = self.omega_inputs(b, truth=self.cfg.omega_landmarks == "truth")
        P_t, I_o = self._imgs(b.P_t), self._imgs(b.I_o)
        wt = self._pts(b.weight)
        fake = self.generate(x, warped)
        # D_I step (eq. 7), conditioned on P_t
        self.opt_d.zero_grad(set_to_none=True)
        d_loss = losses.discriminator_loss(self.disc(P_t, I_o), self.disc(P_t, fake.detach()))
        d_loss.backward()
        self.opt_d.step()
        logs: dict[str, float] = {}
        if self.disc_m is not None:
            # D_M step: the same loss on mouth windows (placed by J_o, the face I_o shows)
            corners = losses.mouth_windows(b.J_o, fake.shape[-1])
            Pm, Im, Fm = (losses.crop_windows(t, corners) for t in (P_t, I_o, fake))
            self.opt_dm.zero_grad(set_to_none=True)
            dm_loss = losses.discriminator_loss(self.disc_m(Pm, Im), self.disc_m(Pm, Fm.detach()))
            dm_loss.backward()
            self.opt_dm.step()
            logs["loss_dm"] = dm_loss.item()
        # Ω step (eq. 9), plus the opt-in extra losses
        self.opt_g.zero_grad(set_to_none=True)
        extra = self.cfg.extra_losses
        if "feature_matching" in extra:
            d_fake, fake_feats = self.disc_raw.features(P_t, fake)
            with torch.no_grad():
                _, real_feats = self.disc_raw.features(P_t, I_o)
        else:
            d_fake = self.disc(P_t, fake)
        cgan = losses.generator_adv_loss(d_fake)
        pix = losses.l1(fake, I_o, wt)
        total = losses.omega_total(cgan, pix, self.cfg.mus)
        terms: dict[str, torch.Tensor] = {}  # extra loss name -> unweighted term
        if "mouth_l1" in extra:
            mask = torch.as_tensor(losses.mouth_mask(b.J_o, fake.shape[-1]), device=self.device)
            terms["mouth_l1"] = losses.masked_l1(fake, I_o, mask, wt)
        if "feature_matching" in extra:
            terms["feature_matching"] = losses.feature_matching(real_feats, fake_feats)
        if self.disc_m is not None:
            terms["mouth_gan"] = losses.generator_adv_loss(self.disc_m(Pm, Fm))
        if "gradient" in extra:
            terms["gradient"] = losses.gradient_difference(fake, I_o)
        if self.face_id is not None:
            jitter_rng = np.random.default_rng([self.cfg.seed, self.step, self.rank, 1])
            terms["identity"] = losses.identity_loss(self.face_id, fake, I_o, b.J_o, jitter_rng, wt)
        for name, term in terms.items():
            total = total + self.cfg.extra_weight(name) * term
            logs[name] = term.item()
        total.backward()
        self.opt_g.step()
        return {"loss_g": total.item(), "cgan": cgan.item(), "l1": pix.item(), **logs, "loss_d": d_loss.item()}

    def train_step(self) -> dict[str, float]:
        rng = np.random.default_rng([self.cfg.seed, self.step, self.rank])
        torch.manual_seed(self.cfg.seed * 1_000_003 + self.step * 101 + self.rank)
        b = make_batch(self.bank, self.pairs, rng, self.cfg.batch_size)
        self.gen.train()
        self.disc.train()
        out = self._step_phi(b) if self.cfg.stage == "phi" else self._step_omega(b)
        self.step += 1
        if self.ema is not None:
            self._update_ema()
        return out

    @torch.no_grad()
    def _update_ema(self) -> None:
        """ema ← d·ema + (1−d)·raw for parameters; buffers (BatchNorm statistics) are copied."""
        d = self.cfg.ema
        for e, r in zip(self.ema.parameters(), self.gen_raw.parameters(), strict=True):
            e.lerp_(r, 1.0 - d)
        for e, r in zip(self.ema.buffers(), self.gen_raw.buffers(), strict=True):
            e.copy_(r)

    @property
    def gen_out(self) -> nn.Module:
        """The generator whose weights are validated and saved: the moving average when on."""
        return self.ema if self.ema is not None else self.gen_raw

    # ------------------------------------------------------------------ validation

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Φ: landmark error (crop px, guided) or landmark-image L1 (paper); Ω: SSIM/PSNR to I_o."""
        if not self.val_pairs:
            return {}
        net = self.gen_out if self.ema is not None else self.gen
        was_training = net.training
        net.eval()
        res: dict[str, list[float]] = {}
        for i in range(0, len(self.val_pairs), self.cfg.batch_size):
            chunk = self.val_pairs[i : i + self.cfg.batch_size]
            b = _ordered_batch(self.val_bank, chunk)
            if self.cfg.stage == "phi":
                jgen = self._phi_forward_gen(b)
                if self.mcfg.variant == "guided":
                    err = (jgen - self._pts(b.J_o)).norm(dim=2).mean(1)
                    res.setdefault("val_landmark_px", []).extend(err.cpu().tolist())
                else:
                    err = (jgen - self._raster(b.J_o)).abs().flatten(1).mean(1)
                    res.setdefault("val_l1", []).extend(err.cpu().tolist())
            else:
                x, warped = self.omega_inputs(b)
                fake = self.generate(x, warped, net).cpu().numpy()
                from reenact.eval.metrics import psnr, ssim
                from reenact.inputs import from_net

                for k in range(len(chunk)):
                    g = from_net(fake[k])
                    res.setdefault("val_ssim", []).append(ssim(g, b.I_o[k]))
                    res.setdefault("val_psnr", []).append(psnr(g, b.I_o[k]))
        net.train(was_training)
        return {k: float(np.mean(v)) for k, v in res.items()}

    def _phi_forward_gen(self, b: Batch) -> torch.Tensor:
        if self.mcfg.variant == "guided":
            return self.gen_out(self._pts(b.L_s), self._pts(b.J_s), self._pts(b.L_t))
        return self.gen_out(self._raster(b.L_s), self._raster(b.L_t))

    # ------------------------------------------------------------------ checkpoints

    def _paths(self) -> tuple[Path, Path]:
        return self.out / CKPT_STATE.format(stage=self.cfg.stage), self.out / CKPT_META.format(stage=self.cfg.stage)

    def _ckpt_modules(self) -> list[tuple[str, nn.Module]]:
        mods = [("gen.", self.gen_raw), ("disc.", self.disc_raw)]
        mods += [("ema.", self.ema)] if self.ema is not None else []
        return mods + ([("disc_m.", self.disc_m_raw)] if self.disc_m_raw is not None else [])

    def _ckpt_optimizers(self) -> list[tuple[str, torch.optim.Optimizer]]:
        opts = [("opt_g.", self.opt_g), ("opt_d.", self.opt_d)]
        return opts + ([("opt_dm.", self.opt_dm)] if self.opt_dm is not None else [])

    def save_checkpoint(self) -> None:
        """Networks, discriminator and Adam states, atomically; also the plain weights file."""
        if self.rank != 0:
            return
        from safetensors.torch import save

        tensors: dict[str, torch.Tensor] = {}
        for prefix, mod in self._ckpt_modules():
            for k, v in mod.state_dict().items():
                tensors[prefix + k] = v.detach().cpu().contiguous()
        groups = {}
        for prefix, opt in self._ckpt_optimizers():
            sd = opt.state_dict()
            groups[prefix] = sd["param_groups"]
            for pid, st in sd["state"].items():
                for k, v in st.items():
                    t = v if torch.is_tensor(v) else torch.tensor(v)
                    tensors[f"{prefix}{pid}.{k}"] = t.detach().cpu().contiguous()
        state_path, meta_path = self._paths()
        meta = {"step": self.step, "config": self.cfg.to_dict(), "param_groups": groups, "time": time.time(),
                "best_val": getattr(self, "best_val", None), "best_step": getattr(self, "best_step", None)}
        header = {"format": "reenact-ckpt-2", "stage": self.cfg.stage, CKPT_META_KEY: json.dumps(meta)}
        atomic_write_bytes(state_path, save(tensors, metadata=header))  # tensors + state: one file, one rename
        meta_path.unlink(missing_ok=True)  # an older checkpoint's separate state, now stale
        name = "phi" if self.cfg.stage == "phi" else "omega"
        save_state(self.out / f"{name}.safetensors", self.gen_out.state_dict(), name, self.mcfg,
                   {"step": self.step, **({"ema": self.cfg.ema} if self.ema is not None else {})})
        if self.ema is not None:
            save_state(self.out / f"{name}_raw.safetensors", self.gen_raw.state_dict(), name, self.mcfg, {"step": self.step})
        write_config(self.out, self.mcfg)

    def load_checkpoint(self) -> bool:
        """Resume from this stage's checkpoint in out_dir; False when there is none."""
        from safetensors.torch import load_file

        state_path, meta_path = self._paths()
        if not state_path.is_file():
            return False
        try:
            header = read_meta(state_path)
            if CKPT_META_KEY in header:
                meta = json.loads(header[CKPT_META_KEY])
            elif meta_path.is_file():  # written before the state moved into the header
                meta = json.loads(meta_path.read_text())
            else:
                raise ValueError(f"{state_path.name} holds no training state and {meta_path.name} is missing")
            tensors = load_file(str(state_path))
        except Exception as exc:
            raise WeightsError(f"checkpoint in {self.out} is corrupt: {exc}") from exc
        saved = TrainConfig.from_dict(meta["config"])
        if saved.model != self.mcfg:
            raise WeightsError(f"checkpoint in {self.out} is for {saved.model.describe()}, not {self.mcfg.describe()}",
                               hint="use another --out folder, or the same --variant/--preset as the checkpoint")
        if self.ema is None and any(k.startswith("ema.") for k in tensors):
            raise WeightsError(f"checkpoint in {self.out} keeps a moving average (--ema {saved.ema:g}); without it the "
                               "weights file would silently switch from the average to the trained weights",
                               hint=f"resume with --ema {saved.ema:g}, or use another --out folder")
        if self.ema is not None and not any(k.startswith("ema.") for k in tensors):
            raise WeightsError(f"checkpoint in {self.out} was trained without --ema, so it has no moving average to resume",
                               hint="use another --out folder, or resume without --ema")
        if self.disc_m is not None and not any(k.startswith("disc_m.") for k in tensors):
            raise WeightsError(f"checkpoint in {self.out} was trained without the mouth_gan loss, so it has no D_M to resume",
                               hint="use another --out folder, or resume without --extra-loss mouth_gan")
        for prefix, mod in self._ckpt_modules():
            mod.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
        for prefix, opt in self._ckpt_optimizers():
            state: dict[int, dict] = {}
            for k, v in tensors.items():
                if k.startswith(prefix):
                    pid, name = k[len(prefix):].split(".", 1)
                    state.setdefault(int(pid), {})[name] = v
            opt.load_state_dict({"state": state, "param_groups": meta["param_groups"][prefix]})
        self.step = int(meta["step"])
        if meta.get("best_val") is not None:
            self.best_val, self.best_step = float(meta["best_val"]), int(meta["best_step"])
        return True

    # ------------------------------------------------------------------ loop

    def run(self, progress: bool = True, metrics_name: str | None = None) -> list[dict]:
        """Train until cfg.steps; checkpoint every K steps; validate every epoch into metrics.jsonl."""
        self.out.mkdir(parents=True, exist_ok=True)
        metrics_path = self.out / (metrics_name or f"metrics_{self.cfg.stage}.jsonl")
        if self.rank == 0:
            atomic_write_json(self.out / f"train_{self.cfg.stage}.json", self.cfg.to_dict())
            write_config(self.out, self.mcfg, {"baseline": "pix2pix"} if self.cfg.pix2pix else None)
        history = []
        if self.cfg.stage == "phi" and self.step == 0:
            # Φ starts as the plain landmark transfer (guided) — score it, so training must beat it
            self._consider_best(self.validate(), metrics_path, 0.0)
        bar = tqdm(total=self.cfg.steps, initial=self.step, desc=f"train {self.cfg.stage}", unit="step",
                   disable=not progress or self.rank != 0)
        t0 = time.time()
        while self.step < self.cfg.steps:
            out = self.train_step()
            out["step"] = self.step
            history.append(out)
            bar.update(1)
            if self.step % self.cfg.log_every == 0 or self.step == self.cfg.steps:
                bar.set_postfix({k: f"{v:.3g}" for k, v in out.items() if k != "step"})
            record = None
            if self.step % self.val_every == 0 or self.step == self.cfg.steps:
                val = self.validate()
                record = {"step": self.step, "epoch": self.step / self.steps_per_epoch, "time_s": time.time() - t0,
                          **{k: v for k, v in out.items() if k != "step"}, **val}
                if self.rank == 0:
                    with open(metrics_path, "a") as fh:
                        fh.write(json.dumps(record) + "\n")
                    log.info("step %d %s", self.step, val)
                    self._consider_best(val, None, 0.0)
            if self.step % self.cfg.checkpoint_every == 0 or self.step == self.cfg.steps:
                self.save_checkpoint()
        bar.close()
        if self.cfg.stage == "phi" and self.rank == 0 and (self.out / "phi_best.safetensors").is_file():
            # Φ overfits small sets: the shipped Φ is the one with the best validation landmark error
            best = load_state(self.out / "phi_best.safetensors", "phi", self.mcfg)
            save_state(self.out / "phi.safetensors", best, "phi", self.mcfg,
                       {"best_step": self.best_step, "best_val": self.best_val, "last_step": self.step})
            log.info("Φ: kept the best validation checkpoint (step %d, %.4f)", self.best_step, self.best_val)
        return history

    def _consider_best(self, val: dict, metrics_path: Path | None, epoch: float) -> None:
        """Keep the weights with the best validation figure: Φ by landmark error (lower is better,
        and the shipped Φ), Ω by SSIM (higher is better; saved beside the last as omega_best, since a
        GAN's last step is not always its best — the shipped default was chosen this way)."""
        if self.rank != 0 or not val:
            return
        if metrics_path is not None:
            with open(metrics_path, "a") as fh:
                fh.write(json.dumps({"step": self.step, "epoch": epoch, **val}) + "\n")
        if self.cfg.stage == "phi":
            key, sign, name = ("val_landmark_px" if "val_landmark_px" in val else "val_l1"), 1.0, "phi"
        else:
            key, sign, name = "val_ssim", -1.0, "omega"
        if key not in val:
            return
        if sign * val[key] < sign * getattr(self, "best_val", sign * float("inf")):
            self.best_val, self.best_step = float(val[key]), self.step
            save_state(self.out / f"{name}_best.safetensors", self.gen_out.state_dict(), name, self.mcfg,
                       {"step": self.step, key: val[key]})


def _ordered_batch(bank: FaceBank, pairs: list[Pair]) -> Batch:
    """The pairs as one batch, in order, unflipped (validation and evaluation)."""
    cols: dict[str, list] = {k: [] for k in ("P_t", "L_t", "L_s", "J_s", "J_o", "I_o", "weight")}
    for p in pairs:
        cols["P_t"].append(bank.crops[p.target])
        cols["I_o"].append(bank.crops[p.truth])
        cols["L_t"].append(bank.points[p.target])
        cols["L_s"].append(bank.points[p.source])
        cols["J_s"].append(bank.points[p.source_neutral])
        cols["J_o"].append(bank.points[p.truth])
        cols["weight"].append(1.0)
    return Batch(**{k: np.stack(v).astype(np.float32 if k not in ("P_t", "I_o") else np.uint8) for k, v in cols.items()})


def init_distributed() -> None:
    """Initialise torch.distributed when launched by torchrun (gloo on CPU, nccl on CUDA)."""
    rank, world = _dist()
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() and os.environ.get("REENACT_DIST_BACKEND", "") != "gloo" else "gloo"
        torch.distributed.init_process_group(backend=backend)
