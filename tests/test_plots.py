"""Evaluation figures: the Fig. 3-4 result grid and the Fig. 5-6 training curves (OpenCV only)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from reenact.errors import InputError
from reenact.eval.plots import curves_png, nice_ticks, read_metrics, result_grid

skimage_data = pytest.importorskip("skimage.data", reason="scikit-image provides the astronaut test image")


@pytest.fixture(scope="module")
def face() -> np.ndarray:
    return cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR)[60:316, 150:406].copy()  # 256x256


def _solid(value: int, size: int = 64) -> np.ndarray:
    return np.full((size, size, 3), value, np.uint8)


def test_result_grid_layout() -> None:
    cell, gap = 64, 4
    sources = [_solid(10 + j) for j in range(3)]
    targets = [_solid(100 + i) for i in range(2)]
    outputs = [[_solid(200 + 10 * i + j) for j in range(3)] for i in range(2)]
    grid = result_grid(sources, targets, outputs, gap=gap, labels=False)
    assert grid.dtype == np.uint8 and grid.shape == (3 * cell + 2 * gap, 4 * cell + 3 * gap, 3)
    step = cell + gap

    def cell_at(r: int, c: int) -> np.ndarray:
        return grid[r * step : r * step + cell, c * step : c * step + cell]

    assert (cell_at(0, 0) == 255).all()  # the empty corner
    for j in range(3):
        assert (cell_at(0, j + 1) == 10 + j).all()  # first row: sources
    for i in range(2):
        assert (cell_at(i + 1, 0) == 100 + i).all()  # first column: targets
        for j in range(3):
            assert (cell_at(i + 1, j + 1) == 200 + 10 * i + j).all()  # target i driven by source j
    assert (grid[cell : cell + gap] == 255).all()  # white gaps


def test_result_grid_resizes_grey_and_labels(face, tmp_path) -> None:
    grey = cv2.cvtColor(face, cv2.COLOR_BGR2GRAY)
    grid = result_grid([face, grey], [cv2.resize(face, (300, 300))], [[face, face]], cell=128)
    assert grid.shape == (2 * 128 + 4, 3 * 128 + 2 * 4, 3)
    assert (grid[:128, :128] != 255).any()  # the corner carries the reading hint
    path = tmp_path / "grid.png"
    assert cv2.imwrite(str(path), grid)
    assert cv2.imread(str(path)).shape == grid.shape


def test_result_grid_checks_inputs(face) -> None:
    with pytest.raises(ValueError, match=r"2 rows of 1.*\[1\]"):
        result_grid([face], [face, face], [[face]])
    with pytest.raises(TypeError, match="float32"):
        result_grid([face.astype(np.float32)], [face], [[face]])
    with pytest.raises(ValueError, match="at least one source"):
        result_grid([], [face], [[]])


def _write_metrics(path, n: int = 40) -> None:
    rng = np.random.default_rng(0)
    with open(path, "w") as fh:
        for k in range(1, n + 1):
            rec = {"step": 100 * k, "epoch": k / 4, "loss_g": 1.0 / k}
            if k % 2 == 0:  # validation on every other record
                rec |= {"val_ssim": 0.6 + 0.2 * (1 - np.exp(-k / 10)) + rng.normal(0, 0.003),
                        "val_psnr": 19 + 6 * (1 - np.exp(-k / 12)) + rng.normal(0, 0.1)}
            fh.write(json.dumps(rec) + "\n")
        fh.write('{"step": 4100, "epoch": 10.2')  # a run killed mid-write


def test_curves_png_written_and_readable(tmp_path) -> None:
    src, out = tmp_path / "metrics.jsonl", tmp_path / "figs" / "curves.png"
    _write_metrics(src)
    assert curves_png(src, out) == out
    img = cv2.imread(str(out))
    assert img is not None and img.shape == (440, 2 * 720, 3)
    # both panels carry a coloured curve (blue SSIM, orange PSNR), not just axes
    left, right = img[:, :720].astype(int), img[:, 720:].astype(int)
    assert ((left[..., 0] - left[..., 2]) > 100).sum() > 200
    assert ((right[..., 2] - right[..., 0]) > 150).sum() > 200
    one = curves_png(src, tmp_path / "one.png", keys=("val_ssim",))
    assert cv2.imread(str(one)).shape == (440, 720, 3)


def test_curves_png_errors(tmp_path) -> None:
    with pytest.raises(InputError, match="not found"):
        curves_png(tmp_path / "missing.jsonl", tmp_path / "x.png")
    src = tmp_path / "m.jsonl"
    src.write_text('{"step": 1, "epoch": 0.1, "loss": 2.0}\n')
    with pytest.raises(InputError, match="val_ssim"):
        curves_png(src, tmp_path / "x.png")


def test_read_metrics_sorts_and_keeps_last_of_a_resumed_step(tmp_path) -> None:
    src = tmp_path / "m.jsonl"
    src.write_text('{"step": 20, "epoch": 2, "val_ssim": 0.5}\nnot json\n'
                   '{"step": 10, "epoch": 1, "val_ssim": 0.4}\n{"step": 20, "epoch": 2, "val_ssim": 0.6}\n')
    recs = read_metrics(src)
    assert [r["step"] for r in recs] == [10, 20] and recs[1]["val_ssim"] == 0.6


def test_nice_ticks() -> None:
    assert np.allclose(nice_ticks(0, 20, 6), [0, 5, 10, 15, 20])
    t = nice_ticks(0.553, 0.812, 5)
    assert t[0] >= 0.553 and t[-1] <= 0.812 and len(t) >= 3
    d = np.diff(t)
    assert np.allclose(d, d[0]) and np.isclose(d[0], 0.1)  # 0.259 / 5 = 0.052 -> next round step
    assert np.allclose(nice_ticks(17.5, 25.6, 5), [18, 20, 22, 24])
