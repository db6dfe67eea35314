"""Typed, frozen configuration for models, preprocessing and training.

Every model file (checkpoint, ONNX, engine) records its :class:`ModelConfig`, so a
mismatch between a model and the preprocessing it was trained with is an error,
never a silent blur.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from reenact.errors import ConfigError

Variant = Literal["paper", "guided"]
Preset = Literal["paper", "lite"]
Upsample = Literal["convT", "resize"]
Raster = Literal["gaussian", "polylines"]

VARIANTS: tuple[str, ...] = ("paper", "guided")
PRESETS: tuple[str, ...] = ("paper", "lite")

#: Base width of Ω per preset. 64 is Table 1; 16 keeps Ω near 13 ms on a 2-core CPU
#: with ONNX Runtime (BENCHMARKS.md).
PRESET_WIDTHS: dict[str, int] = {"paper": 64, "lite": 16}


@dataclass(frozen=True)
class Preprocess:
    """How a face is turned into network input; recorded in every model config."""

    crop_size: int = 256  # side of the canonical aligned crop, pixels (Table 1 input is 256)
    anchors: str = "eyes_nose_v1"  # alignment anchors: eye corners + nose (see reenact.face.align)
    template: str = "canonical68_v1"  # canonical 68-point template the anchors are mapped onto
    raster: Raster = "gaussian"  # landmark image style: 'gaussian' (paper, 1 ch) | 'polylines' (guided)
    raster_sigma: float = 1.5  # Gaussian dot radius (paper raster), pixels at crop_size
    line_width: float = 1.5  # polyline thickness (guided raster), pixels at crop_size


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of Φ and Ω for one variant and preset."""

    variant: Variant = "guided"  # 'paper' (the paper exactly) | 'guided' (warp-guided, DESIGN.md)
    preset: Preset = "lite"  # 'paper' (Ω base width 64) | 'lite' (Ω base width 16)
    base_width: int = 16  # Ω and D_I base channel count (Table 1 uses 64)
    upsample: Upsample = "convT"  # Ω up-sampling: transposed conv (paper) | resize + conv
    phi_width: int = 16  # paper Φ: first conv width of each encoder (image Φ)
    phi_hidden: int = 256  # guided Φ: hidden units of the coordinate MLP
    # guided Ω also sees the driver's mouth interior warped into J_gen's inner lips, colour-matched,
    # and its mask (4 more input channels; reenact.face.mouth). False: the 9-channel Ω of before
    mouth_guide: bool = False
    preprocess: Preprocess = field(default_factory=Preprocess)

    @property
    def omega_in_channels(self) -> int:
        """Ω input channels: paper [P_t, J_gen] = 4; guided [P_t, warp(P_t), 3 polyline ch] = 9, and with
        the mouth guide [.., guide (3), its mask (1)] = 13."""
        if self.variant == "paper":
            return 4
        return 13 if self.mouth_guide else 9

    @property
    def omega_out_channels(self) -> int:
        """Ω output channels: paper image = 3; guided residual (3) + mask (1) = 4."""
        return 3 if self.variant == "paper" else 4

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        d = dict(d)
        pre = Preprocess(**d.pop("preprocess", {}))
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown model config fields {sorted(unknown)}; expected some of {sorted(known)}")
        cfg = cls(preprocess=pre, **d)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        if self.variant not in VARIANTS:
            raise ConfigError(f"unknown variant {self.variant!r}; expected one of {', '.join(VARIANTS)}")
        if self.preset not in PRESETS:
            raise ConfigError(f"unknown preset {self.preset!r}; expected one of {', '.join(PRESETS)}")
        if self.upsample not in ("convT", "resize"):
            raise ConfigError(f"unknown upsample {self.upsample!r}; expected 'convT' or 'resize'")
        if self.base_width < 1:
            raise ConfigError(f"base_width must be positive, got {self.base_width}")
        if self.mouth_guide and self.variant != "guided":
            raise ConfigError("the mouth guide (mouth_guide) is an input of the guided variant's Ω, not the paper's")
        if self.preprocess.crop_size != 256:
            raise ConfigError(f"crop_size must be 256 (Table 1), got {self.preprocess.crop_size}")

    def describe(self) -> str:
        guide = " mouth-guide" if self.mouth_guide else ""
        return f"variant={self.variant} preset={self.preset} width={self.base_width}{guide}"


def model_config(variant: str = "guided", preset: str = "lite", **overrides: Any) -> ModelConfig:
    """The config for a variant and preset; raises ConfigError naming the valid choices."""
    if variant not in VARIANTS:
        raise ConfigError(f"unknown variant {variant!r}; expected one of {', '.join(VARIANTS)}")
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; expected one of {', '.join(PRESETS)}")
    raster = "gaussian" if variant == "paper" else "polylines"
    base = dict(
        variant=variant,
        preset=preset,
        base_width=PRESET_WIDTHS[preset],
        upsample="convT",
        phi_width=16 if preset == "lite" else 32,
        preprocess=Preprocess(raster=raster),
    )
    base.update(overrides)
    cfg = ModelConfig(**base)
    cfg.validate()
    return cfg


#: Opt-in additions to the paper's L_Ω and their default weights in it (the paper's L1 weight μ2 is
#: 100); ``TrainConfig.extra_loss_weights`` overrides them per run.
EXTRA_LOSS_DEFAULTS: dict[str, float] = {"mouth_l1": 25.0, "feature_matching": 50.0, "mouth_gan": 1.0,
                                         "identity": 3.0, "gradient": 100.0}
EXTRA_LOSS_NAMES: tuple[str, ...] = tuple(EXTRA_LOSS_DEFAULTS)


def is_loss_weight(weight: object) -> bool:
    """Whether ``weight`` can weigh a loss term: a positive, finite number."""
    return isinstance(weight, (int, float)) and math.isfinite(weight) and weight > 0


@dataclass(frozen=True)
class TrainConfig:
    """One training stage (section V-B). Lengths are in optimiser steps."""

    stage: Literal["phi", "omega"] = "omega"  # stage 1 trains Φ; stage 2 freezes Φ and trains Ω
    model: ModelConfig = field(default_factory=ModelConfig)
    steps: int = 5000  # optimiser steps for this stage
    batch_size: int = 8  # section V-B
    lr_g: float = 2e-4  # generator learning rate (section V-B)
    lr_d: float = 1e-4  # discriminator learning rate (section V-B)
    betas: tuple[float, float] = (0.5, 0.999)  # Adam betas (section V-B)
    lambdas: tuple[float, float, float] = (0.1, 10.0, 100.0)  # eq. 6: adversarial, cycle, L1
    mus: tuple[float, float] = (1.0, 100.0)  # eq. 9: cGAN, L1 pixel
    seed: int = 0  # seeds torch, numpy and the pair sampler
    # seeds the person split (train/val/test) the bank was built with; kept apart from ``seed`` so a
    # second training seed does not move people between splits (evaluate with the same --seed)
    split_seed: int = 0
    checkpoint_every: int = 500  # steps between checkpoints
    log_every: int = 10  # steps between progress-bar / log updates
    val_every: int = 0  # steps between validation runs; 0 = once per epoch
    val_pairs: int = 32  # validation pairs scored for SSIM/PSNR
    device: str = "cpu"  # 'cpu' | 'cuda' | 'cuda:N'
    num_threads: int = 0  # torch intra-op threads; 0 = torch's default
    # stage 2 only: additions to eq. 9 beyond the paper, names in EXTRA_LOSS_DEFAULTS; () trains
    # exactly the paper's L_Ω
    extra_losses: tuple[str, ...] = ()
    # weights of extra losses that differ from EXTRA_LOSS_DEFAULTS, as (name, weight) pairs; each
    # name must also be in extra_losses. train_omega.json records every used weight (extra_weight)
    extra_loss_weights: tuple[tuple[str, float], ...] = ()
    # decay of an exponential moving average of the generator's weights (0 = off). With it on, the
    # average is what is validated and written as <stage>.safetensors (and <stage>_best); the raw
    # weights are written beside it as <stage>_raw.safetensors
    ema: float = 0.0
    pix2pix: bool = False  # stage 2 only: the pix2pix baseline, Ω fed the source's landmark image (no Φ)
    # stage 2 only: the landmarks Ω is fed while training: 'phi' = Φ's J_gen (the paper's section V-B),
    # 'truth' = the real J_o, so Ω learns to paint the face the landmarks describe instead of hedging
    # between Φ's landmarks and a different real expression (validation always uses Φ's J_gen)
    omega_landmarks: Literal["phi", "truth"] = "phi"
    # stage 2 only: the share of video draws taken from pairs whose truth frame is a blink (GRID has
    # few), so Ω learns to paint closed lids; 0 = draw video pairs uniformly, as before
    blink_share: float = 0.0
    # stage 2, Ω with the mouth guide only: the share of training samples given no guide, so the same
    # Ω also paints interiors itself (``--mouth-interior generated``)
    guide_drop: float = 0.25

    def __post_init__(self) -> None:
        if self.split_seed < 0:
            raise ConfigError(f"split_seed must be >= 0, got {self.split_seed}")
        unknown = [n for n in self.extra_losses if n not in EXTRA_LOSS_NAMES]
        if unknown:
            raise ConfigError(f"unknown extra losses {unknown}; expected some of {', '.join(EXTRA_LOSS_NAMES)}")
        for name in ("blink_share", "guide_drop"):
            v = getattr(self, name)
            if not (0.0 <= v <= 1.0):
                raise ConfigError(f"{name} must be a share in [0, 1], got {v}")
        if not (0.0 <= self.ema < 1.0):
            raise ConfigError(f"ema must be a decay in [0, 1), e.g. 0.995 (0 = off), got {self.ema}")
        for name, weight in self.extra_loss_weights:
            if name not in self.extra_losses:
                raise ConfigError(f"a weight is given for the extra loss {name!r}, which is not switched on; "
                                  f"switched on: {list(self.extra_losses) or 'none'}")
            if not is_loss_weight(weight):
                raise ConfigError(f"the weight of extra loss {name!r} must be a positive number, got {weight!r}")

    def extra_weight(self, name: str) -> float:
        """The weight of extra loss ``name`` in L_Ω: this run's override, else the default."""
        return float(dict(self.extra_loss_weights).get(name, EXTRA_LOSS_DEFAULTS[name]))

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        d["lambdas"] = list(self.lambdas)
        d["mus"] = list(self.mus)
        d["extra_losses"] = list(self.extra_losses)
        # every used weight, defaults included, so the record alone reproduces the loss
        d["extra_loss_weights"] = {n: self.extra_weight(n) for n in self.extra_losses}
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        d = dict(d)
        model = ModelConfig.from_dict(d.pop("model", {}))
        for key in ("betas", "lambdas", "mus", "extra_losses"):
            if key in d:
                d[key] = tuple(d[key])
        if "extra_loss_weights" in d:  # a record written before this field had none: the defaults
            weights = d["extra_loss_weights"]
            d["extra_loss_weights"] = tuple(weights.items() if isinstance(weights, dict) else map(tuple, weights))
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown training config fields {sorted(unknown)}")
        return cls(model=model, **d)


def epochs_to_steps(epochs: int, n_targets: int, batch_size: int) -> int:
    """Convert the paper's epochs to steps: an epoch is one pass over the distinct targets."""
    per_epoch = max(1, -(-n_targets // batch_size))
    return epochs * per_epoch


#: Guided weights' mouth interior (`reenact live/eval --mouth-interior`): the driver's own, laid in
#: the generated mouth, or the one Ω paints.
MOUTH_INTERIORS = ("driver", "generated")

#: The paper's training lengths (section V-B), in epochs.
PAPER_EPOCHS = {"phi": 400, "omega": 120}
