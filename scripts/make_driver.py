"""Write a 640x480 driving video (the public-domain astronaut opening and closing her mouth) for benchmarks.

    python scripts/make_driver.py OUT.avi [--frames 150] [--fps 30]
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--fps", type=float, default=30.0)
    args = ap.parse_args()
    from skimage import data

    from reenact.face.dlib_detector import DlibDetector
    from reenact.synthetic import talking_frames

    img = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    canvas = np.full((480, 640, 3), 128, np.uint8)
    canvas[40:440, 120:520] = cv2.resize(img, (400, 400), interpolation=cv2.INTER_AREA)
    lm = DlibDetector().detect(canvas)
    if not lm.found:
        raise SystemExit("no face found in the driver canvas")
    frames, _ = talking_frames(canvas, lm.points, args.frames, period=30)
    w = cv2.VideoWriter(args.out, cv2.VideoWriter_fourcc(*"MJPG"), args.fps, (640, 480))
    for f in frames:
        w.write(f)
    w.release()
    print(f"wrote {args.out}: {len(frames)} frames, 640x480, {args.fps} fps")


if __name__ == "__main__":
    main()
