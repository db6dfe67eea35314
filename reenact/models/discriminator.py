"""The discriminators: D_I (Markov / PatchGAN, Table 2) and D_J (landmarks, eq. 3)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


class MarkovDiscriminator(nn.Module):
    """D_I in the paper (Table 2): a conditional Markov discriminator with spectral norm.

    Input: P_t and a real or generated image, concatenated (6 channels, 256x256).
    Layers at base width 64: 128²x64 (Conv, LeakyReLU 0.2) -> 64²x128 and 32²x256
    (Conv, SN, ReLU — the text's "convolution, spectral normalization with ReLU") ->
    31²x512 (Conv, SN, LeakyReLU — Table 2 row 4) -> 30²x1 (Conv, Sigmoid). The loss uses
    the mean over the 30x30 map.
    """

    def __init__(self, in_channels: int = 6, base_width: int = 64) -> None:
        super().__init__()
        w = base_width
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, w, 4, 2, 1),
            nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(w, 2 * w, 4, 2, 1)),
            nn.ReLU(),
            spectral_norm(nn.Conv2d(2 * w, 4 * w, 4, 2, 1)),
            nn.ReLU(),
            spectral_norm(nn.Conv2d(4 * w, 8 * w, 4, 1, 1)),
            nn.LeakyReLU(0.2),
            nn.Conv2d(8 * w, 1, 4, 1, 1),
            nn.Sigmoid(),
        )

    def forward(self, condition: torch.Tensor, image: torch.Tensor) -> torch.Tensor:  # -> [N,1,30,30]
        return self.net(torch.cat([condition, image], 1))

    def features(self, condition: torch.Tensor, image: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The output and the activations after each hidden layer (for feature matching)."""
        x = torch.cat([condition, image], 1)
        feats = []
        for layer in self.net:
            x = layer(x)
            if isinstance(layer, (nn.ReLU, nn.LeakyReLU)):
                feats.append(x)
        return x, feats


class LandmarkImageDiscriminator(nn.Module):
    """D_J for the ``paper`` variant (eq. 3): a small PatchGAN on 1-channel landmark images.

    Unconditional, as eq. 3 is: it judges whether a landmark image looks like a real face's.
    256² -> 128² -> 64² -> 32² -> 31² -> 30² probabilities, spectral norm throughout.
    """

    def __init__(self, base_width: int = 16) -> None:
        super().__init__()
        w = base_width
        self.net = nn.Sequential(
            spectral_norm(nn.Conv2d(1, w, 4, 2, 1)),
            nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(w, 2 * w, 4, 2, 1)),
            nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(2 * w, 4 * w, 4, 2, 1)),
            nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(4 * w, 8 * w, 4, 1, 1)),
            nn.LeakyReLU(0.2),
            nn.Conv2d(8 * w, 1, 4, 1, 1),
            nn.Sigmoid(),
        )

    def forward(self, landmark_image: torch.Tensor) -> torch.Tensor:  # [N,1,256,256] -> [N,1,30,30]
        return self.net(landmark_image)


class LandmarkCoordDiscriminator(nn.Module):
    """D_J for the ``guided`` variant (eq. 3 on coordinates): an MLP on 68 canonical-crop points.

    Input [N,68,2] in crop pixels, centred on the canonical template and scaled so a few
    pixels of motion are O(0.1). Spectral norm on every layer.
    """

    def __init__(self, hidden: int = 256) -> None:
        super().__init__()
        from reenact.face.topology import TEMPLATE_256

        self.register_buffer("template", torch.as_tensor(TEMPLATE_256, dtype=torch.float32), persistent=False)
        self.net = nn.Sequential(
            spectral_norm(nn.Linear(136, hidden)),
            nn.LeakyReLU(0.2),
            spectral_norm(nn.Linear(hidden, hidden)),
            nn.LeakyReLU(0.2),
            spectral_norm(nn.Linear(hidden, 1)),
            nn.Sigmoid(),
        )

    def forward(self, points: torch.Tensor) -> torch.Tensor:  # [N,68,2] -> [N,1]
        return self.net(((points - self.template) / 16.0).flatten(1))
