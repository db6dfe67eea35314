#!/usr/bin/env python3
"""How shut a painted lid looks to dlib, on many targets at once (issue 17, blink depth).

Each of ``--n`` London neutral photos of one split's people is driven by the next person's
landmarks with both eyes closed to ``--ratios`` of their neutral opening (0.41: a real shut eye
as dlib reads the CREMA-D actor's blinks), through the live path's own Reenactor (Φ, Ω, the eye
retargeting, the painted lids and the full-resolution paste-back; no smoothing, generated mouth
interior). dlib re-detects each output; the figure is its eye opening over the same target's
output with the driver's eyes open (≤ 0.55 counts as read shut: the issue's blink-depth target).

It is a still-frame probe: it leaves out the onset frames and the tracker of a video, so its
figures are lower than the eval's blink depth; it is fast (a second or two per target), which is
what choosing the lid's look needs. It prints, per ratio, the mean, the median and the share read
shut, and writes ``--out``: eye close-ups of each target at each ratio, dlib's points drawn.

    python scripts/lid_probe.py --data ../shared/data --split train --n 72 --out /tmp/lids.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from reenact.data.datasets import LandmarkCache, load_or_make_split, load_records
from reenact.eval.expressive import face_features
from reenact.face import eyes
from reenact.face.align import align_points
from reenact.face.dlib_detector import DlibDetector
from reenact.inference.backend import create_backend
from reenact.inference.reenactor import Reenactor, ReenactorOptions
from reenact.paths import WEIGHTS_DIR


def close_eyes(points: np.ndarray, ratio: float) -> np.ndarray:
    """[68,2] points with each upper lid moved across its eye to ``ratio`` of its gap to the lower lid."""
    q = np.asarray(points, np.float64).copy()
    for corners, pairs in eyes.EYES:
        down = eyes._down(q, corners)
        for a, b in pairs:
            q[a] += float((q[b] - q[a]) @ down) * (1 - ratio) * down
    return q


def close_up(image: np.ndarray, points: np.ndarray, label: str, width: int) -> np.ndarray:
    """Both eyes cut from ``image`` at ``width`` px wide, dlib's eye points drawn, labelled."""
    c = points[36:48].mean(0)
    w = np.ptp(points[36:48, 0]) * 0.8
    x0, y0 = max(0, int(c[0] - w)), max(0, int(c[1] - w * 0.4))
    cut = image[y0:y0 + int(w * 0.8), x0:x0 + int(2 * w)].copy()
    s = width / cut.shape[1]
    cut = cv2.resize(cut, (width, max(1, int(cut.shape[0] * s))))
    for q in points[36:48]:
        cv2.circle(cut, (int((q[0] - x0) * s), int((q[1] - y0) * s)), 1, (0, 255, 0), -1)
    cv2.putText(cut, label, (2, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 255), 1)
    h = width * 2 // 5
    return cut[:h] if cut.shape[0] >= h else cv2.copyMakeBorder(cut, 0, h - cut.shape[0], 0, 0, cv2.BORDER_CONSTANT)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="the shared data folder (london/neutral/*.jpg)")
    ap.add_argument("--split", default="train", choices=("train", "val", "test"), help="whose photos (default train)")
    ap.add_argument("--n", type=int, default=72, help="targets (default 72)")
    ap.add_argument("--ratios", default="0.41,0.55", help="driver eye openings over neutral (default 0.41,0.55)")
    ap.add_argument("--width", type=int, default=240, help="close-up width in px (default 240)")
    ap.add_argument("--cols", type=int, default=4, help="targets per row of the picture (default 4)")
    ap.add_argument("--out", type=Path, default=Path("lid_probe.png"), help="close-ups picture (PNG)")
    args = ap.parse_args()
    ratios = [float(x) for x in args.ratios.split(",")]

    recs = load_records(args.data)
    split = load_or_make_split(LandmarkCache(args.data, "dlib", None), [r.identity for r in recs], 0)
    photos = sorted({(r.identity, r.path) for r in recs if r.dataset == "london" and r.expression == "neutral"
                     and split.get(r.identity) == args.split})
    if len(photos) < 2:
        raise SystemExit(f"need two or more London neutral photos of the {args.split} split in {args.data}")
    photos = [photos[i] for i in np.random.default_rng(0).permutation(len(photos))]
    det = DlibDetector()
    backend = create_backend("onnx", WEIGHTS_DIR)
    reads: dict[float, list[float]] = {r: [] for r in ratios}
    rows = []
    for k in range(min(args.n, len(photos))):
        who, path = photos[k]
        drv = det.detect(cv2.imread(str(photos[(k + 1) % len(photos)][1]))).points
        r = Reenactor(backend, det, neutral=align_points(drv).to_crop(drv),
                      options=ReenactorOptions(smoothing=False, mouth_interior="generated"))
        r.add_target(cv2.imread(str(path)))
        opened = face_features(det.detect(r.from_landmarks(drv, 0.0)).points)[0, 1]
        cells = []
        for ratio in ratios:
            out = r.from_landmarks(close_eyes(drv, ratio).astype(np.float32), 0.0)
            lm = det.detect(out)
            read = face_features(lm.points)[0, 1] / opened if lm.found else float("nan")
            reads[ratio].append(read)
            cells.append(close_up(out, lm.points, f"{who.split(':')[-1]} {ratio:.2f}: {read:.2f}", args.width)
                         if lm.found else np.zeros((args.width * 2 // 5, args.width, 3), np.uint8))
        rows.append(np.hstack(cells))
    for ratio in ratios:
        a = np.array(reads[ratio])
        print(f"driver {ratio:.2f}: output read {np.nanmean(a):.3f} mean, {np.nanmedian(a):.3f} median, "
              f"{np.mean(a <= 0.55):.0%} read shut (<= 0.55) of {a.size}")
    blank = np.zeros_like(rows[0])
    grid = [np.hstack(rows[i:i + args.cols] + [blank] * (args.cols - len(rows[i:i + args.cols])))
            for i in range(0, len(rows), args.cols)]
    cv2.imwrite(str(args.out), np.vstack(grid))
    print(f"close-ups: {args.out}")


if __name__ == "__main__":
    main()
