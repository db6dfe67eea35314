"""Figures of the evaluation, drawn with OpenCV only (no matplotlib in the package).

* :func:`result_grid` — the paper's Fig. 3-4 layout: first row the source (driver) images,
  first column the target images, cell (i, j) the output for target i driven by source j.
* :func:`curves_png` — the paper's Fig. 5-6: validation SSIM and PSNR against the epoch,
  read from a training run's ``metrics.jsonl``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from reenact.errors import InputError

log = logging.getLogger(__name__)

FONT = cv2.FONT_HERSHEY_SIMPLEX
WHITE = (255, 255, 255)
BLACK = (0, 0, 0)
GRID_GREY = (225, 225, 225)
AXIS_GREY = (90, 90, 90)
#: One colour per curve (BGR): blue, orange, green, red.
COLOURS = ((180, 119, 31), (14, 127, 255), (44, 160, 44), (40, 39, 214))
#: Axis labels for the usual keys; other keys are shown as they are.
KEY_LABELS = {
    "val_ssim": "SSIM",
    "val_psnr": "PSNR (dB)",
    "val_landmark_px": "landmark error (px)",
    "val_l1": "L1",
}


# --------------------------------------------------------------------------- result grid
def _as_bgr(image: np.ndarray, what: str) -> np.ndarray:
    """uint8 (H,W) grey or (H,W,3) BGR -> (H,W,3) BGR."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"result_grid: {what} must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise TypeError(f"result_grid: {what} must be uint8, got {image.dtype}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"result_grid: {what} must be (H,W,3) BGR or (H,W) grey, got shape {image.shape}")
    return image


def _fit(image: np.ndarray, cell: int) -> np.ndarray:
    """Resize to cell x cell (crops are square; other shapes are stretched)."""
    if image.shape[:2] == (cell, cell):
        return image
    interp = cv2.INTER_AREA if max(image.shape[:2]) > cell else cv2.INTER_LINEAR
    return cv2.resize(image, (cell, cell), interpolation=interp)


def _label(image: np.ndarray, text: str, scale: float) -> None:
    """A small white label with a dark outline in the top-left corner, in place."""
    org = (int(6 * scale / 0.45), int(18 * scale / 0.45))
    cv2.putText(image, text, org, FONT, scale, BLACK, 3, cv2.LINE_AA)
    cv2.putText(image, text, org, FONT, scale, WHITE, 1, cv2.LINE_AA)


def result_grid(
    sources: Sequence[np.ndarray],
    targets: Sequence[np.ndarray],
    outputs: Sequence[Sequence[np.ndarray]],
    cell: int | None = None,
    gap: int = 4,
    labels: bool = True,
) -> np.ndarray:
    """The Fig. 3-4 grid as one BGR uint8 image of (T+1)·cell + T·gap rows by (S+1)·cell + S·gap columns.

    ``sources``: S driver images; ``targets``: T target images; ``outputs[i][j]``: target i
    driven by source j (T rows of S). Images are uint8 BGR or grey, resized to ``cell``
    (default: the first output's height). The top-left corner is empty except for optional
    labels; cells are separated by ``gap`` white pixels.
    """
    if len(sources) == 0 or len(targets) == 0:
        raise ValueError(f"result_grid: need at least one source and one target, got {len(sources)} and {len(targets)}")
    n_s, n_t = len(sources), len(targets)
    if len(outputs) != n_t or any(len(row) != n_s for row in outputs):
        shape = [len(row) for row in outputs]
        raise ValueError(f"result_grid: outputs must be {n_t} rows of {n_s} (targets x sources), got row lengths {shape}")
    if gap < 0:
        raise ValueError(f"result_grid: gap must be >= 0, got {gap}")
    first = _as_bgr(outputs[0][0], "outputs[0][0]")
    cell = int(cell or first.shape[0])
    if cell < 8:
        raise ValueError(f"result_grid: cell must be >= 8 px, got {cell}")
    step = cell + gap
    grid = np.full((n_t * step + cell, n_s * step + cell, 3), 255, np.uint8)
    scale = max(0.3, 0.45 * cell / 256)

    def put(img: np.ndarray, row: int, col: int, what: str, text: str | None = None) -> None:
        tile = _fit(_as_bgr(img, what), cell).copy()
        if labels and text:
            _label(tile, text, scale)
        grid[row * step : row * step + cell, col * step : col * step + cell] = tile

    for j, src in enumerate(sources):
        put(src, 0, j + 1, f"sources[{j}]", f"source {j + 1}")
    for i, tgt in enumerate(targets):
        put(tgt, i + 1, 0, f"targets[{i}]", f"target {i + 1}")
        for j in range(n_s):
            put(outputs[i][j], i + 1, j + 1, f"outputs[{i}][{j}]")
    if labels:  # the corner says how to read the grid
        thick = 1 if cell < 200 else 2
        lines = ("rows: targets", "columns: sources")
        fs = scale * 1.1
        widest = max(cv2.getTextSize(t, FONT, fs, thick)[0][0] for t in lines)
        fs *= min(1.0, 0.84 * cell / widest)  # fit the corner
        for k, text in enumerate(lines):
            org = (int(0.08 * cell), int((0.45 + 0.16 * k) * cell))
            cv2.putText(grid, text, org, FONT, fs, AXIS_GREY, thick, cv2.LINE_AA)
    return grid


def frame_grid(rows: Sequence[str], columns: Sequence[tuple[str, Sequence[np.ndarray]]], cell: int = 192,
               gap: int = 4) -> np.ndarray:
    """Frames side by side: one row per chosen moment (``rows``: its label), one column per
    ``(name, frames)`` (the driver, then each method's output), each frame resized to ``cell``²;
    the first column's tiles carry the row label, the top row's the column name. BGR uint8."""
    if not rows or not columns:
        raise ValueError(f"frame_grid: need at least one row and one column, got {len(rows)} and {len(columns)}")
    bad = [name for name, frames in columns if len(frames) != len(rows)]
    if bad:
        raise ValueError(f"frame_grid: columns {', '.join(bad)} do not have one frame per row ({len(rows)})")
    if cell < 8 or gap < 0:
        raise ValueError(f"frame_grid: cell must be >= 8 px and gap >= 0, got {cell} and {gap}")
    step = cell + gap
    grid = np.full((len(rows) * step - gap, len(columns) * step - gap, 3), 255, np.uint8)
    scale = max(0.3, 0.45 * cell / 256)
    for j, (name, frames) in enumerate(columns):
        for i, frame in enumerate(frames):
            tile = _fit(_as_bgr(frame, f"{name}[{i}]"), cell).copy()
            text = ", ".join(t for t in (name if i == 0 else "", rows[i] if j == 0 else "") if t)
            if text:
                _label(tile, text, scale)
            grid[i * step:i * step + cell, j * step:j * step + cell] = tile
    return grid


# --------------------------------------------------------------------------- curves
def read_metrics(path: str | os.PathLike) -> list[dict]:
    """Records of a ``metrics.jsonl`` sorted by step; a resumed run's repeated steps keep the last.

    Unreadable lines (a run killed mid-write) are skipped with a warning.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"metrics file not found: {path}", hint="pass the training output folder's metrics.jsonl")
    by_step: dict[float, dict] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            log.warning("%s:%d: not JSON, skipped", path, n)
            continue
        if not isinstance(rec, dict) or "step" not in rec:
            log.warning("%s:%d: no 'step', skipped", path, n)
            continue
        by_step[float(rec["step"])] = {**by_step.get(float(rec["step"]), {}), **rec}
    return [by_step[k] for k in sorted(by_step)]


def _series(records: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(epochs, values) of the records that carry a finite ``key``."""
    xs, ys = [], []
    for rec in records:
        v, e = rec.get(key), rec.get("epoch")
        if isinstance(v, (int, float)) and isinstance(e, (int, float)) and math.isfinite(v) and math.isfinite(e):
            xs.append(float(e))
            ys.append(float(v))
    return np.array(xs), np.array(ys)


def nice_ticks(lo: float, hi: float, n: int = 5) -> np.ndarray:
    """About ``n`` round tick values (1, 2, 2.5 or 5 x 10^k apart) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"nice_ticks: need finite bounds, got {lo}, {hi}")
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step + 1e-9) * step
    ticks = np.arange(start, hi + step * 0.5, step)
    return ticks[(ticks >= lo - 1e-9 * step) & (ticks <= hi + 1e-9 * step)]


def _fmt(v: float, step: float) -> str:
    """A tick label with as many decimals as the tick spacing needs."""
    decimals = max(0, -int(math.floor(math.log10(step) + 1e-9))) if step > 0 else 0
    if step > 0 and abs(round(step * 10**decimals) - step * 10**decimals) > 1e-6:
        decimals += 1  # e.g. 2.5
    return f"{v:.{decimals}f}"


def line_plot(
    xs: np.ndarray,
    ys: np.ndarray,
    title: str,
    xlabel: str,
    ylabel: str,
    size: tuple[int, int] = (720, 440),
    colour: tuple[int, int, int] = COLOURS[0],
) -> np.ndarray:
    """One line plot with axes, ticks, grid and labels as a BGR uint8 image of ``size`` (w, h)."""
    w, h = size
    img = np.full((h, w, 3), 255, np.uint8)
    left, right, top, bottom = 92, 24, 48, 64
    x0, x1, y0, y1 = left, w - right, top, h - bottom  # plot area in pixels
    cv2.putText(img, title, (left, 30), FONT, 0.7, BLACK, 2, cv2.LINE_AA)
    if len(xs) == 0:
        cv2.rectangle(img, (x0, y0), (x1, y1), AXIS_GREY, 1)
        cv2.putText(img, "no data", ((x0 + x1) // 2 - 50, (y0 + y1) // 2), FONT, 0.8, AXIS_GREY, 2, cv2.LINE_AA)
        return img
    xlo, xhi = (0.0, max(float(xs.max()), 1.0)) if xs.min() >= 0 else (float(xs.min()), float(xs.max()))
    ylo, yhi = float(ys.min()), float(ys.max())
    pad = (yhi - ylo) * 0.08 or max(abs(ylo) * 0.05, 0.01)
    ylo, yhi = ylo - pad, yhi + pad
    xt, yt = nice_ticks(xlo, xhi, 6), nice_ticks(ylo, yhi, 5)
    xlo, xhi = min(xlo, float(xt[0])), max(xhi, float(xt[-1]))
    ylo, yhi = min(ylo, float(yt[0])), max(yhi, float(yt[-1]))

    def px(x: float, y: float) -> tuple[int, int]:
        return (
            int(round(x0 + (x - xlo) / (xhi - xlo) * (x1 - x0))),
            int(round(y1 - (y - ylo) / (yhi - ylo) * (y1 - y0))),
        )

    xstep = float(xt[1] - xt[0]) if len(xt) > 1 else 1.0
    ystep = float(yt[1] - yt[0]) if len(yt) > 1 else 1.0
    for t in xt:  # vertical grid lines and x tick labels
        x, _ = px(t, ylo)
        cv2.line(img, (x, y0), (x, y1), GRID_GREY, 1)
        cv2.line(img, (x, y1), (x, y1 + 5), AXIS_GREY, 1)
        text = _fmt(t, xstep)
        (tw, th), _ = cv2.getTextSize(text, FONT, 0.5, 1)
        cv2.putText(img, text, (x - tw // 2, y1 + 10 + th), FONT, 0.5, BLACK, 1, cv2.LINE_AA)
    for t in yt:  # horizontal grid lines and y tick labels
        _, y = px(xlo, t)
        cv2.line(img, (x0, y), (x1, y), GRID_GREY, 1)
        cv2.line(img, (x0 - 5, y), (x0, y), AXIS_GREY, 1)
        text = _fmt(t, ystep)
        (tw, th), _ = cv2.getTextSize(text, FONT, 0.5, 1)
        cv2.putText(img, text, (x0 - 9 - tw, y + th // 2), FONT, 0.5, BLACK, 1, cv2.LINE_AA)
    cv2.rectangle(img, (x0, y0), (x1, y1), AXIS_GREY, 1)
    # axis labels: x centred below, y rotated on the left
    (tw, _), _ = cv2.getTextSize(xlabel, FONT, 0.6, 1)
    cv2.putText(img, xlabel, ((x0 + x1 - tw) // 2, h - 14), FONT, 0.6, BLACK, 1, cv2.LINE_AA)
    (tw, th), base = cv2.getTextSize(ylabel, FONT, 0.6, 1)
    lab = np.full((th + base + 4, tw + 4, 3), 255, np.uint8)
    cv2.putText(lab, ylabel, (2, th + 2), FONT, 0.6, BLACK, 1, cv2.LINE_AA)
    lab = cv2.rotate(lab, cv2.ROTATE_90_COUNTERCLOCKWISE)
    cy = max(0, min(h - lab.shape[0], (y0 + y1) // 2 - lab.shape[0] // 2))
    img[cy : cy + lab.shape[0], 6 : 6 + lab.shape[1]] = lab
    # the curve, with a marker at each validation
    pts = np.array([px(x, y) for x, y in zip(xs, ys, strict=True)], np.int32)
    if len(pts) > 1:
        cv2.polylines(img, [pts.reshape(-1, 1, 2)], False, colour, 2, cv2.LINE_AA)
    for p in pts:
        cv2.circle(img, (int(p[0]), int(p[1])), 3 if len(pts) < 60 else 2, colour, -1, cv2.LINE_AA)
    return img


def write_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write a PNG atomically (temp file + rename); an unwritable path is an error, not a False."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise ValueError(f"could not encode a PNG from an image of shape {image.shape}, dtype {image.dtype}")
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(buf.tobytes())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def curves_png(
    metrics_jsonl_path: str | os.PathLike,
    out_path: str | os.PathLike,
    keys: Sequence[str] = ("val_ssim", "val_psnr"),
) -> Path:
    """Fig. 5-6: one panel per key (value against epoch), side by side, written as a PNG.

    Records are those of :func:`read_metrics`; the x axis is the record's ``epoch`` (the
    trainer writes fractional epochs, step / steps per epoch). A key with no values gets a
    "no data" panel; no values for any key is an :class:`InputError`. Returns ``out_path``.
    """
    if not keys:
        raise ValueError("curves_png: need at least one key")
    records = read_metrics(metrics_jsonl_path)
    panels, found = [], 0
    for k, key in enumerate(keys):
        xs, ys = _series(records, key)
        found += len(xs)
        label = KEY_LABELS.get(key, key)
        panels.append(line_plot(xs, ys, f"validation {label.split(' (')[0]} per epoch", "epoch", label,
                                colour=COLOURS[k % len(COLOURS)]))
        if len(xs) == 0:
            log.warning("%s: no values of %r", metrics_jsonl_path, key)
    if found == 0:
        raise InputError(f"{metrics_jsonl_path}: none of {list(keys)} has a value in any record",
                         hint="was this run validated (an Ω stage writes val_ssim / val_psnr)?")
    return write_png(out_path, np.hstack(panels))
