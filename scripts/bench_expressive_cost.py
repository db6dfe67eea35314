#!/usr/bin/env python3
"""What issue 17's eyes and mouth guide cost per frame: `reenact bench`'s stage table, old and new side by side.

Runs the live per-frame path (:func:`reenact.bench.run_one`, ONNX Runtime, the synthetic talking
driver `reenact bench` uses: the target letterboxed to 640x480, its mouth opening and closing) for
these settings, frame by frame in turn so that a busy machine slows each alike:

- ``shipped-generated``: the shipped weights (9-channel Ω; J_gen's eyes retargeted, which is in
  ``phi``), ``--mouth-interior generated``: no mouth interior is built;
- ``shipped-driver``: the same weights with the driver's interior laid into the mouth (the default);
- with ``--new-weights`` (an Ω trained with the mouth guide): ``guide-driver``, the interior also
  given to Ω.

The interior is cut from the frame in ``smooth``, built in ``warp`` and laid into the output in
``paste``; a guide-trained Ω's wider input is in ``omega``, and so is the residual's face region
(``generate.residual_region``). Also prints the new steps alone (median of many calls): the eye
retargeting, the mouth cut, the guide and the residual region.

    python scripts/bench_expressive_cost.py [--new-weights RUN] [--target PHOTO]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def micro(fn, n: int = 300) -> float:
    """Median ms of ``fn()`` over n calls."""
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1000)
    return float(np.median(ts))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--new-weights", type=Path, default=None, help="weights folder of an Ω with the mouth guide (exported)")
    ap.add_argument("--frames", type=int, default=300, help="frames measured per setting")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", default="1280x720", help="output size (letterboxed, as the virtual camera)")
    ap.add_argument("--target", type=Path, default=None,
                    help="target photo (default: the astronaut, 512²; scripts/make_targets.py makes a 12 MP phone-sized one)")
    a = ap.parse_args()

    import cv2

    from reenact import bench as B
    from reenact.commands.bench import default_target
    from reenact.face.align import align_points
    from reenact.face.eyes import retarget_eyes
    from reenact.face.landmarks import create_detector
    from reenact.face.mouth import driver_mouth_crop, mouth_guide
    from reenact.generate import residual_region
    from reenact.inference.backend import create_backend
    from reenact.inference.reenactor import Reenactor, ReenactorOptions
    from reenact.live.capture import Frame
    from reenact.live.sinks import letterbox
    from reenact.paths import WEIGHTS_DIR
    from reenact.session import backend_options, parse_size
    from reenact.synthetic import talking_frames

    cv2.setNumThreads(a.threads)
    out_size = parse_size(a.size)
    det = create_detector("dlib")
    target = default_target() if a.target is None else cv2.imread(str(a.target), cv2.IMREAD_COLOR)
    if target is None:
        raise SystemExit(f"cannot read {a.target}")
    face = letterbox(target, (640, 480))
    lm = det.detect(face)
    frames, _ = talking_frames(face, lm.points, 120)
    target_lm = create_detector("dlib", detect_width=1000).detect(target)
    settings = {"shipped-generated": (WEIGHTS_DIR, "generated"), "shipped-driver": (WEIGHTS_DIR, "driver")}
    if a.new_weights is not None:
        settings["guide-driver"] = (a.new_weights, "driver")
    reenactors = {}
    for name, (weights, interior) in settings.items():
        be = create_backend("onnx", weights, **backend_options("onnx", a.threads))
        # a detector each: one shared tracker would re-detect every 10th call, always on the same setting
        r = Reenactor(be, create_detector("dlib"), options=ReenactorOptions(output_size=out_size, mouth_interior=interior))
        r.add_target(target, target_lm)
        reenactors[name] = r
    samples = {name: {"lat": [], "stages": {}, "faces": 0, "wall": 0.0} for name in reenactors}
    for i in range(a.warmup + a.frames):
        for name, r in reenactors.items():  # frame by frame in turn: a busy machine's slow spells fall on each alike
            t0 = time.perf_counter()
            out = r(Frame(image=frames[i % len(frames)], index=i, t_capture=t0, t_media=t0, new_segment=i == 0))
            tp = time.perf_counter()
            letterbox(out, out_size)
            t1 = time.perf_counter()
            if i < a.warmup:
                continue
            m = samples[name]
            m["wall"] += t1 - t0
            m["lat"].append((t1 - t0) * 1000)
            m["faces"] += bool(r.face_found)
            for k, v in {**r.timings, "output": (t1 - tp) * 1000, "total": (t1 - t0) * 1000}.items():
                m["stages"].setdefault(k, []).append(v)
    runs = []
    for name, r in reenactors.items():
        m = samples[name]
        runs.append(B.BenchRun(f"onnx {name}", r.cfg.preset, r.cfg.variant, a.frames, m["wall"], B.Latency.of(m["lat"]),
                               {k: B.StageStats.of(v) for k, v in m["stages"].items()}, 0, m["faces"],
                               tuple(r.target.photo_size), tuple(r.target.size), out_size))
    print(B.format_table(runs))

    # the two new steps alone, on an open-mouth frame of the same driver
    r = reenactors["shipped-driver"]
    k = int(np.argmax([np.ptp(det.detect(f).points[[62, 66], 1]) for f in frames[:20]]))
    pts = det.detect(frames[k]).points
    al = align_points(pts)
    L_s = al.to_crop(pts)
    tg = r.target
    jgen = tg.crop_points + (L_s - r.neutral)
    cut = driver_mouth_crop(frames[k], al.M, L_s)
    print(f"\neye retargeting: {micro(lambda: retarget_eyes(jgen, tg.crop_points, L_s, r.neutral)):.3f} ms; "
          f"mouth cut from the frame: {micro(lambda: driver_mouth_crop(frames[k], al.M, L_s)):.3f} ms; "
          f"mouth guide: {micro(lambda: mouth_guide(cut, L_s, jgen, tg.crop, tg.crop_points, tg.net['mouth_skin'])):.3f} ms; "
          f"Ω's residual region: {micro(lambda: residual_region(jgen)):.3f} ms (median)")


if __name__ == "__main__":
    main()
