"""Benchmark the face stages on this CPU: landmarks per 640x480 frame and piecewise-affine warps.

Prints a markdown table (for BENCHMARKS.md) with the machine and the date.

    /tmp/venv/bin/python scripts/bench_landmarks.py            # dlib detect / track, warps
    /tmp/venv_mp/bin/python scripts/bench_landmarks.py         # the same plus mediapipe (numpy<2 venv)
    git show REV:reenact/face/warp.py > /tmp/warp_old.py
    python scripts/bench_landmarks.py --compare-warp /tmp/warp_old.py   # + that warp, interleaved

The face is the public-domain astronaut (scikit-image), scaled 1.5x into the frame so it is
webcam-sized (~65 px between the eyes at 640x480) and moved by a pixel or two per frame.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import logging
import os
import platform
import time
from collections.abc import Callable

import cv2
import numpy as np

log = logging.getLogger("bench_landmarks")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def timed(fn: Callable[[int], object], n: int, warmup: int = 3) -> np.ndarray:
    """Milliseconds per call of fn(i) over n calls, after a few warm-up calls."""
    return timed_interleaved([fn], n, warmup)[0]


def timed_interleaved(fns: list[Callable[[int], object]], n: int, warmup: int = 3) -> list[np.ndarray]:
    """Like :func:`timed` for several functions called in turn, so they share the machine's load."""
    for i in range(warmup):
        for fn in fns:
            fn(i)
    out = [np.empty(n) for _ in fns]
    for i in range(n):
        for k, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn(i)
            out[k][i] = (time.perf_counter() - t0) * 1e3
    return out


def astronaut() -> np.ndarray:
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def frames(face: np.ndarray, size: tuple[int, int], scale: float, n: int = 8) -> list[np.ndarray]:
    """n frames with the face scaled and moved slightly (a person sitting still at a webcam)."""
    w, h = size
    out = []
    for i in range(n):
        dx, dy = (w - scale * 512) / 2 + (i % 3), (h - scale * 512) / 2 + 40 + (i % 2)
        M = np.float32([[scale, 0, dx], [0, scale, dy]])
        out.append(cv2.warpAffine(face, M, (w, h), flags=cv2.INTER_LINEAR, borderValue=(90, 100, 110)))
    return out


def row(name: str, ms: np.ndarray, note: str = "") -> str:
    return (f"| {name} | {np.median(ms):.1f} | {ms.mean():.1f} | {np.percentile(ms, 90):.1f} | {len(ms)} | {note} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--repeats", type=int, default=100, help="timed calls per stage")
    ap.add_argument("--cv-threads", type=int, default=None, help="cv2.setNumThreads (default: OpenCV's own)")
    ap.add_argument("--compare-warp", default=None, metavar="WARP_PY",
                    help="also time this warp.py (e.g. from `git show REV:reenact/face/warp.py`), interleaved")
    args = ap.parse_args()
    if args.compare_warp and not os.path.isfile(args.compare_warp):
        raise SystemExit(f"--compare-warp: no such file {args.compare_warp} (make one with git show REV:reenact/face/warp.py)")
    logging.basicConfig(level=logging.WARNING)
    if args.cv_threads is not None:
        cv2.setNumThreads(args.cv_threads)
    n = args.repeats
    face = astronaut()
    vga = frames(face, (640, 480), 1.5)
    rows: list[str] = []

    from reenact.face.dlib_detector import DlibDetector
    from reenact.face.tracking import LandmarkTracker

    det = DlibDetector()
    lm = det.detect(vga[0])
    if not lm.found:
        raise SystemExit("the benchmark face was not found")
    rows.append(row("dlib detect, 640x480 (HOG on 320 px + shape predictor)", timed(lambda i: det.detect(vga[i % 8]), n)))
    tracker = LandmarkTracker(det, redetect_every=10)
    rows.append(row("dlib track, 640x480 (shape predictor in the last box; re-detect every 10)",
                    timed(lambda i: tracker.update(vga[i % 8]), n), "mean includes the periodic re-detections"))
    modes = []
    for i in range(20):
        tracker.update(vga[i % 8])
        modes.append(tracker.last_mode)
    if "track" not in modes:
        log.warning("the tracker never tracked: %s", modes)

    if importlib.util.find_spec("mediapipe") is not None:
        from reenact.face.mediapipe_detector import MediapipeDetector

        mpd = MediapipeDetector()
        if not mpd.detect(vga[0]).found:
            log.warning("mediapipe found no face in the benchmark frame")
        rows.append(row("mediapipe detect, 640x480 (static image mode)", timed(lambda i: mpd.detect(vga[i % 8]), n)))
        rows.append(row("mediapipe track, 640x480 (video mode)", timed(lambda i: mpd.track(vga[i % 8]), n)))
        mpd.close()
    else:
        rows.append("| mediapipe | - | - | - | 0 | not importable here (run in the numpy<2 venv) |")

    from reenact.face.align import align_points
    from reenact.face.warp import image_mesh, warp_crop, warp_image

    al = align_points(lm.points)
    crop = al.crop(vga[0])
    src = al.to_crop(lm.points)
    dst = src.copy()
    dst[48] += (-5.0, -4.0)  # a smile: mouth corners out and up, lower lip down
    dst[54] += (5.0, -4.0)
    dst[55:60] += (0.0, 3.0)
    rows.append(row("piecewise-affine warp, 256x256 crop (warp_crop)", timed(lambda i: warp_crop(crop, src, dst), n)))

    hd = frames(face, (1280, 720), 2.0, n=1)[0]
    lm_hd = DlibDetector(detect_width=640).detect(hd)
    if not lm_hd.found:
        raise SystemExit("the 1280x720 benchmark face was not found")
    al_hd = align_points(lm_hd.points)
    dst_hd = al_hd.to_image(dst)
    mesh = image_mesh(lm_hd.points, dst_hd, al_hd.M)
    x0, y0 = np.floor(mesh.dst.min(0)).astype(int).clip(0)
    x1, y1 = np.ceil(mesh.dst.max(0)).astype(int)
    x1, y1 = min(int(x1), 1280), min(int(y1), 720)
    region = (int(y1 - y0), int(x1 - x0))

    def hd_warp(i: int) -> None:
        m = image_mesh(lm_hd.points, dst_hd, al_hd.M)
        warp_image(hd, m, shape=region, offset=(int(x0), int(y0)))

    rows.append(row("piecewise-affine warp, face region of a 1280x720 frame (image_mesh + warp_image)",
                    timed(hd_warp, n), f"region {region[1]}x{region[0]} px, {lm_hd.box[2] - lm_hd.box[0]} px face"))

    # a wide-open mouth squeezes triangles beside the lips: the case the containing-triangle
    # pixel assignment exists for; with --compare-warp both run interleaved, call by call
    from reenact.face import warp as warp_now
    from reenact.synthetic import open_mouth

    wide = open_mouth(src, 0.35)
    impls = [("", warp_now)]
    if args.compare_warp:
        spec = importlib.util.spec_from_file_location("warp_compared", args.compare_warp)
        other = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(other)
        impls.append((f" [{args.compare_warp}]", other))
    for label, fn in (("piecewise-affine warp, wide-open mouth, 256x256 crop", lambda m: m.warp_crop(crop, src, wide)),
                      ("piecewise-affine warp, wide-open mouth, 1280x720 face region, step 2",
                       lambda m: m.warp_image(hd, m.image_mesh(lm_hd.points, al_hd.to_image(wide), al_hd.M),
                                              shape=region, offset=(int(x0), int(y0)), step=2))):
        times = timed_interleaved([lambda i, m=m, fn=fn: fn(m) for _, m in impls], n)
        rows += [row(label + name, t) for (name, _), t in zip(impls, times, strict=True)]

    import dlib

    versions = f"dlib {dlib.__version__}, OpenCV {cv2.__version__} ({cv2.getNumThreads()} threads), numpy {np.__version__}"
    if importlib.util.find_spec("mediapipe") is not None:
        import mediapipe

        versions += f", mediapipe {mediapipe.__version__}"
    print(f"### Landmarks and warps ({datetime.date.today().isoformat()})")
    print()
    print(f"Machine: {os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {cpu_model()}; "
          f"Python {platform.python_version()}; {versions}.")
    print()
    print("| stage | median ms | mean ms | p90 ms | calls | note |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(r)


if __name__ == "__main__":
    main()
