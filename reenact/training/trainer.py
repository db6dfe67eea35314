"""The shared training loop of both stages of section V-B, for both variants.

Stage 1 (``phi``, ``phi_stage.PhiStage``) trains Φ with eq. (6); stage 2 (``omega``,
``omega_stage.OmegaStage``) freezes Φ and trains Ω on Φ's output with eq. (9) and the opt-in
extra losses (``extra_losses``). Each step is the pix2pix GAN step: a D step, then a G step with
D frozen. The loop here is what both share.

Determinism: the batch and the flips of step k are drawn from a generator seeded with
(seed, k, rank), so a resumed run continues the same loss curve as an uninterrupted one.
Checkpoints (every K steps) hold the networks, the discriminator(s) and the Adam states: one
safetensors file whose header carries the JSON state (step, config, optimiser groups), written
atomically, so tensors and state of two different steps can never be paired. Under ``torchrun``
the networks are wrapped in DistributedDataParallel (gloo on CPU, nccl on CUDA) and rank 0 alone
writes files.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from reenact.config import TrainConfig
from reenact.data.datasets import FaceBank, Pair, make_pairs
from reenact.errors import WeightsError
from reenact.training.batches import blink_pairs, make_batch, ordered_batch
from reenact.training.omega_stage import OmegaStage
from reenact.training.phi_stage import PhiStage
from reenact.weights_io import (
    BASELINE_KEY,
    PIX2PIX,
    atomic_write_bytes,
    atomic_write_json,
    load_state,
    read_meta,
    save_state,
    write_config,
)

log = logging.getLogger(__name__)

CKPT_STATE = "checkpoint_{stage}.safetensors"
CKPT_META = "checkpoint_{stage}.json"  # the state beside the tensors in checkpoints written before 2026-11-30 (read only)
CKPT_META_KEY = "reenact.checkpoint"  # the state, as JSON, in the checkpoint's safetensors header


def _dist() -> tuple[int, int]:
    """(rank, world size) when launched by torchrun, else (0, 1)."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


class Trainer:
    """The shared loop of both stages. ``out_dir`` is the weights folder (config.json, phi/omega.safetensors).

    ``stage`` (a ``PhiStage`` or an ``OmegaStage``, by ``cfg.stage``) holds the networks and the
    step; the loop draws the batches, seeds each step, keeps the moving average, validates,
    checkpoints and logs. Stage 2 reads Φ from ``phi_dir`` (default: ``out_dir``).
    """

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
        self.blinks = blink_pairs(bank, self.pairs) if cfg.blink_share > 0 else []
        if cfg.blink_share > 0:
            log.info("%d training pairs show a blink (drawn for %.0f%% of video pairs)", len(self.blinks), 100 * cfg.blink_share)
        self.val_bank = val_bank or bank
        self.val_pairs = self._val_pairs()
        n_targets = len({p.target for p in self.pairs})
        self.steps_per_epoch = max(1, math.ceil(n_targets / cfg.batch_size))
        self.val_every = cfg.val_every or self.steps_per_epoch
        self.stage: PhiStage | OmegaStage
        if cfg.stage == "phi":
            self.stage = PhiStage(cfg, self.device, self.rank)
        else:
            self.stage = OmegaStage(cfg, self.device, self.rank, Path(phi_dir) if phi_dir else self.out)
        # the moving average of the generator (cfg.ema): starts at the initial weights (for guided Ω,
        # the plain warp), is never trained, and is what validation scores and the weights file holds
        self.ema: nn.Module | None = None
        if cfg.ema > 0:
            self.ema = copy.deepcopy(self.stage.gen_raw).eval().requires_grad_(False)
        if self.world > 1:
            self.stage.distribute()
        self.step = 0
        self.best_val: float | None = None  # the best validation figure so far (stage.best_of), and its step
        self.best_step: int | None = None

    def _val_pairs(self) -> list[Pair]:
        """The validation pairs: all of them for Φ (cheap), a seeded sample of cfg.val_pairs for Ω."""
        cfg = self.cfg
        vpairs = make_pairs(self.val_bank, "val", seed=cfg.seed)
        vr = np.random.default_rng(cfg.seed + 1)
        n_val = len(vpairs) if cfg.stage == "phi" else min(cfg.val_pairs, len(vpairs))
        return [vpairs[i] for i in sorted(vr.choice(len(vpairs), n_val, replace=False))] if vpairs else []

    # ------------------------------------------------------------------ steps

    def train_step(self) -> dict[str, float]:
        """One step of the stage on the batch of step k, drawn with (seed, k, rank); then the EMA."""
        rng = np.random.default_rng([self.cfg.seed, self.step, self.rank])
        torch.manual_seed(self.cfg.seed * 1_000_003 + self.step * 101 + self.rank)
        b = make_batch(self.bank, self.pairs, rng, self.cfg.batch_size, blink_share=self.cfg.blink_share, blinks=self.blinks)
        self.stage.train_mode()
        out = self.stage.train_step(b, self.step)
        self.step += 1
        if self.ema is not None:
            self._update_ema()
        return out

    @torch.no_grad()
    def _update_ema(self) -> None:
        """ema ← d·ema + (1−d)·raw for parameters; buffers (BatchNorm statistics) are copied."""
        d = self.cfg.ema
        for e, r in zip(self.ema.parameters(), self.stage.gen_raw.parameters(), strict=True):
            e.lerp_(r, 1.0 - d)
        for e, r in zip(self.ema.buffers(), self.stage.gen_raw.buffers(), strict=True):
            e.copy_(r)

    @property
    def gen_out(self) -> nn.Module:
        """The generator whose weights are validated and saved: the moving average when on."""
        return self.ema if self.ema is not None else self.stage.gen_raw

    # ------------------------------------------------------------------ validation

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """The stage's validation figures (Φ: landmark error or landmark-image L1; Ω: SSIM/PSNR to
        I_o), averaged over the validation pairs, of the generator that is saved (``gen_out``)."""
        if not self.val_pairs:
            return {}
        net = self.gen_out
        was_training = net.training
        net.eval()
        res: dict[str, list[float]] = {}
        for i in range(0, len(self.val_pairs), self.cfg.batch_size):
            b = ordered_batch(self.val_bank, self.val_pairs[i : i + self.cfg.batch_size])
            for k, v in self.stage.val_scores(b, net).items():
                res.setdefault(k, []).extend(v)
        net.train(was_training)
        return {k: float(np.mean(v)) for k, v in res.items()}

    # ------------------------------------------------------------------ checkpoints

    def _paths(self) -> tuple[Path, Path]:
        return self.out / CKPT_STATE.format(stage=self.cfg.stage), self.out / CKPT_META.format(stage=self.cfg.stage)

    def _ckpt_modules(self) -> list[tuple[str, nn.Module]]:
        return self.stage.networks() + ([("ema.", self.ema)] if self.ema is not None else [])

    def save_checkpoint(self) -> None:
        """Networks, discriminator(s) and Adam states, atomically; also the plain weights file."""
        if self.rank != 0:
            return
        from safetensors.torch import save

        tensors: dict[str, torch.Tensor] = {}
        for prefix, mod in self._ckpt_modules():
            for k, v in mod.state_dict().items():
                tensors[prefix + k] = v.detach().cpu().contiguous()
        groups = {}
        for prefix, opt in self.stage.optimizers():
            sd = opt.state_dict()
            groups[prefix] = sd["param_groups"]
            for pid, st in sd["state"].items():
                for k, v in st.items():
                    t = v if torch.is_tensor(v) else torch.tensor(v)
                    tensors[f"{prefix}{pid}.{k}"] = t.detach().cpu().contiguous()
        state_path, meta_path = self._paths()
        meta = {"step": self.step, "config": self.cfg.to_dict(), "param_groups": groups, "time": time.time(),
                "best_val": self.best_val, "best_step": self.best_step}
        header = {"format": "reenact-ckpt-2", "stage": self.cfg.stage, CKPT_META_KEY: json.dumps(meta)}
        atomic_write_bytes(state_path, save(tensors, metadata=header))  # tensors + state: one file, one rename
        meta_path.unlink(missing_ok=True)  # an older checkpoint's separate state, now stale
        name = self.stage.name
        save_state(self.out / f"{name}.safetensors", self.gen_out.state_dict(), name, self.mcfg,
                   {"step": self.step, **({"ema": self.cfg.ema} if self.ema is not None else {})})
        if self.ema is not None:
            save_state(self.out / f"{name}_raw.safetensors", self.stage.gen_raw.state_dict(), name, self.mcfg,
                       {"step": self.step})
        write_config(self.out, self.mcfg)

    def _read_checkpoint(self) -> tuple[dict, dict[str, torch.Tensor]] | None:
        """(state, tensors) of this stage's checkpoint in out_dir, None when there is none."""
        from safetensors.torch import load_file

        state_path, meta_path = self._paths()
        if not state_path.is_file():
            return None
        try:
            header = read_meta(state_path)
            if CKPT_META_KEY in header:
                meta = json.loads(header[CKPT_META_KEY])
            elif meta_path.is_file():  # written before the state moved into the header
                meta = json.loads(meta_path.read_text())
            else:
                raise ValueError(f"{state_path.name} holds no training state and {meta_path.name} is missing")
            return meta, load_file(str(state_path))
        except Exception as exc:
            raise WeightsError(f"checkpoint in {self.out} is corrupt: {exc}") from exc

    def _check_resumable(self, saved: TrainConfig, keys: set[str]) -> None:
        """Refuse a checkpoint of another model, or one whose EMA or D_M does not match this run."""
        if saved.model != self.mcfg:
            raise WeightsError(f"checkpoint in {self.out} is for {saved.model.describe()}, not {self.mcfg.describe()}",
                               hint="use another --out folder, or the same --variant/--preset as the checkpoint")
        has_ema = any(k.startswith("ema.") for k in keys)
        if self.ema is None and has_ema:
            raise WeightsError(f"checkpoint in {self.out} keeps a moving average (--ema {saved.ema:g}); without it the "
                               "weights file would silently switch from the average to the trained weights",
                               hint=f"resume with --ema {saved.ema:g}, or use another --out folder")
        if self.ema is not None and not has_ema:
            raise WeightsError(f"checkpoint in {self.out} was trained without --ema, so it has no moving average to resume",
                               hint="use another --out folder, or resume without --ema")
        self.stage.check_resume(keys, self.out)

    def load_checkpoint(self) -> bool:
        """Resume from this stage's checkpoint in out_dir; False when there is none."""
        found = self._read_checkpoint()
        if found is None:
            return False
        meta, tensors = found
        self._check_resumable(TrainConfig.from_dict(meta["config"]), set(tensors))
        for prefix, mod in self._ckpt_modules():
            mod.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
        for prefix, opt in self.stage.optimizers():
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
            write_config(self.out, self.mcfg, {BASELINE_KEY: PIX2PIX} if self.cfg.pix2pix else None)
        history = []
        if self.stage.name == "phi" and self.step == 0:
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
            last = self.step == self.cfg.steps
            if self.step % self.cfg.log_every == 0 or last:
                bar.set_postfix({k: f"{v:.3g}" for k, v in out.items() if k != "step"})
            if self.step % self.val_every == 0 or last:
                self._validate_and_log(out, metrics_path, time.time() - t0)
            if self.step % self.cfg.checkpoint_every == 0 or last:
                self.save_checkpoint()
        bar.close()
        if self.stage.name == "phi" and self.rank == 0 and (self.out / "phi_best.safetensors").is_file():
            # Φ overfits small sets: the shipped Φ is the one with the best validation landmark error
            best = load_state(self.out / "phi_best.safetensors", "phi", self.mcfg)
            save_state(self.out / "phi.safetensors", best, "phi", self.mcfg,
                       {"best_step": self.best_step, "best_val": self.best_val, "last_step": self.step})
            log.info("Φ: kept the best validation checkpoint (step %d, %.4f)", self.best_step, self.best_val)
        return history

    def _validate_and_log(self, out: dict[str, float], metrics_path: Path, elapsed: float) -> None:
        """Validate; rank 0 appends the step's losses and figures to the metrics file and keeps the best."""
        val = self.validate()
        if self.rank != 0:
            return
        record = {"step": self.step, "epoch": self.step / self.steps_per_epoch, "time_s": elapsed,
                  **{k: v for k, v in out.items() if k != "step"}, **val}
        with open(metrics_path, "a") as fh:
            fh.write(json.dumps(record) + "\n")
        log.info("step %d %s", self.step, val)
        self._consider_best(val, None, 0.0)

    def _consider_best(self, val: dict, metrics_path: Path | None, epoch: float) -> None:
        """Keep the weights with the best validation figure: Φ by landmark error (lower is better,
        and the shipped Φ), Ω by SSIM (higher is better; saved beside the last as omega_best, since a
        GAN's last step is not always its best — the shipped default was chosen this way)."""
        if self.rank != 0 or not val:
            return
        if metrics_path is not None:
            with open(metrics_path, "a") as fh:
                fh.write(json.dumps({"step": self.step, "epoch": epoch, **val}) + "\n")
        best = self.stage.best_of(val)
        if best is None:
            return
        key, sign = best
        if self.best_val is None or sign * val[key] < sign * self.best_val:
            self.best_val, self.best_step = float(val[key]), self.step
            name = self.stage.name
            save_state(self.out / f"{name}_best.safetensors", self.gen_out.state_dict(), name, self.mcfg,
                       {"step": self.step, key: val[key]})


def init_distributed() -> None:
    """Initialise torch.distributed when launched by torchrun (gloo on CPU, nccl on CUDA)."""
    rank, world = _dist()
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() and os.environ.get("REENACT_DIST_BACKEND", "") != "gloo" else "gloo"
        torch.distributed.init_process_group(backend=backend)
