"""`reenact eval` end to end on a tiny video split made from a real face, and its bad inputs."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from reenact.cli import main
from reenact.config import model_config


def _weights(folder, variant="guided", zero_omega=True):
    import torch

    from reenact.models import build_omega, build_phi
    from reenact.weights_io import save_state, write_config

    cfg = model_config(variant, "lite", base_width=4, phi_width=4, phi_hidden=32)
    torch.manual_seed(0)
    omega = build_omega(cfg)
    if zero_omega:
        torch.nn.init.zeros_(omega.unet.out[1].weight)
        torch.nn.init.zeros_(omega.unet.out[1].bias)
    folder.mkdir(parents=True, exist_ok=True)
    save_state(folder / "phi.safetensors", build_phi(cfg).state_dict(), "phi", cfg)
    save_state(folder / "omega.safetensors", omega.state_dict(), "omega", cfg)
    write_config(folder, cfg)
    return folder


def test_eval_runs_end_to_end_on_a_tiny_split(video_set, tmp_path, capsys):
    w = _weights(tmp_path / "w")
    # a run trained with the identity loss is flagged: its identity figure is optimistic
    (w / "train_omega.json").write_text(json.dumps({"extra_losses": ["mouth_l1", "identity"]}))
    out = tmp_path / "out"
    rc = main(["eval", "--weights", str(w), "--data", str(video_set), "--split", "test", "--out", str(out),
               "--cache-dir", str(tmp_path / "cache")])
    assert rc == 0, capsys.readouterr().err
    res = json.loads((out / "eval.json").read_text())
    from reenact.eval.report import validate

    validate(res)
    assert res["default"] == "guided" and "paper" in res["skipped"] and "pix2pix" in res["skipped"]
    video = res["sets"]["video"]
    assert video["n_pairs"] == 16
    m = video["methods"]
    assert set(m) >= {"copy", "mean", "warp", "oracle", "guided"}
    # the learned-nothing model is the warp here; the warp follows the driver and copy cannot
    assert m["warp"]["expression_error"] < m["copy"]["expression_error"]
    assert m["warp"]["driver_following"] > 0.8
    assert m["copy"]["driver_following"] is None  # a constant output has no correlation
    md = (out / "eval.md").read_text()
    assert "| copy |" in md and "not evaluated" in md
    assert res["trained_on_identity"] == ["default"] and "`guided` was trained with `--extra-loss identity`" in md
    assert (out / "grid.png").is_file()
    assert "| copy |" in capsys.readouterr().out
    # pairs.csv: every pair of every method, and its means are the table's figures
    import csv

    rows = list(csv.DictReader((out / "pairs.csv").open()))
    assert len(rows) == sum(s["n_pairs"] * len(s["methods"]) for s in res["sets"].values())
    for name, fig in m.items():
        mine = [r for r in rows if r["set"] == "video" and r["method"] == name]
        assert len(mine) == 16 and all(r["target"] and r["truth"] for r in mine)
        for key in ("lower_ssim", "expression_error"):
            vals = [float(r[key]) for r in mine if r[key] != ""]
            assert np.mean(vals) == pytest.approx(fig[key], abs=1e-5)


def test_trained_on_identity_reads_the_runs_record_only(tmp_path):
    from reenact.eval.evaluate import trained_on_identity

    assert not trained_on_identity(tmp_path)  # no record (the shipped weights folder)
    rec = tmp_path / "train_omega.json"
    for text, want in ((json.dumps({"extra_losses": ["identity"]}), True), (json.dumps({"extra_losses": ["mouth_l1"]}), False),
                       ("{not json", False), ("[1, 2]", False)):
        rec.write_text(text)
        assert trained_on_identity(tmp_path) is want


def test_paper_weights_of_another_variant_are_refused(video_set, tmp_path, capsys):
    w = _weights(tmp_path / "w")
    rc = main(["eval", "--weights", str(w), "--paper-weights", str(w), "--data", str(video_set),
               "--cache-dir", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert rc != 0 and "expected 'paper'" in err and "Traceback" not in err


def test_corrupt_weights_are_a_clear_error(video_set, tmp_path, capsys):
    w = _weights(tmp_path / "w")
    (w / "omega.safetensors").write_bytes(b"garbage")
    rc = main(["eval", "--weights", str(w), "--data", str(video_set), "--cache-dir", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert rc != 0 and "omega.safetensors" in err and "Traceback" not in err


def test_a_split_with_no_usable_pairs_says_so(tmp_path, astronaut, capsys):
    (tmp_path / "data" / "neutral").mkdir(parents=True)
    (tmp_path / "data" / "smiling").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "data" / "neutral" / "001.jpg"), astronaut)
    cv2.imwrite(str(tmp_path / "data" / "smiling" / "001.jpg"), astronaut)
    w = _weights(tmp_path / "w")
    rc = main(["eval", "--weights", str(w), "--data", str(tmp_path / "data"), "--split", "test",
               "--cache-dir", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert rc != 0 and "no usable pairs" in err


def test_mean_baseline_uses_the_training_expression(tiny_bank):
    from reenact.eval.evaluate import mean_displacement

    d = mean_displacement(tiny_bank)
    assert d.shape == (68, 2)
    assert d[57, 1] > 1.0  # the training clips open the mouth: the lower lip moves down on average
    assert np.abs(d[36:48]).max() < 0.5  # the eyes do not move


def test_pix2pix_and_default_roles_are_checked(video_set, tmp_path, capsys):
    w = _weights(tmp_path / "w")
    rc = main(["eval", "--weights", str(w), "--pix2pix-weights", str(w), "--data", str(video_set),
               "--cache-dir", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert rc != 0 and "not a pix2pix baseline" in err and "Traceback" not in err
    cfg = json.loads((w / "config.json").read_text())
    (w / "config.json").write_text(json.dumps({**cfg, "baseline": "pix2pix"}))
    rc = main(["eval", "--weights", str(w), "--data", str(video_set), "--cache-dir", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert rc != 0 and "--pix2pix-weights" in err and "Traceback" not in err


def test_onnx_backend_without_onnx_files_is_a_clear_error(video_set, tmp_path, capsys):
    w = _weights(tmp_path / "w")
    rc = main(["eval", "--weights", str(w), "--backend", "onnx", "--data", str(video_set),
               "--cache-dir", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert rc != 0 and "onnx" in err and "Traceback" not in err


def test_missing_weights_folder_is_a_clear_error(video_set, tmp_path, capsys):
    rc = main(["eval", "--weights", str(tmp_path / "nope"), "--data", str(video_set)])
    err = capsys.readouterr().err
    assert rc != 0 and "does not exist" in err and "Traceback" not in err


def test_copy_identity_distance_is_zero_only_when_truth_is_the_target(tiny_bank):
    from reenact.eval.evaluate import _Scorer, score_pairs, select_pairs

    video = select_pairs(tiny_bank, "val")["video"]
    same = [p for p in video if p.truth == p.target]
    other = [p for p in video if p.truth != p.target and abs(p.truth - p.target) >= 3]
    assert same and other
    scorer = _Scorer()
    copy = lambda b, p: b.crops[p.target]  # noqa: E731
    d_same = score_pairs(tiny_bank, same, copy, scorer, video=False)
    d_other = score_pairs(tiny_bank, other, copy, scorer, video=False)
    assert d_same.identity_distance < 1e-6 and d_same.ssim == pytest.approx(1.0)
    assert d_other.identity_distance > 1e-3  # the open mouth changes the face a little


def test_video_pairs_keep_clip_order_and_a_calm_target_other_than_j_s(tiny_bank):
    from reenact.eval.evaluate import select_pairs

    video = select_pairs(tiny_bank, "train")["video"]
    clips = {tiny_bank.records[p.target].group for p in video}
    assert len(clips) == 2 and len(video) == 16
    for p in video:
        assert p.target != p.source_neutral  # target is a calm frame, not J_s itself
    frames = [tiny_bank.records[p.source].frame for p in video[:8]]
    assert frames == sorted(frames)
    small = select_pairs(tiny_bank, "train", max_pairs=5)["video"]
    assert 1 <= len(small) <= 5 and len({tiny_bank.records[p.target].group for p in small}) == 1
