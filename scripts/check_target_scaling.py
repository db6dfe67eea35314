#!/usr/bin/env python3
"""Is the picture unchanged where it matters when a large target is scaled to the output once, at load?

    PYTHONPATH=. python scripts/check_target_scaling.py --source driver640.avi --target big.jpg [--target ...]
        [--size 1280x720] [--frames 60] [--png side_by_side.png]

For each target, the same driver landmarks go through two reenactors with the shipped weights:
"full" composes every frame on the photo at its full resolution and then letterboxes it to the
output size (area-averaged, what the virtual camera did before 2026-11-30); "scaled" composes on
the photo scaled to the output size once (``ReenactorOptions.output_size``). Prints the PSNR of
the face region (the networks' crop footprint in the output) and of the whole frame, and the
paste stage's median time of each.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from reenact.face.dlib_detector import DlibDetector  # noqa: E402
from reenact.inference.backend import create_backend  # noqa: E402
from reenact.inference.reenactor import Reenactor, ReenactorOptions  # noqa: E402
from reenact.live.sinks import letterbox  # noqa: E402
from reenact.paths import WEIGHTS_DIR  # noqa: E402
from reenact.session import parse_size  # noqa: E402


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", required=True)
    ap.add_argument("--target", action="append", required=True)
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--png", default=None, help="write the last target's face regions side by side (and 8x their difference)")
    args = ap.parse_args()
    size = parse_size(args.size)
    cv2.setNumThreads(1)
    det = DlibDetector()
    cap = cv2.VideoCapture(args.source)
    points = []
    while len(points) < args.frames:
        ok, f = cap.read()
        if not ok:
            break
        lm = det.track(f)
        if lm.found:
            points.append(lm.points.astype(np.float32))
    backend = create_backend("onnx", WEIGHTS_DIR, threads=2)
    target_det = DlibDetector(detect_width=1000)
    print(f"output {size[0]}x{size[1]}, {len(points)} driver frames\n")
    print("| target | used at | face PSNR dB (min / median) | frame PSNR dB (median) | paste ms full / scaled |")
    print("|:--|:--|--:|--:|--:|")
    for path in args.target:
        img = cv2.imread(path)
        lm = target_det.detect(img)
        full = Reenactor(backend, None, options=ReenactorOptions())
        scaled = Reenactor(backend, None, options=ReenactorOptions(output_size=size))
        full.add_target(img, lm)
        tg = scaled.add_target(img, lm)
        # the face region in the output frame: the crop footprint in the scaled target, shifted by the bars
        bw, bh = (size[0] - tg.size[0]) // 2, (size[1] - tg.size[1]) // 2
        x0, y0, x1, y1 = tg.roi
        face, frame, paste = [], [], {"full": [], "scaled": []}
        for i, p in enumerate(points):
            a = letterbox(full.from_landmarks(p, i / 30), size)
            paste["full"].append(full.timings["paste"])
            b = letterbox(scaled.from_landmarks(p, i / 30), size)
            paste["scaled"].append(scaled.timings["paste"])
            ra, rb = a[y0 + bh:y1 + bh, x0 + bw:x1 + bw], b[y0 + bh:y1 + bh, x0 + bw:x1 + bw]
            face.append(psnr(ra, rb))
            frame.append(psnr(a, b))
        print(f"| {Path(path).name} {img.shape[1]}x{img.shape[0]} | {tg.size[0]}x{tg.size[1]} | {min(face):.1f} / "
              f"{statistics.median(face):.1f} | {statistics.median(frame):.1f} | "
              f"{statistics.median(paste['full'][3:]):.1f} / {statistics.median(paste['scaled'][3:]):.1f} |")
        if args.png:
            diff = cv2.convertScaleAbs(cv2.absdiff(ra, rb), alpha=8)
            cv2.imwrite(args.png, np.hstack([ra, rb, diff]))


if __name__ == "__main__":
    main()
