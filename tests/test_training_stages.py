"""The trainer split by stage: the extra-loss registry, D frozen in the G step, checkpoint keys kept."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from _face_fixtures import tiny_bank  # noqa: F401
from safetensors import safe_open
from test_training import _cfg, _phi

from reenact.config import EXTRA_LOSS_NAMES
from reenact.errors import ConfigError
from reenact.training import extra_losses, losses
from reenact.training.batches import make_batch
from reenact.training.trainer import CKPT_META_KEY, Trainer

KEYS = json.loads((Path(__file__).parent / "data" / "checkpoint_keys.json").read_text())["checkpoints"]


def _first_batch(t: Trainer):
    """The batch train_step draws for step 0 (rank 0)."""
    return make_batch(t.bank, t.pairs, np.random.default_rng([t.cfg.seed, 0, 0]), t.cfg.batch_size)


def test_the_registry_holds_every_configurable_extra_loss_and_refuses_others():
    assert sorted(extra_losses.EXTRA_LOSSES) == sorted(EXTRA_LOSS_NAMES)
    with pytest.raises(ConfigError, match="unknown extra losses"):
        extra_losses.extra_terms(("perceptual",))
    with pytest.raises(ConfigError, match="unknown extra losses"):
        _cfg("omega", extra_losses=("perceptual",))
    # the step's order is the registry's, whatever the order asked
    assert [n for n, _ in extra_losses.extra_terms(("gradient", "mouth_l1"))] == ["mouth_l1", "gradient"]


def _eval_mode(net, fn):
    """fn() with ``net`` in eval mode: spectral norm then reuses the vectors of the last training
    forward instead of iterating again, so it reproduces that forward's weights exactly."""
    net.eval()
    try:
        return fn()
    finally:
        net.train()


def test_each_extra_loss_is_called_once_with_the_steps_inputs(tiny_bank, tmp_path, monkeypatch):  # noqa: F811
    """Every registered loss sees the step's Ω output, I_o, P_t, J_o and weights; its value, logged,
    equals the loss's primitive on inputs built here from the batch alone."""
    _phi(tiny_bank, tmp_path)
    seen: dict[str, list] = {}
    for name, fn in list(extra_losses.EXTRA_LOSSES.items()):
        def spy(s, name=name, fn=fn):
            value = fn(s)
            seen.setdefault(name, []).append((s, value.item()))
            return value
        monkeypatch.setitem(extra_losses.EXTRA_LOSSES, name, spy)
    t = Trainer(_cfg("omega", steps=1, extra_losses=EXTRA_LOSS_NAMES), tiny_bank, tmp_path)
    b = _first_batch(t)
    st = t.stage
    P_t, I_o, wt = st._imgs(b.P_t), st._imgs(b.I_o), torch.as_tensor(b.weight)
    with torch.no_grad():  # Ω in train mode, as in the step: the same output
        want_fake = st.generate(*st.omega_inputs(b))
    logs = t.train_step()
    assert sorted(seen) == sorted(EXTRA_LOSS_NAMES) and all(len(v) == 1 for v in seen.values())
    s = seen["mouth_l1"][0][0]
    assert all(v[0][0] is s for v in seen.values())  # one context per step
    torch.testing.assert_close(s.fake.detach(), want_fake)
    assert s.fake.requires_grad and torch.equal(s.real, I_o) and torch.equal(s.condition, P_t)
    assert np.array_equal(s.J_o, b.J_o) and torch.equal(s.weight, wt)
    assert s.disc is st.disc_raw and s.disc_m is st.disc_m_raw and s.face_id is st.face_id
    for name, calls in seen.items():
        assert logs[name] == calls[0][1], name
    fake = s.fake.detach()
    mask = torch.as_tensor(losses.mouth_mask(b.J_o))
    assert logs["mouth_l1"] == pytest.approx(losses.masked_l1(fake, I_o, mask, wt).item(), rel=1e-6)
    assert logs["gradient"] == pytest.approx(losses.gradient_difference(fake, I_o).item(), rel=1e-6)
    want_id = losses.identity_loss(st.face_id, fake, I_o, b.J_o, np.random.default_rng([t.cfg.seed, 0, 0, 1]), wt)
    assert logs["identity"] == pytest.approx(want_id.item(), rel=1e-5)
    corners = losses.mouth_windows(b.J_o)
    Pm, Fm = losses.crop_windows(P_t, corners), losses.crop_windows(fake, corners)
    torch.testing.assert_close((s.mouth[0], s.mouth[1].detach()), (Pm, Fm))
    with torch.no_grad():
        d_m = _eval_mode(st.disc_m_raw, lambda: st.disc_m_raw(Pm, Fm))
        real_feats = _eval_mode(st.disc_raw, lambda: st.disc_raw.features(P_t, I_o)[1])
    assert logs["mouth_gan"] == pytest.approx(losses.generator_adv_loss(d_m).item(), rel=1e-5)
    assert all(f.requires_grad for f in s.fake_features) and len(s.fake_features) == len(real_feats) == 4
    # D_I's last forward in the step was the real face's (feature matching's target), which eval mode repeats
    want_fm = sum((f.detach() - r).abs().mean() for f, r in zip(s.fake_features, real_feats, strict=True)) / 4
    assert logs["feature_matching"] == pytest.approx(want_fm.item(), rel=1e-5)


def _watch_discriminators(stage):
    """Record, at every forward of each discriminator, whether all its parameters require grad;
    and the discriminators' gradients as their optimiser is about to step (the D step's alone)."""
    flags: dict[str, list[bool]] = {}
    grads: dict[str, list[torch.Tensor]] = {}
    nets = {"disc": (stage.disc_raw, stage.opt_d), "disc_m": (stage.disc_m_raw, stage.opt_dm)}
    for name, (net, opt) in nets.items():
        if net is None:
            continue
        first = next(m for m in net.modules() if any(True for _ in m.parameters(recurse=False)))
        # on the first layer: D_I's feature pass calls its layers one by one, not its forward
        first.register_forward_pre_hook(lambda _m, _a, name=name, net=net: flags.setdefault(name, []).append(
            all(p.requires_grad for p in net.parameters())))
        opt.register_step_pre_hook(lambda o, _a, _k, name=name: grads.__setitem__(
            name, [p.grad.clone() for g in o.param_groups for p in g["params"]]))
    return flags, grads, nets


@pytest.mark.parametrize(("stage", "extra"), [("phi", ()), ("omega", ("feature_matching", "mouth_gan"))])
def test_the_discriminators_are_frozen_during_the_generator_step(tiny_bank, tmp_path, stage, extra):  # noqa: F811
    """D (and D_M) run with requires_grad on in their own step, off in the G step, and on again
    after; the G step leaves no gradient on them (their gradients are the D step's)."""
    if stage == "omega":
        _phi(tiny_bank, tmp_path)
    t = Trainer(_cfg(stage, steps=1, extra_losses=extra), tiny_bank, tmp_path)
    flags, grads, nets = _watch_discriminators(t.stage)
    t.train_step()
    # D step: real and fake, trainable; G step: the fake (and, feature matching, the real) frozen
    assert flags["disc"] == ([True, True, False, False] if extra else [True, True, False])
    if extra:
        assert flags["disc_m"] == [True, True, False]
    for name, (net, opt) in nets.items():
        if net is None:
            continue
        params = [p for g in opt.param_groups for p in g["params"]]
        assert all(p.requires_grad for p in net.parameters()), name
        assert all(torch.equal(p.grad, g) for p, g in zip(params, grads[name], strict=True)), name
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in t.stage.gen_raw.parameters())


def _keys(path: Path) -> dict[str, list[str]]:
    with safe_open(str(path), "pt") as f:
        tensors, header = sorted(f.keys()), f.metadata()
    meta = json.loads(header[CKPT_META_KEY])
    return {"tensors": tensors, "header": sorted(header), "state": sorted(meta), "param_groups": sorted(meta["param_groups"])}


def test_checkpoint_keys_are_those_the_trainer_wrote_before_the_split(tiny_bank, tmp_path):  # noqa: F811
    """Old checkpoints stay resumable: a fresh checkpoint has exactly the tensor keys, header keys
    and state keys the trainer wrote before it was split by stage (tests/data/checkpoint_keys.json)."""
    for variant in ("guided", "paper"):
        _phi(tiny_bank, tmp_path / variant, variant)
        assert _keys(tmp_path / variant / "checkpoint_phi.safetensors") == KEYS[f"phi_{variant}"]
        cfg = _cfg("omega", variant, steps=1, ema=0.5, extra_losses=("mouth_gan",))
        Trainer(cfg, tiny_bank, tmp_path / variant).run(progress=False)
        assert _keys(tmp_path / variant / "checkpoint_omega.safetensors") == KEYS[f"omega_{variant}_ema_mouth_gan"]
    Trainer(_cfg("omega", "paper", steps=1, pix2pix=True), tiny_bank, tmp_path / "p2p").run(progress=False)
    assert _keys(tmp_path / "p2p" / "checkpoint_omega.safetensors") == KEYS["omega_pix2pix"]



def _ddp_omega_worker(rank: int, world: int, port: int, out: str, bank) -> None:
    import os

    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                      REENACT_DIST_BACKEND="gloo")
    torch.set_num_threads(1)
    from reenact.training.trainer import init_distributed

    init_distributed()
    t = Trainer(_cfg("omega", steps=2, extra_losses=("feature_matching", "mouth_gan")), bank, out)
    t.run(progress=False)
    flat = [torch.cat([p.detach().flatten() for p in net.parameters()]) for net in (t.stage.gen_raw, t.stage.disc_m_raw)]
    torch.save(flat, os.path.join(out, f"omega_rank{rank}.pt"))
    torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_omega_with_frozen_discriminators_trains_under_distributed_data_parallel(tiny_bank, tmp_path):  # noqa: F811
    """The G step calls D_I and D_M unwrapped and frozen; DDP still averages Ω's and D_M's gradients."""
    import torch.multiprocessing as mp
    from test_training import _free_port

    _phi(tiny_bank, tmp_path)
    mp.spawn(_ddp_omega_worker, args=(2, _free_port(), str(tmp_path), tiny_bank), nprocs=2, join=True)
    a, b = (torch.load(tmp_path / f"omega_rank{r}.pt") for r in (0, 1))
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_the_pix2pix_baseline_is_declared_in_config_json_as_before(tiny_bank, tmp_path):  # noqa: F811
    """The key and value folders trained before carry (eval tells a pix2pix folder by them)."""
    from reenact.errors import WeightsError
    from reenact.paths import WEIGHTS_DIR
    from reenact.weights_io import PIX2PIX, baseline_of

    Trainer(_cfg("omega", "paper", steps=1, pix2pix=True), tiny_bank, tmp_path).run(progress=False)
    raw = json.loads((tmp_path / "config.json").read_text())
    assert raw["baseline"] == "pix2pix" and baseline_of(raw) == PIX2PIX
    assert baseline_of(json.loads((WEIGHTS_DIR / "config.json").read_text())) is None  # the method itself
    with pytest.raises(WeightsError, match="'baseline' must be a name"):
        baseline_of({"baseline": 1})
