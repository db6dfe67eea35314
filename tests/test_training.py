"""Training: a short seeded run learns, checkpoints round-trip, resume continues the same curve, DDP."""

from __future__ import annotations

import json
import os
import socket

import numpy as np
import pytest
import torch

from reenact.cli import main
from reenact.config import Preprocess, TrainConfig, model_config
from reenact.errors import ConfigError, WeightsError
from reenact.training.batches import ordered_batch
from reenact.training.trainer import Trainer
from reenact.weights_io import load_networks, load_state

torch.set_num_threads(2)


def _cfg(stage: str, variant: str = "guided", steps: int = 6, **kw) -> TrainConfig:
    mcfg = model_config(variant, "lite", base_width=4, phi_width=4, phi_hidden=32)
    args = dict(stage=stage, model=mcfg, steps=steps, batch_size=2, checkpoint_every=1000, val_every=1000, val_pairs=4)
    args.update(kw)
    return TrainConfig(**args)


def _phi(tiny_bank, out, variant="guided"):
    t = Trainer(_cfg("phi", variant, steps=2), tiny_bank, out)
    t.run(progress=False)
    return t


def _fixed_l1(trainer: Trainer, bank, n: int = 6) -> float:
    """Ω's L1 to I_o on a fixed set of training pairs, eval mode."""
    b = ordered_batch(bank, trainer.pairs[:: max(1, len(trainer.pairs) // n)][:n])
    trainer.stage.gen.eval()
    with torch.no_grad():
        x, warped = trainer.stage.omega_inputs(b)
        fake = trainer.stage.generate(x, warped)
        out = (fake - trainer.stage._imgs(b.I_o)).abs().mean().item()
    trainer.stage.gen.train()
    return out


@pytest.mark.parametrize("variant", ["guided", "paper"])
def test_short_seeded_run_lowers_omega_l1(tiny_bank, tmp_path, variant):
    _phi(tiny_bank, tmp_path, variant)
    cfg = _cfg("omega", variant, steps=25)
    cfg = TrainConfig(**{**cfg.__dict__, "lr_g": 1e-3})
    t = Trainer(cfg, tiny_bank, tmp_path)
    if variant == "guided":  # undo the zeroed residual (a fresh guided Ω is the warp) so there is error to learn away
        t.stage.gen.unet.out[1].reset_parameters()
    before = _fixed_l1(t, tiny_bank)
    t.run(progress=False)
    after = _fixed_l1(t, tiny_bank)
    assert after < before * 0.9, (before, after)
    lines = [json.loads(x) for x in (tmp_path / "metrics_omega.jsonl").read_text().splitlines()]
    assert lines[-1]["step"] == 25 and "val_ssim" in lines[-1] and "val_psnr" in lines[-1]
    assert (tmp_path / "train_omega.json").is_file() and (tmp_path / "config.json").is_file()


def test_checkpoint_save_load_gives_identical_outputs(tiny_bank, tmp_path):
    _phi(tiny_bank, tmp_path)
    t = Trainer(_cfg("omega", steps=3), tiny_bank, tmp_path)
    t.run(progress=False)
    cfg, nets = load_networks(tmp_path)
    b = ordered_batch(tiny_bank, t.pairs[:2])
    x, _ = t.stage.omega_inputs(b)
    t.stage.gen_raw.eval()
    with torch.no_grad():
        assert torch.equal(t.stage.gen_raw(x), nets["omega"](x))


def test_resume_continues_the_same_loss_curve(tiny_bank, tmp_path):
    _phi(tiny_bank, tmp_path / "a")
    _phi(tiny_bank, tmp_path / "b")
    straight = Trainer(_cfg("omega", steps=6), tiny_bank, tmp_path / "a").run(progress=False)
    first = Trainer(_cfg("omega", steps=3, checkpoint_every=3), tiny_bank, tmp_path / "b")
    first.run(progress=False)
    resumed = Trainer(_cfg("omega", steps=6), tiny_bank, tmp_path / "b")
    assert resumed.load_checkpoint() and resumed.step == 3
    rest = resumed.run(progress=False)
    a = [h["loss_g"] for h in straight[3:]]
    b = [h["loss_g"] for h in rest]
    assert np.allclose(a, b, rtol=1e-4, atol=1e-5), (a, b)


def test_a_crash_while_checkpointing_never_pairs_tensors_and_state_of_two_steps(tiny_bank, tmp_path, monkeypatch):
    """The checkpoint's tensors and its JSON state are one file: a crash after the tensors are written
    (here: every later JSON write fails) cannot leave step-2 weights beside a step-1 state."""
    from reenact.training import trainer as trainer_module

    t = _phi(tiny_bank, tmp_path)  # Φ, trained 2 steps, checkpointed at its end
    t.step += 1
    with torch.no_grad():
        for p in t.stage.gen_raw.parameters():
            p.add_(0.5)

    def crash(*_a, **_k):
        raise OSError("disk gone")

    monkeypatch.setattr(trainer_module, "atomic_write_json", crash)
    try:
        t.save_checkpoint()
    except OSError:
        pass
    monkeypatch.undo()
    r = Trainer(_cfg("phi", steps=4), tiny_bank, tmp_path)
    assert r.load_checkpoint()
    saved = {k: v for k, v in t.stage.gen_raw.state_dict().items()}
    loaded = r.stage.gen_raw.state_dict()
    same = all(torch.equal(saved[k], loaded[k]) for k in saved)
    assert r.step == 3 and same, (r.step, same)
    assert not (tmp_path / "checkpoint_phi.json").exists(), "the state lives in the checkpoint's header only"


def test_a_checkpoint_with_its_state_beside_it_still_resumes(tiny_bank, tmp_path):
    """Checkpoints written before the state moved into the header (tensors + checkpoint_<stage>.json)."""
    from safetensors.torch import load_file, save

    from reenact.training.trainer import CKPT_META_KEY
    from reenact.weights_io import read_meta

    t = _phi(tiny_bank, tmp_path)
    path = tmp_path / "checkpoint_phi.safetensors"
    state = read_meta(path)[CKPT_META_KEY]
    path.write_bytes(save(load_file(str(path)), metadata={"format": "reenact-ckpt-1", "stage": "phi"}))
    (tmp_path / "checkpoint_phi.json").write_text(state)
    r = Trainer(_cfg("phi", steps=4), tiny_bank, tmp_path)
    assert r.load_checkpoint() and r.step == t.step == 2


def test_phi_keeps_its_best_validation_checkpoint(tiny_bank, tmp_path):
    t = Trainer(_cfg("phi", steps=4), tiny_bank, tmp_path)
    t.run(progress=False)
    rows = [json.loads(x) for x in (tmp_path / "metrics_phi.jsonl").read_text().splitlines()]
    assert rows[0]["step"] == 0 and "val_landmark_px" in rows[0]
    from reenact.weights_io import read_meta

    meta = read_meta(tmp_path / "phi.safetensors")
    best = min(r["val_landmark_px"] for r in rows)
    assert float(meta["best_val"]) == pytest.approx(best)


def test_checkpoint_of_another_variant_is_refused(tiny_bank, tmp_path):
    _phi(tiny_bank, tmp_path)
    Trainer(_cfg("omega", steps=1), tiny_bank, tmp_path).run(progress=False)
    other = TrainConfig(**{**_cfg("omega").__dict__, "model": model_config("guided", "lite", base_width=8, phi_width=4, phi_hidden=32)})
    with pytest.raises(WeightsError, match="base_width|checkpoint"):
        t = Trainer(other, tiny_bank, tmp_path)
        t.load_checkpoint()


def test_omega_refuses_a_phi_of_another_variant(tiny_bank, tmp_path):
    _phi(tiny_bank, tmp_path, "guided")
    with pytest.raises(WeightsError, match="Φ"):
        Trainer(_cfg("omega", "paper"), tiny_bank, tmp_path)


def test_train_dry_run_prints_the_resolved_config(capsys):
    rc = main(["train", "omega", "--dry-run", "--preset", "paper", "--variant", "paper", "--steps", "10"])
    out = capsys.readouterr().out
    assert rc == 0
    d = json.loads(out)
    assert d["model"]["base_width"] == 64 and d["model"]["variant"] == "paper" and d["steps"] == 10
    assert d["lambdas"] == [0.1, 10.0, 100.0] and d["mus"] == [1.0, 100.0]


def test_raster_sigma_is_recorded_and_stage_two_takes_phis(capsys, tmp_path):
    rc = main(["train", "phi", "--dry-run", "--variant", "paper", "--raster-sigma", "4"])
    assert rc == 0 and json.loads(capsys.readouterr().out)["model"]["preprocess"]["raster_sigma"] == 4.0
    # stage 2 without --raster-sigma reads the dot width from the Φ folder's config
    (tmp_path / "config.json").write_text(json.dumps({"model": model_config(
        "paper", preprocess=Preprocess(raster="gaussian", raster_sigma=3.0)).to_dict()}))
    rc = main(["train", "omega", "--dry-run", "--variant", "paper", "--out", str(tmp_path)])
    assert rc == 0 and json.loads(capsys.readouterr().out)["model"]["preprocess"]["raster_sigma"] == 3.0
    rc = main(["train", "phi", "--dry-run", "--raster-sigma", "4"])  # guided draws polylines
    err = capsys.readouterr().err
    assert rc == 2 and "--variant paper" in err and "Traceback" not in err


def test_train_unknown_preset_exits_nonzero_without_traceback(capsys):
    rc = main(["train", "phi", "--preset", "huge", "--dry-run"])
    err = capsys.readouterr().err
    assert rc != 0 and "huge" in err and "Traceback" not in err


def test_train_corrupt_checkpoint_is_a_clear_error(tiny_bank, tmp_path):
    _phi(tiny_bank, tmp_path)
    Trainer(_cfg("omega", steps=1), tiny_bank, tmp_path).run(progress=False)
    (tmp_path / "checkpoint_omega.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(WeightsError, match="corrupt"):
        Trainer(_cfg("omega", steps=2), tiny_bank, tmp_path).load_checkpoint()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, out: str, bank) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                      REENACT_DIST_BACKEND="gloo")
    torch.set_num_threads(1)
    from reenact.training.trainer import init_distributed

    init_distributed()
    t = Trainer(_cfg("phi", steps=3), bank, out)
    t.run(progress=False)
    flat = torch.cat([p.detach().flatten() for p in t.stage.gen_raw.parameters()])
    torch.save(flat, os.path.join(out, f"params_rank{rank}.pt"))
    torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_distributed_data_parallel_on_cpu_with_gloo(tiny_bank, tmp_path):
    """Two processes, gloo: both ranks end with the same weights (gradients were averaged)."""
    import torch.multiprocessing as mp

    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path), tiny_bank), nprocs=2, join=True)
    a = torch.load(tmp_path / "params_rank0.pt")
    b = torch.load(tmp_path / "params_rank1.pt")
    assert torch.equal(a, b)
    assert (tmp_path / "phi.safetensors").is_file()  # rank 0 wrote the weights


def test_omega_keeps_its_best_validation_checkpoint_beside_the_last(tiny_bank, tmp_path):
    _phi(tiny_bank, tmp_path)
    Trainer(_cfg("omega", steps=4, val_every=2), tiny_bank, tmp_path).run(progress=False)
    rows = [json.loads(x) for x in (tmp_path / "metrics_omega.jsonl").read_text().splitlines()]
    from reenact.weights_io import read_meta

    best = max(rows, key=lambda r: r["val_ssim"])
    meta = read_meta(tmp_path / "omega_best.safetensors")
    assert int(meta["step"]) == best["step"]
    assert int(read_meta(tmp_path / "omega.safetensors")["step"]) == 4


@pytest.mark.parametrize("upsample", ["convT", "resize"])
def test_zeroed_residual_composes_to_exactly_the_warp(upsample):
    from reenact.models import build_omega, compose, zero_residual_

    torch.manual_seed(0)
    net = zero_residual_(build_omega(model_config("guided", "lite", base_width=4, upsample=upsample))).eval()
    x = torch.rand(2, 9, 256, 256) * 2 - 1
    warped = x[:, 3:6]
    with torch.no_grad():
        head = net(x)
    assert head[:, :3].abs().max().item() == 0.0
    assert head[:, 3].std().item() > 0  # the mask keeps its random init
    assert torch.equal(compose(warped, head), warped.clamp(-1, 1))
    with pytest.raises(ValueError, match="guided"):
        zero_residual_(build_omega(model_config("paper", "lite", base_width=4)))


def test_fresh_guided_omega_starts_from_the_warp(tiny_bank, tmp_path):
    _phi(tiny_bank, tmp_path)
    t = Trainer(_cfg("omega"), tiny_bank, tmp_path)
    b = ordered_batch(tiny_bank, t.pairs[:2])
    with torch.no_grad():
        x, warped = t.stage.omega_inputs(b)
        assert torch.equal(t.stage.generate(x, warped), warped)


def test_omega_can_be_fed_the_real_landmarks_while_training(tiny_bank, tmp_path):
    from reenact.face.warp import warp_crop
    from reenact.inputs import to_net

    _phi(tiny_bank, tmp_path)
    t = Trainer(_cfg("omega", omega_landmarks="truth"), tiny_bank, tmp_path)
    P = tiny_bank.points
    # pairs where Φ's J_gen (L_t + L_s − J_s at init) is not J_o already
    pairs = [p for p in t.pairs if np.abs(P[p.target] + P[p.source] - P[p.source_neutral] - P[p.truth]).max() > 1][:2]
    assert pairs
    b = ordered_batch(tiny_bank, pairs)
    x_truth, _ = t.stage.omega_inputs(b, truth=True)
    x_phi, _ = t.stage.omega_inputs(b)
    want = to_net(warp_crop(b.P_t[0], b.L_t[0], b.J_o[0]))
    np.testing.assert_allclose(x_truth[0, 3:6].numpy(), want, atol=1e-6)
    assert not torch.equal(x_truth, x_phi)
    t.run(progress=False)  # trains with J_o; validation (Φ's J_gen) still runs
    lines = [json.loads(x) for x in (tmp_path / "metrics_omega.jsonl").read_text().splitlines()]
    assert lines[-1]["step"] == 6 and "val_ssim" in lines[-1]
    with pytest.raises(WeightsError, match="stage 2"):
        Trainer(_cfg("phi", omega_landmarks="truth"), tiny_bank, tmp_path)


def test_omega_trains_with_the_extra_losses_and_logs_them(tiny_bank, tmp_path):
    _phi(tiny_bank, tmp_path)
    t = Trainer(_cfg("omega", steps=2, extra_losses=("mouth_l1", "feature_matching")), tiny_bank, tmp_path)
    before = {k: v.clone() for k, v in t.stage.gen_raw.state_dict().items()}
    t.run(progress=False)
    line = json.loads((tmp_path / "metrics_omega.jsonl").read_text().splitlines()[-1])
    assert line["mouth_l1"] > 0 and line["feature_matching"] >= 0 and np.isfinite(line["loss_g"])
    assert any(not torch.equal(before[k], v) for k, v in t.stage.gen_raw.state_dict().items())
    saved = json.loads((tmp_path / "train_omega.json").read_text())
    assert saved["extra_losses"] == ["mouth_l1", "feature_matching"]
    with pytest.raises(WeightsError, match="stage 2"):
        Trainer(_cfg("phi", extra_losses=("mouth_l1",)), tiny_bank, tmp_path)


def test_mouth_gan_trains_d_m_and_resumes_it(tiny_bank, tmp_path):
    _phi(tiny_bank, tmp_path)
    t = Trainer(_cfg("omega", steps=2, extra_losses=("mouth_gan",)), tiny_bank, tmp_path)
    dm_before = {k: v.clone() for k, v in t.stage.disc_m_raw.state_dict().items()}
    t.run(progress=False)
    line = json.loads((tmp_path / "metrics_omega.jsonl").read_text().splitlines()[-1])
    assert line["mouth_gan"] > 0 and line["loss_dm"] > 0
    assert any(not torch.equal(dm_before[k], v) for k, v in t.stage.disc_m_raw.state_dict().items())
    # the checkpoint carries D_M and its optimiser; a resumed trainer gets them back exactly
    u = Trainer(_cfg("omega", steps=4, extra_losses=("mouth_gan",)), tiny_bank, tmp_path)
    assert u.load_checkpoint() and u.step == 2
    for k, v in t.stage.disc_m_raw.state_dict().items():
        assert torch.equal(u.stage.disc_m_raw.state_dict()[k], v)
    assert u.stage.opt_dm.state_dict()["state"] and len(u.stage.opt_dm.state_dict()["state"]) == len(t.stage.opt_dm.state_dict()["state"])


def test_mouth_gan_cannot_resume_a_checkpoint_without_d_m(tiny_bank, tmp_path):
    _phi(tiny_bank, tmp_path)
    Trainer(_cfg("omega", steps=1), tiny_bank, tmp_path).run(progress=False)
    with pytest.raises(WeightsError, match="without the mouth_gan loss"):
        Trainer(_cfg("omega", steps=2, extra_losses=("mouth_gan",)), tiny_bank, tmp_path).load_checkpoint()


def test_identity_loss_trains_and_stays_out_of_the_checkpoint(tiny_bank, tmp_path):
    from safetensors import safe_open

    _phi(tiny_bank, tmp_path)
    t = Trainer(_cfg("omega", steps=2, extra_losses=("identity", "gradient")), tiny_bank, tmp_path)
    t.run(progress=False)
    line = json.loads((tmp_path / "metrics_omega.jsonl").read_text().splitlines()[-1])
    assert 0 < line["identity"] < 2.0  # descriptor distances: dlib's "same person" is < 0.6
    assert 0 < line["gradient"] < 1.0
    with safe_open(str(tmp_path / "checkpoint_omega.safetensors"), "pt") as f:
        keys = list(f.keys())
    assert keys and not any("fc" == k.split(".")[-1] or k.startswith("face_id") for k in keys)  # the frozen net is not saved


def test_extra_loss_weight_scales_its_term_in_the_generator_loss(tiny_bank, tmp_path):
    """Same seed, same first step: L_Ω with mouth_l1 at 50 exceeds L_Ω at the default 25 by
    exactly 25 × the (identical, unweighted) mouth term."""
    _phi(tiny_bank, tmp_path)
    logs = []
    for weights in ((), (("mouth_l1", 50.0),)):
        t = Trainer(_cfg("omega", steps=1, extra_losses=("mouth_l1",), extra_loss_weights=weights), tiny_bank, tmp_path)
        logs.append(t.train_step())
    assert logs[0]["mouth_l1"] == pytest.approx(logs[1]["mouth_l1"], rel=1e-6) and logs[0]["mouth_l1"] > 0
    assert logs[1]["loss_g"] - logs[0]["loss_g"] == pytest.approx(25.0 * logs[0]["mouth_l1"], rel=1e-4)


def test_ema_is_the_moving_average_of_the_trained_weights_and_resumes(tiny_bank, tmp_path):
    """--ema: after each step ema = d·ema + (1−d)·raw, starting from the initial weights; the
    average is what omega.safetensors holds, the raw weights go to omega_raw; a resume gets it back."""
    _phi(tiny_bank, tmp_path)
    d = 0.6
    t = Trainer(_cfg("omega", steps=3, ema=d), tiny_bank, tmp_path)
    expect = {k: v.clone() for k, v in t.stage.gen_raw.named_parameters()}
    for _ in range(2):
        t.train_step()
        for k, v in t.stage.gen_raw.named_parameters():
            expect[k] = d * expect[k] + (1 - d) * v.detach()
    ema = dict(t.ema.named_parameters())
    assert all(torch.allclose(ema[k], v, atol=1e-6) for k, v in expect.items())
    assert any(not torch.allclose(ema[k], v) for k, v in t.stage.gen_raw.named_parameters() if v.requires_grad)
    t.run(progress=False)  # one more step, validation and a checkpoint
    saved, raw = load_state(tmp_path / "omega.safetensors", "omega"), load_state(tmp_path / "omega_raw.safetensors", "omega")
    assert all(torch.equal(saved[k], v.detach()) for k, v in t.ema.state_dict().items())
    assert all(torch.equal(raw[k], v.detach()) for k, v in t.stage.gen_raw.state_dict().items())
    u = Trainer(_cfg("omega", steps=4, ema=d), tiny_bank, tmp_path)
    assert u.load_checkpoint() and u.step == 3
    assert all(torch.equal(u.ema.state_dict()[k], v) for k, v in t.ema.state_dict().items())
    with pytest.raises(WeightsError, match="resume with --ema 0.6"):
        Trainer(_cfg("omega", steps=4), tiny_bank, tmp_path).load_checkpoint()
    with pytest.raises(ConfigError, match="decay"):
        _cfg("omega", ema=1.0)


def test_ema_cannot_resume_a_checkpoint_without_it(tiny_bank, tmp_path):
    """Restarting the average from the trained weights would silently change what it means."""
    _phi(tiny_bank, tmp_path)
    Trainer(_cfg("omega", steps=1), tiny_bank, tmp_path).run(progress=False)
    with pytest.raises(WeightsError, match="without --ema"):
        Trainer(_cfg("omega", steps=2, ema=0.99), tiny_bank, tmp_path).load_checkpoint()


def test_train_extra_loss_flag(capsys):
    rc = main(["train", "omega", "--dry-run", "--extra-loss", "mouth_l1", "--extra-loss", "mouth_l1"])
    d = json.loads(capsys.readouterr().out)
    assert rc == 0 and d["extra_losses"] == ["mouth_l1"] and d["extra_loss_weights"] == {"mouth_l1": 25.0}
    rc = main(["train", "omega", "--dry-run", "--ema", "0.995"])
    assert rc == 0 and json.loads(capsys.readouterr().out)["ema"] == 0.995
    rc = main(["train", "omega", "--dry-run", "--ema", "1"])
    assert rc != 0 and "--ema" in capsys.readouterr().err
    rc = main(["train", "omega", "--dry-run", "--extra-loss", "mouth_l1=50", "--extra-loss", "gradient"])
    d = json.loads(capsys.readouterr().out)
    assert rc == 0 and d["extra_losses"] == ["mouth_l1", "gradient"]
    assert d["extra_loss_weights"] == {"mouth_l1": 50.0, "gradient": 100.0}
    for bad, words in ((["perceptual"], "perceptual"), (["mouth_l1=-3"], "positive number"), (["mouth_l1=x"], "positive number"),
                       (["mouth_l1=50", "mouth_l1=30"], "twice with different weights")):
        rc = main(["train", "omega", "--dry-run", *[a for b in bad for a in ("--extra-loss", b)]])
        err = capsys.readouterr().err
        assert rc != 0 and words in err and "Traceback" not in err


def test_training_seed_does_not_move_people_between_splits(monkeypatch, tmp_path, capsys):
    """--seed changes initialisation and batches only; the person split follows --split-seed
    (default 0, eval's default), so a second training seed cannot train on test people."""
    import reenact.data.datasets as ds
    from reenact.errors import ReenactError

    seen = []

    def spy(data, **kw):
        seen.append(kw.get("seed", 0))
        raise ReenactError("stop here: only the split seed is under test")

    monkeypatch.setattr(ds, "build_bank", spy)
    for args, want in ((["--seed", "3"], 0), (["--seed", "3", "--split-seed", "2"], 2)):
        rc = main(["train", "omega", "--data", str(tmp_path), "--out", str(tmp_path / "run"), *args])
        assert rc != 0 and seen[-1] == want
    rc = main(["train", "omega", "--data", str(tmp_path), "--split-seed", "-1", "--dry-run"])
    err = capsys.readouterr().err
    assert rc != 0 and "split-seed" in err and "Traceback" not in err
    assert TrainConfig(split_seed=2).to_dict()["split_seed"] == 2
