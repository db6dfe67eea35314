"""Ω, the expression transfer module: the paper's modified U-Net (Table 1).

Stateless: ``forward(x) -> y``; nothing is kept between calls.
"""

from __future__ import annotations

import torch
from torch import nn

from reenact.config import ModelConfig

#: Table 1 encoder widths as multiples of the base width (layers 1-7).
ENC_MULT = (1, 2, 4, 8, 8, 8, 8)


def _down(cin: int, cout: int, first: bool) -> nn.Sequential:
    """Down-sampling layer: LeakyReLU(0.2) + Conv 4x4 stride 2 + BatchNorm (layer 1: Conv only)."""
    if first:
        return nn.Sequential(nn.Conv2d(cin, cout, 4, 2, 1))
    return nn.Sequential(nn.LeakyReLU(0.2), nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout))


def _up_conv(cin: int, cout: int, upsample: str, bias: bool) -> nn.Module:
    """x2 up-sampling: a transposed 4x4 conv (paper) or bilinear resize + 3x3 conv (no checkerboard)."""
    if upsample == "convT":
        return nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=bias)
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False), nn.Conv2d(cin, cout, 3, 1, 1, bias=bias))


def _up(cin: int, cout: int, upsample: str) -> nn.Sequential:
    """Up-sampling layer: ReLU + (transposed) conv stride 2 + BatchNorm."""
    return nn.Sequential(nn.ReLU(), _up_conv(cin, cout, upsample, bias=False), nn.BatchNorm2d(cout))


class UNetGenerator(nn.Module):
    """The modified U-Net of Table 1: 7 down layers, a 2x2 bottleneck, 6 up layers, output layer.

    At 256x256 input and base width 64 the layer outputs are exactly Table 1:
    128²x64, 64²x128, 32²x256, 16²x512, 8²x512, 4²x512, 2²x512 | bottleneck 2²x512 |
    4²x512, 8²x512, 16²x512, 32²x256, 64²x128, 128²x64 | 256²x3 (Tanh). Skips concatenate
    layer k's output with the mirror up layer's input. No pooling; no BatchNorm on the output.
    """

    def __init__(self, in_channels: int, out_channels: int, base_width: int = 64, upsample: str = "convT") -> None:
        super().__init__()
        w = base_width
        enc = [w * m for m in ENC_MULT]
        self.down = nn.ModuleList(_down(in_channels if i == 0 else enc[i - 1], enc[i], i == 0) for i in range(7))
        # bottleneck (layer 8): LeakyReLU, Conv 3x3 stride 1 (keeps 2x2), BatchNorm, ReLU
        self.bottleneck = nn.Sequential(
            nn.LeakyReLU(0.2), nn.Conv2d(enc[6], enc[6], 3, 1, 1, bias=False), nn.BatchNorm2d(enc[6]), nn.ReLU()
        )
        # up layers 9..14: input = previous output concatenated with the mirror down layer
        ups = []
        prev = enc[6]
        for k in range(6):  # layer 9 + k mirrors down layer 7 - k (index 6 - k)
            skip = enc[6 - k]
            cout = enc[5 - k]
            ups.append(_up(prev + skip, cout, upsample))
            prev = cout
        self.up = nn.ModuleList(ups)
        # output layer (15): ReLU + up-conv + Tanh (no BatchNorm), input = layer 14 ⊕ layer 1
        self.out = nn.Sequential(nn.ReLU(), _up_conv(prev + enc[0], out_channels, upsample, bias=True), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N,C_in,256,256] -> [N,C_out,256,256]
        skips = []
        h = x
        for layer in self.down:
            h = layer(h)
            skips.append(h)
        h = self.bottleneck(h)
        for k, layer in enumerate(self.up):
            h = layer(torch.cat([h, skips[6 - k]], 1))
        return self.out(torch.cat([h, skips[0]], 1))


class ExpressionTransfer(nn.Module):
    """Ω in the paper, eq. (2): I_gen = Ω(J_gen, P_t).

    - ``paper`` variant: input [P_t (3), J_gen landmark image (1)] -> I_gen [N,3,256,256] in [-1,1].
    - ``guided`` variant: input [P_t (3), P_t warped L_t->J_gen (3), J_gen polylines (3)] ->
      [N,4,256,256]: channels 0-2 a residual in [-2,2] and channel 3 a mask in [0,1] over the
      warped target; :func:`compose` turns them into I_gen. Outputting the residual, not the
      image, lets the full-resolution paste-back add it to a sharp warp of the photo.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.variant = cfg.variant
        self.in_channels = cfg.omega_in_channels
        self.unet = UNetGenerator(cfg.omega_in_channels, cfg.omega_out_channels, cfg.base_width, cfg.upsample)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels or x.shape[2:] != (256, 256):
            raise ValueError(f"Ω ({self.variant}) expects input [N,{self.in_channels},256,256], got {list(x.shape)}")
        y = self.unet(x)
        if self.variant == "paper":
            return y  # [N,3,256,256] Tanh image
        # the U-Net's Tanh output is rescaled: residual to [-2,2], mask to [0,1]
        return torch.cat([2.0 * y[:, :3], 0.5 * (y[:, 3:4] + 1.0)], 1)  # [N,4,256,256]


def compose(warped: torch.Tensor, head: torch.Tensor) -> torch.Tensor:
    """Guided I_gen = clamp(warped + mask * residual, -1, 1). warped [N,3,H,W], head [N,4,H,W]."""
    return torch.clamp(warped + head[:, 3:4] * head[:, :3], -1.0, 1.0)


def zero_residual_(net: ExpressionTransfer) -> ExpressionTransfer:
    """Zero the guided Ω's residual output channels, in place, so a fresh Ω composes to exactly
    the warped target: training then starts from the plain warp and adds only what lowers the loss.
    The mask channel keeps its random init (its gradient needs a non-zero residual to act on)."""
    if net.variant != "guided":
        raise ValueError("only the guided Ω outputs a residual")
    conv = net.unet.out[1]
    conv = conv[1] if isinstance(conv, nn.Sequential) else conv  # resize: Upsample then Conv2d
    with torch.no_grad():
        if isinstance(conv, nn.ConvTranspose2d):  # weight [C_in, C_out, k, k]
            conv.weight[:, :3].zero_()
        else:  # Conv2d weight [C_out, C_in, k, k]
            conv.weight[:3].zero_()
        conv.bias[:3].zero_()
    return net
