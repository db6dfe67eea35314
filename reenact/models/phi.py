"""Φ, the landmark fusion module (eq. 1), in the paper's image form and the guided coordinate form.

Both are stateless: ``forward(...) -> J_gen``.
"""

from __future__ import annotations

import torch
from torch import nn

from reenact.config import ModelConfig
from reenact.face.topology import TEMPLATE_256

# Encoder widths as multiples of phi_width: 256 -> 128 -> 64 -> 32 -> 16 -> 8 -> 4.
_PHI_MULT = (1, 2, 4, 8, 8, 8)


def _encoder(w: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    cin = 1
    for i, m in enumerate(_PHI_MULT):
        cout = w * m
        layers += [nn.Conv2d(cin, cout, 4, 2, 1, bias=i == 0)]
        if i > 0:
            layers += [nn.BatchNorm2d(cout)]
        layers += [nn.LeakyReLU(0.2)]
        cin = cout
    return nn.Sequential(*layers)  # [N,1,256,256] -> [N,8w,4,4]


class LandmarkFusion(nn.Module):
    """Φ in the paper, eq. (1): J_gen = L_t + G_Dec(G_Enc1(L_s), G_Enc2(L_t)) on landmark images.

    L_s, L_t: 1-channel landmark images [N,1,256,256] in [-1,1]. G_Enc1 and G_Enc2 have
    separate weights; their 4x4 latents are concatenated and G_Dec decodes the deviation
    (2·tanh, since a difference of two [-1,1] images spans [-2,2]).

    Sizes (the paper gives none): six stride-2 4x4 convs take 256² to 4², the same kernel
    as Ω. The first layers run at full resolution because the landmark dots are 1.5 px and
    their displacement is the signal; a 4x4 latent with 8·phi_width channels keeps where each
    part is, which a flat vector would have to relearn. phi_width 16 (lite) / 32 (paper).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        w = cfg.phi_width
        self.enc_source = _encoder(w)  # G_Enc1
        self.enc_target = _encoder(w)  # G_Enc2
        dec: list[nn.Module] = []
        cin = 2 * w * _PHI_MULT[-1]
        for m in reversed(_PHI_MULT[:-1]):
            dec += [nn.ConvTranspose2d(cin, w * m, 4, 2, 1, bias=False), nn.BatchNorm2d(w * m), nn.ReLU()]
            cin = w * m
        dec += [nn.ConvTranspose2d(cin, 1, 4, 2, 1), nn.Tanh()]
        self.dec = nn.Sequential(*dec)  # G_Dec: [N,16w,4,4] -> [N,1,256,256]

    def deviation(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """G_Dec(G_Enc1(L_s), G_Enc2(L_t)), [N,1,256,256]."""
        z = torch.cat([self.enc_source(source), self.enc_target(target)], 1)
        return 2.0 * self.dec(z)

    def forward(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:  # -> J_gen [N,1,256,256]
        for name, t in (("L_s", source), ("L_t", target)):
            if t.ndim != 4 or t.shape[1:] != (1, 256, 256):
                raise ValueError(f"Φ (paper) expects {name} as [N,1,256,256], got {list(t.shape)}")
        return target + self.deviation(source, target)


class GuidedLandmarkFusion(nn.Module):
    """Φ for the guided variant: J_gen = L_t + (L_s − J_s) + Φ(L_s − J_s, L_t) on coordinates.

    All points are [N,68,2] in canonical-crop pixels. L_s − J_s is the actor's expression
    displacement from their own neutral face; the MLP adapts it to the target's face shape.
    Its last layer starts at zero, so an untrained Φ is the plain landmark warp.
    Inputs are scaled by 1/16 (a few pixels of motion -> O(0.1)); the output by 16 back.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        h = cfg.phi_hidden
        self.register_buffer("template", torch.as_tensor(TEMPLATE_256, dtype=torch.float32), persistent=False)
        self.net = nn.Sequential(nn.Linear(272, h), nn.LeakyReLU(0.2), nn.Linear(h, h), nn.LeakyReLU(0.2), nn.Linear(h, 136))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def correction(self, displacement: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Φ(L_s − J_s, L_t): the learned correction to the transferred displacement, [N,68,2]."""
        x = torch.cat([displacement.flatten(1), (target - self.template).flatten(1)], 1) / 16.0
        return 16.0 * self.net(x).view(-1, 68, 2)

    def forward(self, source: torch.Tensor, source_neutral: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        for name, t in (("L_s", source), ("J_s", source_neutral), ("L_t", target)):
            if t.ndim != 3 or t.shape[1:] != (68, 2):
                raise ValueError(f"Φ (guided) expects {name} as [N,68,2], got {list(t.shape)}")
        d = source - source_neutral
        return target + d + self.correction(d, target)  # J_gen [N,68,2]
