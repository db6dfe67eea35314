#!/usr/bin/env python3
"""The guided paste-back's resampling: time per frame and fine detail kept, linear vs cubic vs lanczos.

    PYTHONPATH=. python3 scripts/bench_paste.py [--size 1024] [--frames 40] [--threads 2]

The shipped weights (ONNX Runtime) on scikit-image's astronaut (public domain) resized to
--size², driven by its own landmarks stretched 3 % sideways with the mouth opening and closing,
so that every face pixel moves by a fraction of a pixel. The three settings run in turns on the
same frames; the table gives the median paste stage (ms) and the face's fine detail (variance of
the Laplacian, eyes to nose tip) as a share of the photo's, the mean over the frames.
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from bench_models import cpu_model  # noqa: E402

from reenact.eval.metrics import fine_detail  # noqa: E402
from reenact.face.align import align_points  # noqa: E402
from reenact.face.dlib_detector import DlibDetector  # noqa: E402
from reenact.inference.backend import create_backend  # noqa: E402
from reenact.inference.reenactor import PASTE_INTERPOLATION, Reenactor, ReenactorOptions  # noqa: E402
from reenact.paths import WEIGHTS_DIR  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    from skimage import data

    img = cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), (args.size, args.size), interpolation=cv2.INTER_CUBIC)
    lm = DlibDetector().detect(img)
    if not lm.found:
        sys.exit("no face found in the astronaut")
    pts = lm.points.astype(np.float32)
    # eyes, nose and cheeks: above the mouth, whose content changes as it opens
    x0, x1 = int(pts[1, 0]) + 5, int(pts[15, 0]) - 5
    y0, y1 = int(pts[17:27, 1].min()), int(pts[33, 1])
    box = (x0, y0, x1, y1)
    frames = []
    for i in range(args.frames):
        p = pts.copy()
        p[:, 0] = pts[:, 0].mean() + (pts[:, 0] - pts[:, 0].mean()) * 1.03
        p[[56, 57, 58, 65, 66, 67], 1] += (1 - np.cos(2 * np.pi * i / 20)) * 0.02 * args.size
        frames.append(p)
    backend = create_backend("onnx", WEIGHTS_DIR, threads=args.threads)
    runs = {}
    for name in PASTE_INTERPOLATION:
        r = Reenactor(backend, None, neutral=align_points(pts).to_crop(pts),
                      options=ReenactorOptions(smoothing=False, paste_interpolation=name))
        r.add_target(img, lm)
        runs[name] = (r, [], [])
    for i, p in enumerate(frames):
        for r, ms, kept in runs.values():
            out = r.from_landmarks(p, i / 30)
            if i >= 3:  # warm-up
                ms.append(r.timings["paste"])
                kept.append(fine_detail(out, box) / fine_detail(img, box))
    print(f"{cpu_model()}, {args.threads} threads, {datetime.datetime.now():%Y-%m-%d %H:%M}, "
          f"target {args.size}², {args.frames - 3} frames each\n")
    print("| paste resampling | paste ms (median) | fine detail kept |\n|:--|--:|--:|")
    for name, (_, ms, kept) in runs.items():
        print(f"| {name} | {statistics.median(ms):.2f} | {100 * statistics.mean(kept):.0f} % |")


if __name__ == "__main__":
    main()
