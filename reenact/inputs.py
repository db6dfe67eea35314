"""Network inputs from faces, shared by training, evaluation and the live path (numpy only).

Images enter the networks as float32 channels-first BGR in [-1, 1].
"""

from __future__ import annotations

import numpy as np

from reenact.config import ModelConfig
from reenact.face.eyes import closed_eyes, draw_lashes, lid_amounts, paint_lids
from reenact.face.mouth import MouthGuide
from reenact.face.rasterize import landmark_image
from reenact.face.warp import warp_crop


def to_net(image: np.ndarray) -> np.ndarray:
    """uint8 HxWx3 BGR -> float32 3xHxW in [-1,1]."""
    if image.dtype != np.uint8:
        raise TypeError(f"expected a uint8 image, got {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 image, got shape {image.shape}")
    return np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32) / 127.5 - 1.0


def from_net(x: np.ndarray) -> np.ndarray:
    """float32 3xHxW in [-1,1] -> uint8 HxWx3 BGR."""
    if x.ndim != 3 or x.shape[0] != 3:
        raise ValueError(f"expected a 3xHxW array, got shape {x.shape}")
    return np.clip((x.transpose(1, 2, 0) + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)


def raster(cfg: ModelConfig, points: np.ndarray) -> np.ndarray:
    """The landmark image the config's variant uses, channels first, [-1,1]."""
    p = cfg.preprocess
    return landmark_image(points, p.raster, p.crop_size, p.raster_sigma, p.line_width)


def guide_channels(guide: MouthGuide | None, size: int = 256) -> np.ndarray:
    """The mouth guide as Ω's 4 extra channels [4,H,W]: the interior in [-1,1] times its mask, and the
    mask in [0,1]; all zero without a guide (closed mouth, no face, ``--mouth-interior generated``)."""
    out = np.zeros((4, size, size), np.float32)
    if guide is None or not guide.shown:
        return out
    x0, y0, x1, y1 = guide.box
    m = guide.alpha[None]
    out[:3, y0:y1, x0:x1] = to_net(guide.patch) * m
    out[3, y0:y1, x0:x1] = guide.alpha
    return out


def warp_with_lids(target_crop: np.ndarray, target_points: np.ndarray, jgen: np.ndarray,
                   closed: np.ndarray | None = None) -> np.ndarray:
    """P_t warped L_t → J_gen, with closing eyes' lids painted (``face.eyes``: the eye faded to the
    target's inpainted skin before the warp, a lash line after). ``closed``: ``closed_eyes(P_t, L_t)``
    when already made (once per target); made here only when a lid shows."""
    amounts = lid_amounts(jgen, target_points)
    if not amounts.any():
        return warp_crop(target_crop, target_points, jgen)
    if closed is None:
        closed = closed_eyes(target_crop, target_points)
    warped = warp_crop(paint_lids(target_crop, closed, target_points, amounts), target_points, jgen)
    return draw_lashes(warped, jgen, amounts)


def guided_omega_input(target_crop: np.ndarray, target_points: np.ndarray, jgen: np.ndarray, cfg: ModelConfig,
                       warped: np.ndarray | None = None, guide: MouthGuide | None = None,
                       closed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Guided Ω input [9,256,256] = [P_t, P_t warped L_t→J_gen (lids painted), J_gen polylines], and the
    warp (uint8); with ``cfg.mouth_guide`` [13,256,256], the mouth guide's channels (``guide_channels``) last.

    ``warped`` may be passed when already computed (the live path warps once for both uses);
    ``closed``: the target crop with its eyes inpainted (``warp_with_lids``).
    """
    if warped is None:
        warped = warp_with_lids(target_crop, target_points, jgen, closed)
    parts = [to_net(target_crop), to_net(warped), raster(cfg, jgen)]
    if cfg.mouth_guide:
        parts.append(guide_channels(guide, target_crop.shape[0]))
    elif guide is not None:
        raise ValueError(f"a mouth guide was given, but Ω ({cfg.describe()}) was not trained with one")
    return np.concatenate(parts, 0), warped


def paper_omega_input(target_crop: np.ndarray, jgen_image: np.ndarray) -> np.ndarray:
    """Paper Ω input [4,256,256] = [P_t, J_gen landmark image]; jgen_image is [1,256,256]."""
    if jgen_image.shape != (1, 256, 256):
        raise ValueError(f"J_gen image must be [1,256,256], got {jgen_image.shape}")
    return np.concatenate([to_net(target_crop), jgen_image.astype(np.float32)], 0)
