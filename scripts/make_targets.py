#!/usr/bin/env python3
"""Write one face photo at the sizes of BENCHMARKS.md's target-size rows (0.4 to 48 megapixels).

    python scripts/make_targets.py PHOTO OUT_DIR

The photo's centre 3:4 portrait cut is resized (bicubic) to 540x720 (t720), 612x816 (t05, 0.5 MP),
1344x1792 (t24, 2.4 MP), 3024x4032 (t12, 12 MP, a phone photo) and 6000x8000 (t48, 48 MP), JPEG
quality 92. Upscaled pictures are softer than real ones of that size, which does not change what
is timed. Write them outside the repository (e.g. /tmp): they are large and not ours to commit.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2

SIZES = {"t720": (540, 720), "t05": (612, 816), "t24": (1344, 1792), "t12": (3024, 4032), "t48": (6000, 8000)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("photo")
    ap.add_argument("out", type=Path)
    args = ap.parse_args()
    img = cv2.imread(args.photo)
    if img is None:
        raise SystemExit(f"cannot read {args.photo}")
    h, w = img.shape[:2]
    cw = min(w, h * 3 // 4)
    ch = cw * 4 // 3
    x0, y0 = (w - cw) // 2, (h - ch) // 2
    cut = img[y0:y0 + ch, x0:x0 + cw]
    args.out.mkdir(parents=True, exist_ok=True)
    for name, size in SIZES.items():
        path = args.out / f"{name}.jpg"
        cv2.imwrite(str(path), cv2.resize(cut, size, interpolation=cv2.INTER_CUBIC), [cv2.IMWRITE_JPEG_QUALITY, 92])
        print(f"wrote {path} ({size[0]}x{size[1]}, {size[0] * size[1] / 1e6:.1f} MP)")


if __name__ == "__main__":
    main()
