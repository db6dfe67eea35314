"""One generated crop from Φ and Ω: the single path `reenact live`, `reenact eval` and the sample inputs share.

Φ moves the target's landmarks L_t to the source's expression (L_s relative to the source's
neutral face J_s), giving J_gen; Ω renders the target crop P_t with J_gen. The guided variant's Ω
returns a residual and a mask that are added to P_t warped L_t → J_gen; the paper variant's Ω
returns the face itself. For guided, each eye's opening in J_gen is then retargeted
(``face.eyes.retarget_eyes``: a driver's blink closes the target's lids whatever the eye sizes), a
closing eye's lid is painted into the warp (``inputs.warp_with_lids``), Ω's residual is kept to
the face (``RESIDUAL_REGION``), and
an Ω trained with the mouth guide (``cfg.mouth_guide``) also gets the driver's mouth interior placed
in J_gen's inner lips (``face.mouth.mouth_guide``) when a driver crop is given. Two evaluation stand-ins replace Φ: the ``oracle`` (``jgen`` = the real
J_o) and ``pix2pix`` (the paper's baseline: Ω fed the source's own landmark image).

Everything here is numpy (and OpenCV through the warp); Φ and Ω are plain callables on batch-1
float32 arrays (an inference :class:`~reenact.inference.backend.Backend`'s ``phi``/``omega``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from reenact.config import ModelConfig
from reenact.face.eyes import retarget_eyes
from reenact.face.mouth import MouthGuide, mouth_guide, paste_interior
from reenact.face.rasterize import soft_hull_mask
from reenact.inputs import from_net, guided_omega_input, paper_omega_input, raster, to_net

PhiFn = Callable[..., np.ndarray]  # batch-1 inputs -> J_gen [1,68,2] (guided) or [1,1,256,256] (paper)
OmegaFn = Callable[[np.ndarray], np.ndarray]  # [1,C,256,256] -> [1,C',256,256]

#: Where the guided Ω's residual may act: the convex hull of J_gen's jaw and brows (points 0-26),
#: grown by 6 px and feathered (sigma 6 px). Ω, trained on GRID crops, also paints at the hairline,
#: the ears and the face's outline; on other people's targets that smeared the jaw's edge and the
#: ears (validation close-ups) and cost identity. Chosen on validation (BENCHMARKS.md, issue 17).
RESIDUAL_REGION = (tuple(range(27)), 6.0, 6.0)


def residual_region(jgen: np.ndarray, size: int = 256) -> np.ndarray:
    """[size,size] float32 in [0,1]: ``RESIDUAL_REGION`` for J_gen's [68,2] crop points."""
    idx, grow, blur = RESIDUAL_REGION
    return soft_hull_mask(jgen, idx, grow, blur, size)


def phi_inputs(cfg: ModelConfig, L_s: np.ndarray, J_s: np.ndarray, L_t: np.ndarray,
               L_t_image: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """Φ's batch-1 inputs from [68,2] crop points: guided (L_s, J_s, L_t) coordinates, paper (L_s, L_t) images.

    ``L_t_image``: the paper variant's [1,1,256,256] L_t raster when already made (the live
    path rasters a target once).
    """
    if cfg.variant == "guided":
        return tuple(np.asarray(x, np.float32)[None] for x in (L_s, J_s, L_t))
    lt = L_t_image if L_t_image is not None else raster(cfg, L_t)[None]
    return raster(cfg, L_s)[None], lt


def omega_input(cfg: ModelConfig, P_t: np.ndarray, L_t: np.ndarray, jgen: np.ndarray,
                warped: np.ndarray | None = None, guide: MouthGuide | None = None,
                closed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Ω's input [C,256,256] and, for guided, P_t warped L_t → J_gen (uint8; None for paper).

    ``jgen``: J_gen as [68,2] crop points, or (paper) Φ's [1,256,256] landmark image.
    ``warped``: the guided warp when already computed. ``guide``: the mouth guide (cfg.mouth_guide;
    None gives the empty guide).
    """
    if cfg.variant == "guided":
        return guided_omega_input(P_t, L_t, jgen, cfg, warped=warped, guide=guide, closed=closed)
    image = raster(cfg, jgen) if jgen.shape == (68, 2) else jgen
    return paper_omega_input(P_t, image), None


@dataclass(frozen=True)
class Generated:
    """What one pass of Φ and Ω made for a target crop."""

    variant: str
    out: np.ndarray  # Ω's output [C',256,256]: guided residual (3) and mask (1); paper the face in [-1,1]
    jgen: np.ndarray  # J_gen: [68,2] crop points (guided, oracle) or Φ's [1,256,256] landmark image (paper)
    warped: np.ndarray | None  # guided: P_t warped L_t → J_gen (uint8), what the residual is added to
    guide: MouthGuide | None = None  # the mouth guide Ω was given (cfg.mouth_guide), None without one

    def crop(self) -> np.ndarray:
        """I_gen, the generated 256² crop (uint8 BGR): guided warp + mask·residual, or paper's face."""
        if self.variant == "guided":
            crop = from_net(np.clip(to_net(self.warped) + self.out[3:4] * self.out[:3], -1, 1))
            return paste_interior(crop, self.guide) if self.guide is not None else crop
        return from_net(self.out)


def generate_crop(cfg: ModelConfig, phi: PhiFn | None, omega: OmegaFn, P_t: np.ndarray, L_t: np.ndarray,
                  L_s: np.ndarray, J_s: np.ndarray | None, *, jgen: np.ndarray | None = None, pix2pix: bool = False,
                  L_t_image: np.ndarray | None = None, timings: dict[str, float] | None = None,
                  driver: np.ndarray | None = None,
                  target_mouth_skin: np.ndarray | None = None,
                  target_closed: np.ndarray | None = None) -> Generated:
    """Φ then Ω for target crop P_t (landmarks L_t) driven by source landmarks L_s (neutral J_s), crop pixels.

    ``jgen`` (the oracle): these [68,2] points replace Φ's J_gen (and are not retargeted).
    ``pix2pix`` (paper variant only): Ω is fed the source's landmark image, no Φ (``phi`` may be
    None). ``driver``: the driver's frame in the canonical crop (L_s's pixels; only its mouth area
    is read), for an Ω with the mouth guide; None (no face, or ``--mouth-interior generated``)
    gives the empty guide, so no driver pixel reaches Ω; ``target_mouth_skin``: the target's colour
    reference for the guide (``face.mouth.mouth_skin_mean``) and ``target_closed`` its crop with the
    eyes inpainted (``face.eyes.closed_eyes``, for painting shut lids), when made once per target. ``timings``: filled with the stage times in
    ms, ``phi`` (with the eye retargeting), ``warp`` (guided: Ω's input, the mouth guide included)
    and ``omega``, as the live overlay reports them.
    """
    if pix2pix and cfg.variant == "guided":
        raise ValueError("the pix2pix baseline uses the paper variant's Ω")
    t0 = time.perf_counter()
    if jgen is not None:
        jgen = np.asarray(jgen, np.float32)
    elif pix2pix:
        jgen = raster(cfg, L_s)  # the source's landmark image stands in for J_gen
    else:
        jgen = phi(*phi_inputs(cfg, L_s, J_s, L_t, L_t_image))[0]  # [68,2] or [1,256,256]
        if cfg.variant == "guided":
            jgen = retarget_eyes(jgen, L_t, L_s, J_s)
    t1 = time.perf_counter()
    guide = mouth_guide(driver, L_s, jgen, P_t, L_t, target_mouth_skin) if cfg.variant == "guided" and driver is not None else None
    x, warped = omega_input(cfg, P_t, L_t, jgen, guide=guide if cfg.mouth_guide else None, closed=target_closed)
    tw = time.perf_counter()
    out = omega(x[None])[0]
    if cfg.variant == "guided":
        out = out.copy()  # a backend may hand back its own buffer
        out[3] *= residual_region(jgen, out.shape[-1])
    t2 = time.perf_counter()
    if timings is not None:
        timings["phi"] = (t1 - t0) * 1000
        if warped is not None:
            timings["warp"] = (tw - t1) * 1000
            timings["omega"] = (t2 - tw) * 1000
        else:  # paper: building Ω's input is part of Ω's stage
            timings["omega"] = (t2 - t1) * 1000
    return Generated(cfg.variant, out, jgen, warped, guide)


__all__ = ["RESIDUAL_REGION", "Generated", "OmegaFn", "PhiFn", "generate_crop", "omega_input", "phi_inputs",
           "residual_region"]
