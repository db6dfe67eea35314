"""`reenact train phi|omega`: the two training stages of section V-B."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click

from reenact.config import EXTRA_LOSS_DEFAULTS, EXTRA_LOSS_NAMES, is_loss_weight
from reenact.errors import ReenactError

log = logging.getLogger(__name__)


class ExtraLoss(click.ParamType):
    """``NAME`` or ``NAME=WEIGHT``: an extra loss, with its default weight or another one."""

    name = "NAME[=WEIGHT]"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        name, sep, weight_text = str(value).partition("=")
        name = name.strip()
        if name not in EXTRA_LOSS_NAMES:
            self.fail(f"unknown extra loss {name!r}; expected one of {', '.join(EXTRA_LOSS_NAMES)}", param, ctx)
        if not sep:
            return name, None
        try:
            weight = float(weight_text)
        except ValueError:
            weight = None
        if not is_loss_weight(weight):
            self.fail(f"the weight in {value!r} must be a positive number, e.g. {name}={EXTRA_LOSS_DEFAULTS[name]:g}",
                      param, ctx)
        return name, weight


@click.command("train")
@click.argument("stage", type=click.Choice(["phi", "omega"]))
@click.option("--data", "data", type=click.Path(path_type=Path), required=False,
              help="Dataset folder (London set, a folder of videos, RaFD, CK+, or a folder holding several).")
@click.option("--out", "out", type=click.Path(path_type=Path), default=Path("runs/default"), show_default=True,
              help="Weights folder: config.json, phi/omega.safetensors, checkpoints and metrics are written here.")
@click.option("--variant", type=click.Choice(["guided", "paper"]), default="guided", show_default=True,
              help="'paper' is the paper exactly; 'guided' is the warp-guided variant (see README).")
@click.option("--preset", type=click.Choice(["lite", "paper"]), default="lite", show_default=True,
              help="Ω width: 'paper' = 64 (Table 1), 'lite' = 16 (real time on a laptop CPU).")
@click.option("--steps", type=click.IntRange(min=1), default=None, help="Optimiser steps (default: the paper's epochs converted to steps).")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Length in epochs (one epoch = one pass over the distinct targets).")
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the initialisation, the batches and the pair sampler.")
@click.option("--split-seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the person split (70/10/20 train/val/test). Keep it equal to `reenact eval "
                   "--seed` so no validation or test person is trained on; change --seed, not this, "
                   "for a second training run.")
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=500, show_default=True, help="Steps between checkpoints.")
@click.option("--val-every", type=click.IntRange(min=0), default=0, help="Steps between validation runs (0 = once per epoch).")
@click.option("--resume/--no-resume", default=True, show_default=True, help="Continue from the checkpoint in --out.")
@click.option("--phi", "phi_dir", type=click.Path(path_type=Path), default=None,
              help="Stage 2 only: folder with the trained Φ (default: --out).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@click.option("--threads", type=click.IntRange(min=0), default=0, help="torch CPU threads (0 = default).")
@click.option("--cache-dir", type=click.Path(path_type=Path), default=None, help="Landmark cache folder (default ~/.cache/reenact).")
@click.option("--upsample", type=click.Choice(["convT", "resize"]), default=None, help="Ω up-sampling (default convT, the paper's).")
@click.option("--raster-sigma", type=click.FloatRange(0.5, 16.0), default=None,
              help="Variant paper: the width (Gaussian sigma, pixels at 256²) of each landmark dot in the "
                   "key-point images Φ and Ω see (default 1.5; stage 2 takes Φ's from its folder).")
@click.option("--pix2pix", is_flag=True, help="Stage 2 only: train the pix2pix baseline (Ω fed the source's landmark image, no Φ; --variant paper).")
@click.option("--omega-landmarks", type=click.Choice(["phi", "truth"]), default="phi", show_default=True,
              help="Stage 2: landmarks fed to Ω while training: Φ's J_gen (the paper) or the real J_o "
                   "(Ω learns to paint the landmarks it is given; validation always uses Φ).")
@click.option("--extra-loss", "extra_losses", type=ExtraLoss(), multiple=True,
              help="Stage 2: add a loss beyond the paper's eq. 9 (repeatable), as NAME or NAME=WEIGHT "
                   "(weight in L_Ω, where the paper's L1 has 100; defaults: "
                   + ", ".join(f"{k} {v:g}" for k, v in EXTRA_LOSS_DEFAULTS.items()) + "): mouth_l1 = L1 on the mouth "
                   "alone (teeth, open mouths); feature_matching = L1 between D_I's features of real and "
                   "generated faces; mouth_gan = a second PatchGAN that judges only a 96x96 window around the mouth; "
                   "identity = distance between dlib face descriptors of real and generated faces (the "
                   "network behind eval's identity distance, so that figure becomes optimistic); gradient = L1 between the pixel differences "
                   "of real and generated faces (sharper edges).")
@click.option("--ema", type=click.FloatRange(0.0, 1.0, max_open=True), default=0.0, show_default=True,
              help="Keep an exponential moving average of the generator's weights with this decay "
                   "(e.g. 0.995; 0 = off). The average is validated and written as <stage>.safetensors; "
                   "the trained weights go beside it as <stage>_raw.safetensors.")
@click.option("--mouth-guide", is_flag=True,
              help="Variant guided: Ω also sees the driver's mouth interior warped into J_gen's inner lips and "
                   "colour-matched (4 more input channels; `reenact live --mouth-interior`).")
@click.option("--guide-drop", type=click.FloatRange(0.0, 1.0), default=0.25, show_default=True,
              help="With --mouth-guide: the share of training samples given no guide, so Ω also paints "
                   "interiors itself (--mouth-interior generated).")
@click.option("--blink-share", type=click.FloatRange(0.0, 1.0), default=0.0, show_default=True,
              help="Stage 2: the share of video draws taken from pairs whose truth frame is a blink, so Ω "
                   "sees closed lids more often (0 = uniform).")
@click.option("--dry-run", is_flag=True, help="Print the resolved config and exit without training.")
def train(stage, data, out, variant, preset, steps, epochs, batch_size, seed, split_seed, checkpoint_every, val_every, resume, phi_dir,
          device, threads, cache_dir, upsample, raster_sigma, pix2pix, omega_landmarks, extra_losses, ema, mouth_guide, guide_drop, blink_share, dry_run):
    """Train Φ (stage 1) or Ω on a frozen Φ (stage 2).

    \b
    Examples:
      reenact train phi   --data ../shared/data --out runs/guided-lite
      reenact train omega --data ../shared/data --out runs/guided-lite --steps 5000
      torchrun --nproc_per_node 2 -m reenact.cli train omega --data DATA --out OUT   (DistributedDataParallel)

    Checkpoints are written atomically every --checkpoint-every steps; rerunning the same
    command resumes. Validation SSIM/PSNR (Ω) or landmark error (Φ) go to metrics_<stage>.jsonl.
    """
    from reenact.config import PAPER_EPOCHS, Preprocess, TrainConfig, epochs_to_steps, model_config

    overrides = {"upsample": upsample} if upsample else {}
    sigma = _raster_sigma(raster_sigma, variant, stage, pix2pix, phi_dir or out)
    if sigma is not None:
        overrides["preprocess"] = Preprocess(raster="gaussian", raster_sigma=sigma)
    if mouth_guide:
        if variant != "guided":
            raise ReenactError("--mouth-guide is an input of the guided variant's Ω", hint="drop --mouth-guide or use --variant guided")
        overrides["mouth_guide"] = True
    mcfg = model_config(variant, preset, **overrides)
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ReenactError(f"--device {device} asked for, but torch sees no CUDA GPU", hint="use --device cpu")
    cfg_kwargs = dict(stage=stage, model=mcfg, batch_size=batch_size, seed=seed, split_seed=split_seed,
                      checkpoint_every=checkpoint_every,
                      val_every=val_every, device=device, num_threads=threads, pix2pix=pix2pix,
                      omega_landmarks=omega_landmarks, ema=ema, blink_share=blink_share, guide_drop=guide_drop,
                      **_extra_loss_fields(extra_losses))
    if dry_run and data is None:
        n_targets = None
    else:
        if data is None:
            raise ReenactError("--data is required", hint="e.g. --data ../shared/data")
        if not Path(data).is_dir():  # before torch is imported: a typo answers at once
            raise ReenactError(f"dataset folder not found: {data}" if not Path(data).exists() else
                               f"--data {data} is a file; it must be the folder holding the data set",
                               hint="e.g. --data ../shared/data")
        from reenact.data.datasets import build_bank, make_pairs
        from reenact.training.trainer import init_distributed

        init_distributed()
        bank = build_bank(data, cache_dir=cache_dir, seed=split_seed)
        n_targets = len({p.target for p in make_pairs(bank, "train", seed=seed)})
    if steps is None:
        ep = epochs if epochs is not None else PAPER_EPOCHS[stage]
        steps = epochs_to_steps(ep, n_targets or 1, batch_size) if n_targets else None
    cfg = TrainConfig(steps=steps or 0, **cfg_kwargs)
    if dry_run:
        d = cfg.to_dict()
        d["out"] = str(out)
        d["data"] = str(data) if data else None
        if steps is None:
            d["steps"] = f"{epochs or PAPER_EPOCHS[stage]} epochs (converted to steps once --data is known)"
        click.echo(json.dumps(d, indent=2, sort_keys=True))
        return 0
    from reenact.training.trainer import Trainer

    trainer = Trainer(cfg, bank, out, phi_dir=phi_dir)
    if resume and trainer.load_checkpoint():
        click.echo(f"resuming {stage} from step {trainer.step} in {out}")
    if trainer.step >= cfg.steps:
        click.echo(f"{stage}: already trained to step {trainer.step} (asked {cfg.steps}); nothing to do")
        return 0
    trainer.run()
    click.echo(f"{stage}: trained to step {trainer.step}; weights in {out}")
    return 0


def _raster_sigma(given: float | None, variant: str, stage: str, pix2pix: bool, phi_dir: Path) -> float | None:
    """The paper raster's dot width to train with: as given, or (stage 2 on a trained Φ) Φ's own."""
    if variant != "paper":
        if given is not None:
            raise ReenactError("--raster-sigma applies to --variant paper (the guided variant draws polylines)")
        return None
    if given is not None or stage != "omega" or pix2pix or not (Path(phi_dir) / "config.json").is_file():
        return given
    from reenact.weights_io import read_config

    return read_config(Path(phi_dir)).preprocess.raster_sigma


def _extra_loss_fields(pairs: tuple[tuple[str, float | None], ...]) -> dict:
    """TrainConfig's extra_losses and extra_loss_weights from the --extra-loss values; one name
    given twice with two different weights is a mistake, not a sum."""
    weights: dict[str, float | None] = {}
    for name, weight in pairs:
        if weights.get(name) is not None and weight is not None and weights[name] != weight:
            raise ReenactError(f"--extra-loss {name} is given twice with different weights ({weights[name]:g} and {weight:g})",
                               hint=f"give {name} once, e.g. --extra-loss {name}={weight:g}")
        if weights.get(name) is None:
            weights[name] = weight
    return {"extra_losses": tuple(weights),
            "extra_loss_weights": tuple((n, w) for n, w in weights.items() if w is not None and w != EXTRA_LOSS_DEFAULTS[n])}
