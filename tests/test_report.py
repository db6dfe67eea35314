"""Eval results: the issue-5 JSON format, its validator, atomic writing and the markdown table."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest

from reenact.errors import InputError
from reenact.eval.report import markdown_table, problems, read_json, validate, write_json


def _measures(video: bool = False, **over) -> dict:
    m = {"ssim": 0.71, "psnr": 23.4, "lower_ssim": 0.62, "lower_psnr": 21.0,
         "expression_error": 3.2, "identity_distance": 0.31}
    if video:
        m["driver_following"] = 0.87
    return m | over


@pytest.fixture
def results() -> dict:
    return {
        "split": "test",
        "sets": {
            "photo": {"n_pairs": 40, "methods": {"copy": _measures(expression_error=8.4),
                                                  "guided": _measures(ssim=0.75)}},
            "video": {"n_pairs": 120, "methods": {"copy": _measures(True, driver_following=None),
                                                   "guided": _measures(True)}},
        },
        "default": "guided",
    }


def test_a_good_results_object_validates(results) -> None:
    assert problems(results) == []
    validate(results)
    results["notes"] = "extra keys are allowed"
    results["sets"]["photo"]["methods"]["guided"]["identity_distance_pt"] = 0.2
    validate(results)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda r: r.pop("split"), "'split'"),
        (lambda r: r.pop("default"), "'default'"),
        (lambda r: r.update(default="oracle"), "default method 'oracle' is missing"),
        (lambda r: r["sets"].update(audio={}), "unknown set"),
        (lambda r: r.update(sets={}), "'sets' must be a non-empty dict"),
        (lambda r: r["sets"]["photo"].update(n_pairs=-1), "n_pairs must be an int >= 0"),
        (lambda r: r["sets"]["photo"].update(n_pairs=True), "n_pairs must be an int >= 0"),
        (lambda r: r["sets"]["photo"].update(methods={}), "methods must be a non-empty dict"),
        (lambda r: r["sets"]["photo"]["methods"]["copy"].pop("lower_psnr"), "photo.methods.copy: missing 'lower_psnr'"),
        (lambda r: r["sets"]["video"]["methods"]["guided"].pop("driver_following"), "missing 'driver_following'"),
        (lambda r: r["sets"]["photo"]["methods"]["copy"].update(ssim="0.7"), "ssim must be a number or null, got str"),
        (lambda r: r["sets"]["photo"]["methods"]["copy"].update(ssim=80.0), "ssim = 80.0 is outside [-1.0, 1.0]"),
        (lambda r: r["sets"]["video"]["methods"]["copy"].update(expression_error=-1.0), "expression_error = -1.0"),
    ],
)
def test_validator_names_each_problem(results, mutate, message) -> None:
    bad = copy.deepcopy(results)
    mutate(bad)
    found = problems(bad)
    assert any(message in p for p in found), found
    with pytest.raises(ValueError, match="not in the expected format"):
        validate(bad)


def test_validator_rejects_non_dicts() -> None:
    assert problems([1, 2]) == ["results must be a dict, got list"]


def test_write_json_is_atomic_strict_and_round_trips(results, tmp_path) -> None:
    results["sets"]["video"]["methods"]["guided"]["driver_following"] = float("nan")
    results["sets"]["photo"]["methods"]["guided"]["psnr"] = np.float32(24.5)  # numpy scalar
    path = write_json(tmp_path / "out" / "eval.json", results)
    assert path.is_file() and [p.name for p in path.parent.iterdir()] == ["eval.json"]  # no temp left
    text = path.read_text()
    assert "NaN" not in text
    back = json.loads(text)  # strict JSON
    assert back["sets"]["video"]["methods"]["guided"]["driver_following"] is None
    assert back["sets"]["photo"]["methods"]["guided"]["psnr"] == pytest.approx(24.5)
    assert read_json(path) == back


def test_write_json_refuses_bad_results_and_keeps_the_old_file(results, tmp_path) -> None:
    path = write_json(tmp_path / "eval.json", results)
    before = path.read_text()
    bad = copy.deepcopy(results)
    del bad["sets"]["photo"]["n_pairs"]
    with pytest.raises(ValueError, match="n_pairs"):
        write_json(path, bad)
    assert path.read_text() == before


def test_read_json_errors(tmp_path) -> None:
    with pytest.raises(InputError, match="not found"):
        read_json(tmp_path / "none.json")
    (tmp_path / "x.json").write_text("{oops")
    with pytest.raises(InputError, match="not JSON"):
        read_json(tmp_path / "x.json")
    (tmp_path / "y.json").write_text('{"split": "val"}')
    with pytest.raises(InputError, match="'sets'"):
        read_json(tmp_path / "y.json")


def test_markdown_table(results) -> None:
    results["sets"]["photo"]["methods"]["copy"]["identity_distance"] = math.nan
    md = markdown_table(results)
    lines = md.splitlines()
    assert lines[0] == "Split: **test** · default method: **guided**"
    photo = lines.index("### photo: cross-identity photo pairs (n = 40)")
    video = lines.index("### video: self-reenactment video pairs (n = 120)")
    assert photo < video
    header = lines[photo + 2]
    assert header.startswith("| method | SSIM ↑ | PSNR dB ↑") and "driver following" not in header
    assert "driver following ↑" in lines[video + 2]
    assert lines[photo + 3] == "|:--|" + "--:|" * 6
    copy_row = lines[photo + 4]
    assert copy_row.startswith("| copy | 0.710 | 23.40 | 0.620 | 21.00 | 8.40 | – |")
    assert lines[photo + 5].startswith("| **guided** (default) | **0.750** |")
    assert lines[video + 4].endswith("| – |")  # driver following not measurable for copy
    # every table row has as many cells as its header
    for i in (photo, video):
        n = lines[i + 2].count("|")
        assert all(lines[j].count("|") == n for j in range(i + 3, i + 6))
