#!/usr/bin/env python3
"""Whole-face expression end to end: the live pipeline on expressive drivers, re-detected (issue 17).

Runs ``reenact live``'s own per-frame path (:class:`reenact.session.LiveProcessor` with
automatic calibration, the ONNX backend and the shipped weights, each frame timed as a file is)
on two drivers, and re-detects dlib landmarks on every output frame:

- ``cremad``: the six CREMA-D clips (one actor, six emotions; evaluation material, never trained
  on) played one after another as one ~13 s session;
- ``scripted``: a London neutral photo warped along ``reenact.eval.expressive.scripted_driver``
  (6 s of talking, brows raised and held 10 s, a squint, a smile, a slow and two fast blinks).

Each driver drives each ``--targets`` London neutral photo twice: with the settings before issue 17
(eyes smoothed with the mouth's beta 20, brows held like the nose; the stand-in neutral a plain
150-frame window and an automatic capture that takes any still face with closed lips) and with
today's defaults. It prints a markdown table of ``reenact.eval.expressive``'s measures (following
of brow height, eye opening, mouth opening and width; blink depth; teeth area over the driver's;
brow-hold retention on the scripted driver; landmark jitter over the driver's) and writes
``--out``/<driver>_<target>.png: driver | before | now at chosen frames, results.json and the
per-frame features (<driver>_<target>_<setting>.npz). ``--new-weights`` adds the settings ``new``
and ``new-generated``: today's defaults with other weights (e.g. an Ω with the mouth guide), the
driver's or the generated mouth interior; the strip then shows driver | first | last setting.

    python scripts/expressive_study.py --data ../shared/data --targets 012,029 --out /tmp/expressive
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from reenact.calibration import CaptureConfig, NeutralCapture, RunningNeutral
from reenact.eval import expressive as ex
from reenact.face.align import align_points
from reenact.face.landmarks import create_detector
from reenact.face.smoothing import LandmarkSmoother, OneEuroConfig
from reenact.face.warp import image_mesh, warp_image
from reenact.inference.backend import create_backend
from reenact.inference.reenactor import Reenactor, ReenactorOptions
from reenact.live.capture import Frame
from reenact.paths import WEIGHTS_DIR
from reenact.session import LiveProcessor, load_target

FPS = 30.0
#: The scripted driver: talking (6 s, past the stand-in's settling), then the expressions.
SCRIPT = tuple(
    ex.talking(0.0, 6.0)
    + [ex.Segment("brows", 6.5, 0.2, 10.0, 0.3)]
    + ex.talking(17.3, 1.5)
    + [ex.Segment("squint", 19.0, 0.3, 2.0, 0.3), ex.Segment("smile", 22.0, 0.4, 2.0, 0.4)]
    + [ex.Segment("blink", 25.5, 0.25, 0.1, 0.25), ex.Segment("blink", 26.5, 0.07, 0.0, 0.13),
       ex.Segment("blink", 27.3, 0.07, 0.0, 0.13)]
)
HOLD = {"before": (6.0, 6.5), "start": (6.8, 7.3), "end": (16.3, 16.8)}  # seconds, brow hold


def cremad_frames(folder: Path) -> list[np.ndarray]:
    """Every frame of the CREMA-D clips, one clip after another (BGR uint8)."""
    frames = []
    for path in sorted(folder.glob("*.flv")):
        cap = cv2.VideoCapture(str(path))
        ok, f = cap.read()
        while ok:
            frames.append(f)
            ok, f = cap.read()
        cap.release()
    return frames


def scripted_frames(photo: np.ndarray, detector) -> tuple[list[np.ndarray], np.ndarray]:
    lm = detector.detect(photo)
    if not lm.found:
        raise SystemExit("no face in the scripted driver's photo")
    pts, t = ex.scripted_driver(lm.points, SCRIPT, fps=FPS)
    M = align_points(lm.points).M
    return [warp_image(photo, image_mesh(lm.points, p, M)) for p in pts], t


def run(frames: list[np.ndarray], backend, target: Path, before: bool,
        mouth_interior: str = "driver") -> tuple[list[np.ndarray], np.ndarray]:
    """Outputs of the live per-frame path, and the driver's raw landmarks (nan rows: no face)."""
    smoother = (LandmarkSmoother(eyes=OneEuroConfig(beta=20.0), brows=OneEuroConfig(beta=0.5)) if before
                else LandmarkSmoother())
    r = Reenactor(backend, create_detector("dlib"), smoother=smoother,
                  options=ReenactorOptions(mouth_interior=mouth_interior))
    load_target(target, create_detector("dlib", detect_width=1000), r)
    with tempfile.TemporaryDirectory() as cal:
        proc = LiveProcessor(r, "default", cal, auto_calibrate=True)
        if before:
            proc.running = RunningNeutral(slow=1)
            proc.capture = NeutralCapture(CaptureConfig(require_rest=True))
        outs, drv = [], []
        for i, img in enumerate(frames):
            outs.append(proc(Frame(image=img, index=i, t_capture=i / FPS, t_media=i / FPS, new_segment=i == 0)))
            drv.append(r.last_points if r.last_points is not None else np.full((68, 2), np.nan))
    return outs, np.array(drv, np.float64)


def measures(frames, outs, drv_pts, det, t: np.ndarray | None, save: Path | None = None) -> dict[str, float]:
    out_pts = ex.redetect(outs, det)
    d, o = ex.face_features(drv_pts), ex.face_features(out_pts)
    if save is not None:  # per-frame features [T,4] (expressive.FEATURES) for a closer look
        np.savez(save, driver=d, output=o)
    res = {f"{k} following": v for k, v in ex.following(d, o).items()}
    res["blink depth"] = ex.blink_depth(d[:, 1], o[:, 1])
    res["driver blink depth"] = ex.blink_depth(d[:, 1], d[:, 1])
    dt = np.array([ex.teeth_area(f, p) if np.all(np.isfinite(p)) else np.nan for f, p in zip(frames, drv_pts, strict=True)])
    ot = np.array([ex.teeth_area(f, p) if np.all(np.isfinite(p)) else np.nan for f, p in zip(outs, out_pts, strict=True)])
    res["teeth over driver"] = ex.teeth_ratio(dt, ot)
    res["jitter over driver"] = ex.landmark_jitter(out_pts) / ex.landmark_jitter(drv_pts)
    res["output face found"] = float(np.mean(np.all(np.isfinite(out_pts), axis=(1, 2))))
    if t is not None:
        sl = {k: slice(int(a * FPS), int(b * FPS)) for k, (a, b) in HOLD.items()}
        res["brow hold retention"] = ex.retention(o[:, 0], sl["before"], sl["start"], sl["end"])
        res["driver brow hold retention"] = ex.retention(d[:, 0], sl["before"], sl["start"], sl["end"])
    return res


def strip(frames, before, now, idx: list[int], height: int = 200) -> np.ndarray:
    rows = []
    for i in idx:
        cells = [cv2.resize(x[i], (int(x[i].shape[1] * height / x[i].shape[0]), height)) for x in (frames, before, now)]
        rows.append(np.concatenate(cells, 1))
    w = max(r.shape[1] for r in rows)
    return np.concatenate([np.pad(r, ((0, 0), (0, w - r.shape[1]), (0, 0))) for r in rows], 0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, type=Path, help="folder with cremad/ and london/")
    ap.add_argument("--targets", default="012,029", help="London neutral photo numbers to drive")
    ap.add_argument("--driver-photo", default="005", help="London neutral photo for the scripted driver")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--max-frames", type=int, default=None, help="cut each driver (a quick check)")
    ap.add_argument("--drivers", default="cremad,scripted", help="which drivers to run")
    ap.add_argument("--settings", default="before,now",
                    help="which settings to run: before, now (the shipped weights), new (--new-weights, "
                         "--mouth-interior driver) and new-generated (--new-weights, --mouth-interior generated)")
    ap.add_argument("--new-weights", type=Path, default=None, help="weights folder for the 'new' settings")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    backend = create_backend("onnx", WEIGHTS_DIR, threads=1)
    new_backend = create_backend("onnx", a.new_weights, threads=1) if a.new_weights else None
    det = create_detector("dlib")
    names = a.drivers.split(",")
    drivers = {"cremad": (cremad_frames(a.data / "cremad"), None)} if "cremad" in names else {}
    if "scripted" in names:
        drivers["scripted"] = scripted_frames(cv2.imread(str(a.data / "london" / "neutral" / f"{a.driver_photo}.jpg")), det)
    results = {}
    for dname, (frames, t) in drivers.items():
        frames = frames[:a.max_frames]
        for tg in a.targets.split(","):
            target = a.data / "london" / "neutral" / f"{tg}.jpg"
            runs = {}
            for setting in a.settings.split(","):
                t0 = time.perf_counter()
                if setting.startswith("new") and new_backend is None:
                    raise SystemExit(f"setting {setting!r} needs --new-weights")
                outs, drv = run(frames, new_backend if setting.startswith("new") else backend, target,
                                before=setting == "before",
                                mouth_interior="generated" if setting == "new-generated" else "driver")
                runs[setting] = outs
                results[f"{dname} {tg} {setting}"] = measures(frames, outs, drv, det, t if t is not None and len(frames) > HOLD["end"][1] * FPS else None,
                                                              save=a.out / f"{dname}_{tg}_{setting}.npz")
                print(f"{dname} {tg} {setting}: {len(frames)} frames in {time.perf_counter() - t0:.0f} s", flush=True)
            f = ex.face_features(drv)
            idx = sorted({int(np.nanargmax(f[:, 0])), int(np.nanargmin(f[:, 1])), int(np.nanargmax(f[:, 2])), len(frames) // 2})
            if t is not None and len(frames) > HOLD["end"][1] * FPS:
                idx = [int(7.0 * FPS), int(16.5 * FPS), int(20.5 * FPS), int(23.5 * FPS), int(25.8 * FPS)]
            shown = list(runs)[:1] + list(runs)[-1:] if len(runs) > 1 else list(runs) * 2  # driver | first | last setting
            cv2.imwrite(str(a.out / f"{dname}_{tg}.png"), strip(frames, *(runs[k] for k in shown), idx))
    (a.out / "results.json").write_text(json.dumps(results, indent=1, default=lambda v: None))
    cols = list(dict.fromkeys(c for r in results.values() for c in r))
    print("\n| driver target setting | " + " | ".join(cols) + " |")
    print("|:--|" + "--:|" * len(cols))
    for name, r in results.items():
        print(f"| {name} | " + " | ".join("" if c not in r or r[c] is None or (isinstance(r[c], float) and math.isnan(r[c]))
                                          else f"{r[c]:.2f}" for c in cols) + " |")


if __name__ == "__main__":
    main()
