"""Dataset loaders (London, videos, RaFD, CK+), the landmark cache, the identity split and pairs."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from reenact.data import datasets as D
from reenact.data.licensed import ckplus_records, rafd_records
from reenact.errors import InputError


def _write(path: Path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), img)


def test_rafd_loader_on_a_fake_tree(tmp_path, astronaut):
    for pid in (1, 2):
        for expr in ("neutral", "happy", "angry"):
            _write(tmp_path / f"Rafd090_{pid:02d}_Caucasian_female_{expr}_frontal.jpg", astronaut)
        _write(tmp_path / f"Rafd045_{pid:02d}_Caucasian_female_happy_frontal.jpg", astronaut)  # not the frontal camera
        _write(tmp_path / f"Rafd090_{pid:02d}_Caucasian_female_happy_left.jpg", astronaut)  # gaze left
    assert D.detect_layouts(tmp_path) == {"rafd": tmp_path}
    recs = rafd_records(tmp_path)
    assert len(recs) == 6
    assert {r.identity for r in recs} == {"rafd:1", "rafd:2"}
    assert {r.expression for r in recs} == {"neutral", "happy", "angry"}


def test_ckplus_loader_on_a_fake_tree(tmp_path, astronaut):
    root = tmp_path / "ck"
    for subj, seq, emo in (("S005", "001", 3), ("S005", "002", None), ("S010", "001", 5)):
        for k in (1, 2, 3):
            _write(root / "cohn-kanade-images" / subj / seq / f"{subj}_{seq}_{k:08d}.png", astronaut)
        if emo is not None:
            e = root / "Emotion" / subj / seq / f"{subj}_{seq}_00000003_emotion.txt"
            e.parent.mkdir(parents=True, exist_ok=True)
            e.write_text(f"   {emo}.0000000e+00\n")
    assert D.detect_layouts(root) == {"ckplus": root}
    recs = ckplus_records(root)
    by = {(r.identity, r.expression): Path(r.path).name for r in recs}
    assert by[("ckplus:S005", "neutral")] == "S005_001_00000001.png"  # first frame = neutral
    assert by[("ckplus:S005", "disgust")] == "S005_001_00000003.png"  # peak frame with its label
    assert by[("ckplus:S010", "happy")] == "S010_001_00000003.png"
    assert len(recs) == 4  # the unlabelled sequence adds no expression record


def test_london_original_layout_and_pairs(tmp_path, astronaut, astronaut_points):
    from reenact.synthetic import open_mouth, talking_frames

    smile, _ = talking_frames(astronaut, astronaut_points, 8, period=16)
    for pid in ("001", "002", "003", "004"):
        _write(tmp_path / "neutral_front" / f"{pid}_03.jpg", astronaut)
        _write(tmp_path / "smiling_front" / f"{pid}_08.jpg", smile[-1])
    assert D.detect_layouts(tmp_path) == {"london": tmp_path}
    bank = D.build_bank(tmp_path, cache_dir=tmp_path / "cache", progress=False)
    assert len(bank) == 8 and not bank.skipped
    pairs = D.make_pairs(bank, None, neutral_share=0.0)
    # every ordered (source, target) pair of the 4 people, each with its smile
    assert len(pairs) == 16
    p = pairs[0]
    assert bank.records[p.source].expression == "smiling" and bank.records[p.source_neutral].expression == "neutral"
    assert bank.records[p.target].expression == "neutral" and bank.records[p.truth].expression == "smiling"
    assert bank.records[p.target].identity == bank.records[p.truth].identity
    assert bank.records[p.source].identity == bank.records[p.source_neutral].identity
    assert open_mouth is not None


def test_unreadable_images_are_reported_and_the_run_goes_on(tmp_path, astronaut):
    for pid in ("001", "002"):
        _write(tmp_path / "neutral" / f"{pid}.jpg", astronaut)
        _write(tmp_path / "smiling" / f"{pid}.jpg", astronaut)
    (tmp_path / "smiling" / "003.jpg").write_bytes(b"corrupt jpeg")
    _write(tmp_path / "neutral" / "003.jpg", np.full((200, 200, 3), 90, np.uint8))  # no face
    bank = D.build_bank(tmp_path, cache_dir=tmp_path / "cache", progress=False)
    problems = dict(bank.skipped)
    assert problems[str(tmp_path / "smiling" / "003.jpg")] == "unreadable"
    assert problems[str(tmp_path / "neutral" / "003.jpg")] == "no_face"
    assert len(bank) == 4


def test_landmark_cache_is_reused_and_keyed_by_mtime(tmp_path, astronaut):
    _write(tmp_path / "neutral" / "001.jpg", astronaut)
    _write(tmp_path / "smiling" / "001.jpg", astronaut)
    cache = D.LandmarkCache(tmp_path, cache_dir=tmp_path / "cache")
    recs = D.load_records(tmp_path)
    cache.fill(recs, progress=False)
    again = D.LandmarkCache(tmp_path, cache_dir=tmp_path / "cache")
    assert all(again.lookup(r) is not None for r in recs)
    import os

    os.utime(recs[0].path, (1, 1))
    assert again.lookup(recs[0]) is None  # modified file -> re-extracted


def test_unknown_layout_lists_the_known_ones(tmp_path):
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "notes.txt").write_text("hello")
    with pytest.raises(InputError) as err:
        D.detect_layouts(tmp_path)
    text = str(err.value)
    for name in ("London", "videos", "RaFD", "CK+"):
        assert name in text


def test_eval_only_folders_are_never_read_as_training_data(tmp_path, astronaut):
    """A cremad/ folder holds evaluation clips (reenact eval's expressive set): even as a playable
    .mp4 beside a London set, and even when it is the folder given, no loader reads it."""
    for sub, expr in (("neutral", "001.jpg"), ("smiling", "001.jpg")):
        (tmp_path / sub).mkdir()
        cv2.imwrite(str(tmp_path / sub / expr), astronaut)
    (tmp_path / "cremad").mkdir()
    w = cv2.VideoWriter(str(tmp_path / "cremad" / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 25, (64, 64))
    for _ in range(3):
        w.write(np.zeros((64, 64, 3), np.uint8))
    w.release()
    assert D.detect_layouts(tmp_path) == {"london": tmp_path}
    assert not [r for r in D.load_records(tmp_path) if "cremad" in r.path]
    with pytest.raises(InputError, match="no known dataset layout"):
        D.detect_layouts(tmp_path / "cremad")


def test_split_never_puts_one_person_in_two_parts():
    people = [f"london:{i:03d}" for i in range(102)] + [f"video:grid_s{i}" for i in range(1, 6)]
    split = D.split_identities(people, seed=3)
    assert set(split) == set(people)
    n = {part: sum(1 for p in people if split[p] == part and p.startswith("london")) for part in ("train", "val", "test")}
    assert n == {"train": 72, "val": 10, "test": 20}
    video = [split[p] for p in people if p.startswith("video")]
    assert sorted(set(video)) == ["test", "train", "val"]
    assert split == D.split_identities(people, seed=3)  # seeded


def test_shared_data_london_and_grid(shared_data, tmp_path):
    layouts = D.detect_layouts(shared_data)
    assert set(layouts) == {"london", "video"}
    recs = D.load_records(shared_data)
    assert not [r for r in recs if Path(r.path).parent.name in D.EVAL_ONLY_FOLDERS]  # CREMA-D: evaluation only
    london = [r for r in recs if r.dataset == "london"]
    grid = [r for r in recs if r.dataset == "video"]
    assert len(london) == 204 and len({r.identity for r in london}) == 102
    assert len(grid) == 6 * 75
    # GRID's two clips of one man are one identity
    ids = {r.group: r.identity for r in grid}
    assert ids["id2_vcd_swwp2s"] == ids["pwij3p"] and len(set(ids.values())) == 5
    split = D.split_identities(sorted({r.identity for r in recs}), seed=0)
    parts_of_s1 = {split[ids["pwij3p"]], split[ids["id2_vcd_swwp2s"]]}
    assert len(parts_of_s1) == 1


@pytest.mark.slow
def test_shared_data_feeds_both_stages(shared_data, tmp_path):
    """Both stages of both variants can be fed from ../shared/data (the landmark cache is built once)."""
    bank = D.build_bank(shared_data, cache_dir=tmp_path / "cache", progress=False)
    assert len(bank) >= 640 and len(bank.skipped) <= 10
    train = D.make_pairs(bank, "train")
    assert {p.kind for p in train} == {"photo", "video"}
    ids = {bank.records[i].identity: bank.split[bank.records[i].identity] for i in range(len(bank))}
    for p in train:
        for k in (p.target, p.source, p.truth):
            assert ids[bank.records[k].identity] == "train"
    small = bank.weights[[i for i, r in enumerate(bank.records) if r.dataset == "video"]]
    assert small.mean() < 1.0  # GRID faces are smaller than the crop: weighted down
