"""The networks against the paper's Table 1 and Table 2, and the variants' identities."""

from __future__ import annotations

import pytest
import torch

from reenact.config import model_config
from reenact.errors import ConfigError
from reenact.models import build_d_i, build_d_j, build_omega, build_phi

torch.set_num_threads(2)

TABLE1 = [  # (layer, H, W, C) from Table 1, layers 1..15
    (1, 128, 64), (2, 64, 128), (3, 32, 256), (4, 16, 512), (5, 8, 512), (6, 4, 512), (7, 2, 512),
    (8, 2, 512),
    (9, 4, 512), (10, 8, 512), (11, 16, 512), (12, 32, 256), (13, 64, 128), (14, 128, 64),
    (15, 256, 3),
]


def _layer_outputs(model, x):
    """Outputs of Table 1's 15 layers, collected with forward hooks."""
    unet = model.unet
    layers = list(unet.down) + [unet.bottleneck] + list(unet.up) + [unet.out]
    shapes = []
    hooks = [m.register_forward_hook(lambda _m, _i, o: shapes.append(tuple(o.shape))) for m in layers]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return shapes


def test_omega_paper_matches_table1_layer_by_layer():
    cfg = model_config("paper", "paper")
    assert cfg.base_width == 64
    omega = build_omega(cfg).eval()
    shapes = _layer_outputs(omega, torch.zeros(1, 4, 256, 256))
    assert len(shapes) == 15
    for (layer, hw, c), got in zip(TABLE1, shapes, strict=True):
        assert got == (1, c, hw, hw), f"Table 1 layer {layer}: expected {hw}x{hw}x{c}, got {got}"
    # output layer: Tanh, no BatchNorm
    assert isinstance(omega.unet.out[-1], torch.nn.Tanh)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in omega.unet.out)
    # no pooling anywhere
    assert not any(isinstance(m, (torch.nn.MaxPool2d, torch.nn.AvgPool2d)) for m in omega.modules())


def test_omega_layer_types_follow_the_paper():
    omega = build_omega(model_config("paper", "lite"))
    down2 = omega.unet.down[1]
    assert isinstance(down2[0], torch.nn.LeakyReLU) and down2[0].negative_slope == 0.2
    assert isinstance(down2[1], torch.nn.Conv2d) and down2[1].kernel_size == (4, 4) and down2[1].stride == (2, 2)
    assert isinstance(down2[2], torch.nn.BatchNorm2d)
    up = omega.unet.up[0]
    assert isinstance(up[0], torch.nn.ReLU) and isinstance(up[1], torch.nn.ConvTranspose2d) and isinstance(up[2], torch.nn.BatchNorm2d)
    assert up[1].kernel_size == (4, 4) and up[1].stride == (2, 2)


def test_resize_upsampling_keeps_table1_shapes():
    cfg = model_config("paper", "lite", upsample="resize")
    omega = build_omega(cfg).eval()
    w = cfg.base_width
    shapes = _layer_outputs(omega, torch.zeros(1, 4, 256, 256))
    for (_layer, hw, c), got in zip(TABLE1, shapes, strict=True):
        cc = 3 if c == 3 else c * w // 64
        assert got == (1, cc, hw, hw)


def test_guided_omega_outputs_residual_and_mask():
    cfg = model_config("guided", "lite")
    omega = build_omega(cfg).eval()
    with torch.no_grad():
        y = omega(torch.randn(2, 9, 256, 256))
    assert y.shape == (2, 4, 256, 256)
    assert y[:, :3].abs().max() <= 2.0 and y[:, 3].min() >= 0.0 and y[:, 3].max() <= 1.0


def test_discriminator_matches_table2_with_spectral_norm():
    cfg = model_config("paper", "paper")
    d = build_d_i(cfg)
    shapes = []
    convs = [m for m in d.net if isinstance(m, torch.nn.Conv2d)]
    hooks = [m.register_forward_hook(lambda _m, _i, o: shapes.append(tuple(o.shape[1:]))) for m in convs]
    with torch.no_grad():
        out = d(torch.zeros(1, 3, 256, 256), torch.zeros(1, 3, 256, 256))
    for h in hooks:
        h.remove()
    assert shapes == [(64, 128, 128), (128, 64, 64), (256, 32, 32), (512, 31, 31), (1, 30, 30)]
    assert isinstance(d.net[-1], torch.nn.Sigmoid) and 0 <= out.min() and out.max() <= 1
    assert convs[0].in_channels == 6  # P_t and an image
    sn = [hasattr(c, "parametrizations") and "weight" in c.parametrizations for c in convs]
    assert sn == [False, True, True, True, False]
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in d.modules())


def test_paper_phi_returns_target_when_decoder_output_is_zeroed():
    cfg = model_config("paper", "lite")
    phi = build_phi(cfg).eval()
    last = phi.dec[-2]
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.zeros_(last.bias)
    ls, lt = torch.rand(1, 1, 256, 256) * 2 - 1, torch.rand(1, 1, 256, 256) * 2 - 1
    with torch.no_grad():
        assert torch.equal(phi(ls, lt), lt)
    assert phi.enc_source is not phi.enc_target  # G_Enc1, G_Enc2: separate weights
    assert phi.enc_source[0].weight.data_ptr() != phi.enc_target[0].weight.data_ptr()


def test_guided_phi_is_the_plain_transfer_when_correction_is_zeroed():
    cfg = model_config("guided", "lite")
    phi = build_phi(cfg).eval()
    for p in list(phi.net.parameters())[:-2]:
        torch.nn.init.normal_(p)  # the earlier layers do not matter once the last is zero
    ls, js, lt = (torch.rand(3, 68, 2) * 256 for _ in range(3))
    with torch.no_grad():
        assert torch.allclose(phi(ls, js, lt), lt + (ls - js), atol=1e-4)
        torch.nn.init.normal_(phi.net[-1].weight)
        assert not torch.allclose(phi(ls, js, lt), lt + (ls - js), atol=1e-2)


def test_landmark_discriminators():
    dj_img = build_d_j(model_config("paper", "lite"))
    assert dj_img(torch.zeros(2, 1, 256, 256)).shape == (2, 1, 30, 30)
    dj_xy = build_d_j(model_config("guided", "lite"))
    assert dj_xy(torch.zeros(2, 68, 2)).shape == (2, 1)


@pytest.mark.parametrize(
    ("variant", "bad", "expected"),
    [("paper", (1, 3, 256, 256), "[N,4,256,256]"), ("guided", (1, 4, 256, 256), "[N,9,256,256]"), ("paper", (1, 4, 128, 128), "[N,4,256,256]")],
)
def test_omega_rejects_wrong_input_with_expected_and_found(variant, bad, expected):
    omega = build_omega(model_config(variant, "lite"))
    with pytest.raises(ValueError) as err:
        omega(torch.zeros(*bad))
    assert expected in str(err.value) and str(list(bad)) in str(err.value)


def test_phi_rejects_wrong_input():
    with pytest.raises(ValueError, match=r"\[N,68,2\]"):
        build_phi(model_config("guided", "lite"))(torch.zeros(1, 68, 3), torch.zeros(1, 68, 2), torch.zeros(1, 68, 2))
    with pytest.raises(ValueError, match=r"\[N,1,256,256\]"):
        build_phi(model_config("paper", "lite"))(torch.zeros(1, 3, 256, 256), torch.zeros(1, 1, 256, 256))


def test_unknown_preset_or_variant_names_the_choices():
    with pytest.raises(ConfigError, match="lite"):
        model_config("guided", "huge")
    with pytest.raises(ConfigError, match="guided"):
        model_config("fancy", "lite")
