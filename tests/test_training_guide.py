"""Training with issue 17's inputs: the mouth guide in Ω's input (jitter, drop-out) and blink pairs drawn more often."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from reenact.config import TrainConfig, model_config  # noqa: E402
from reenact.eval.expressive import move  # noqa: E402
from reenact.face.eyes import lid_gaps  # noqa: E402
from reenact.training.batches import blink_pairs, make_batch, ordered_batch  # noqa: E402
from reenact.training.trainer import Trainer  # noqa: E402

torch.set_num_threads(2)


def _cfg(stage: str, steps: int = 2, mouth_guide: bool = True, **kw) -> TrainConfig:
    mcfg = model_config("guided", "lite", base_width=4, phi_width=4, phi_hidden=32, mouth_guide=mouth_guide)
    args = dict(stage=stage, model=mcfg, steps=steps, batch_size=2, checkpoint_every=1000, val_every=1000, val_pairs=4)
    args.update(kw)
    return TrainConfig(**args)


@pytest.fixture()
def phi_dir(tiny_bank, tmp_path):
    Trainer(_cfg("phi", mouth_guide=False), tiny_bank, tmp_path / "phi").run(progress=False)
    return tmp_path / "phi"


def _open_pairs(t: Trainer, bank, n: int = 2):
    """Training pairs whose source shows an open mouth (the guide is not empty)."""
    from reenact.face.mouth import opening_gate

    return [p for p in t.pairs if opening_gate(bank.points[p.source]) >= 1.0][:n]


def test_omega_with_the_guide_gets_13_channels_and_the_sources_interior(tiny_bank, tmp_path, phi_dir):
    t = Trainer(_cfg("omega", guide_drop=0.0), tiny_bank, tmp_path / "o", phi_dir=phi_dir)
    pairs = _open_pairs(t, tiny_bank)
    assert pairs
    b = ordered_batch(tiny_bank, pairs)
    assert np.array_equal(b.S[0], tiny_bank.crops[pairs[0].source])
    x, _ = t.stage.omega_inputs(b, truth=True)
    assert x.shape[1] == 13 and x[:, 12].amax() > 0.99  # the mask
    jittered, _ = t.stage.omega_inputs(b, truth=True, rng=np.random.default_rng(0))
    assert torch.equal(jittered[:, 12], x[:, 12]) and not torch.equal(jittered[:, 9:12], x[:, 9:12])
    dropped = Trainer(_cfg("omega", guide_drop=1.0), tiny_bank, tmp_path / "d", phi_dir=phi_dir)
    xd, _ = dropped.stage.omega_inputs(b, truth=True, rng=np.random.default_rng(0))
    assert float(xd[:, 9:].abs().max()) == 0.0 and torch.equal(xd[:, :9], x[:, :9])
    t.run(progress=False)  # trains and validates with the guide


def test_flips_move_the_source_crop_with_the_rest(tiny_bank, tmp_path, phi_dir):
    """Each drawn source crop is the bank crop whose points are L_s, or the mirror of both."""
    from reenact.face.flip import flip_image, flip_points

    t = Trainer(_cfg("omega"), tiny_bank, tmp_path / "o", phi_dir=phi_dir)
    b = make_batch(tiny_bank, t.pairs, np.random.default_rng(3), 16)
    crops = {c.tobytes(): k for k, c in enumerate(tiny_bank.crops)}
    flips = 0
    for S, L_s in zip(b.S, b.L_s, strict=True):
        if S.tobytes() in crops:
            assert np.allclose(L_s, tiny_bank.points[crops[S.tobytes()]])
        else:
            k = crops[flip_image(S).tobytes()]
            assert np.allclose(L_s, flip_points(tiny_bank.points[k], 256))
            flips += 1
    assert 0 < flips < 16


def test_blink_pairs_are_found_and_drawn_at_their_share(tiny_bank):
    from reenact.data.datasets import make_pairs

    bank = dataclasses.replace(tiny_bank, points=tiny_bank.points.copy())
    clip = [i for i, r in enumerate(bank.records) if r.identity == "video:a"]
    shut = clip[5]
    bank.points[shut] = move(bank.points[shut], "blink", 0.8)
    assert lid_gaps(bank.points[shut]).mean() < 0.3 * lid_gaps(bank.points[clip[0]]).mean()
    pairs = make_pairs(bank, "train")
    blinks = blink_pairs(bank, pairs)
    assert blinks and {p.truth for p in blinks} == {shut}
    rng = np.random.default_rng(0)
    drawn = [make_batch(bank, pairs, rng, 8, flip=False, blink_share=0.5, blinks=blinks) for _ in range(20)]
    share = np.mean([np.array_equal(i_o, bank.crops[shut]) for d in drawn for i_o in d.I_o])
    assert 0.3 < share < 0.7  # video only here: half the draws are the blink
    plain = [make_batch(bank, pairs, rng, 8, flip=False) for _ in range(20)]
    assert np.mean([np.array_equal(i_o, bank.crops[shut]) for d in plain for i_o in d.I_o]) < 0.2


def test_train_cli_flags_reach_the_config(capsys):
    import json

    from reenact.cli import main

    assert main(["train", "omega", "--dry-run", "--mouth-guide", "--blink-share", "0.25", "--guide-drop", "0.1"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["model"]["mouth_guide"] is True and cfg["blink_share"] == 0.25 and cfg["guide_drop"] == 0.1
    assert main(["train", "omega", "--dry-run", "--variant", "paper", "--mouth-guide"]) == 2
    assert "guided" in capsys.readouterr().err


def test_training_paints_the_lids_of_a_blink_truth(tiny_bank, tmp_path, phi_dir):
    """Ω is trained on the input live gives it: a shut J_o's lids painted into the warp."""
    from reenact.face.warp import warp_crop
    from reenact.inputs import to_net, warp_with_lids

    bank = dataclasses.replace(tiny_bank, points=tiny_bank.points.copy())
    clip = [i for i, r in enumerate(bank.records) if r.identity == "video:a"]
    bank.points[clip[5]] = move(bank.points[clip[5]], "blink", 1.0)
    t = Trainer(_cfg("omega", mouth_guide=False, omega_landmarks="truth"), bank, tmp_path / "o", phi_dir=phi_dir)
    pair = next(p for p in t.pairs if p.truth == clip[5])
    b = ordered_batch(bank, [pair])
    x, _ = t.stage.omega_inputs(b, truth=True)
    want = warp_with_lids(b.P_t[0], b.L_t[0], b.J_o[0])
    np.testing.assert_allclose(x[0, 3:6].numpy(), to_net(want), atol=1e-6)
    assert not np.array_equal(want, warp_crop(b.P_t[0], b.L_t[0], b.J_o[0]))
