#!/usr/bin/env python3
"""Where the default loses identity to the warp on CREMA-D, and two ways tried to win it back (issue 17).

Runs the eval's own expressive cases (``reenact eval``'s sets ``cremad`` and, with ``--sets``,
``scripted``: the split's first ``--targets`` London people, the live per-frame path, the output
re-detected) for these settings, side by side:

- ``default``: the shipped weights with the driver's mouth interior, as `reenact live` runs;
- ``warp``: the eval's ``warp`` method, the same live path with Φ and Ω replaced by the plain
  landmark warp (eye retargeting, painted lids, smoothing and automatic calibration stay);
- ``plain``: the baseline issue 17 was filed against: the plain landmark warp with the driver's
  first frame as the neutral face, no smoothing, no eye retargeting and no painted lids;
- ``lowpass``: the default with Ω's residual low-passed (Gaussian, sigma 4 crop px) in the live
  paste-back outside the eyes and the mouth (their hulls grown 8 px): keeps the target's fine
  skin texture, which Ω, trained on GRID, smooths;
- ``keep``: the default with Ω's residual halved outside the eyes and the mouth.

Prints a markdown table per set of the eval's expressive measures (mean over the targets). ``lowpass`` and
``keep`` patch the library for the run only; nothing here changes what `reenact live` does.

    python scripts/residual_identity_study.py --data ../shared/data --split val
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import cv2
import numpy as np

import reenact.generate as generate
import reenact.inference.reenactor as reenactor
import reenact.session as session
from reenact.data.datasets import build_bank
from reenact.eval import expressive_sets as es
from reenact.face.align import align_points
from reenact.face.dlib_detector import DlibDetector
from reenact.face.rasterize import soft_hull_mask
from reenact.inference.backend import create_backend
from reenact.paths import WEIGHTS_DIR

SETTINGS = ("default", "warp", "plain", "lowpass", "keep")
EYES_MOUTH = (tuple(range(36, 42)), tuple(range(42, 48)), tuple(range(48, 60)))
GROW = 8.0  # px the eye and mouth hulls are grown by, where Ω's residual stays whole
LOWPASS_SIGMA = 4.0  # px at the 256² crop
KEEP_ELSEWHERE = 0.5  # ``keep``: Ω's residual scale outside the eyes and the mouth


def eyes_mouth(jgen: np.ndarray, size: int) -> np.ndarray:
    """[size,size] float32: 1 on J_gen's eyes and outer lips (hulls grown ``GROW``, feathered 4 px)."""
    out = np.zeros((size, size), np.float32)
    for idx in EYES_MOUTH:
        out = np.maximum(out, soft_hull_mask(jgen, idx, GROW, 4.0, size))
    return out


@contextlib.contextmanager
def patched(setting: str, first_neutral: dict[str, np.ndarray]) -> Iterator[None]:
    """The library patched for one setting (nothing for default and warp); ``first_neutral["now"]``:
    the neutral face ``plain`` sets, the running case's driver's first frame in the canonical crop."""
    with contextlib.ExitStack() as stack:
        if setting == "plain":
            real_open = session.open_pipeline

            def plain_open(config, say, backend):
                config = dataclasses.replace(config, smoothing=False, auto_calibrate=False)
                pipeline = real_open(config, say=say, backend=backend)
                pipeline.reenactor.set_neutral(first_neutral["now"])
                return pipeline

            stack.enter_context(mock.patch.object(session, "open_pipeline", plain_open))
            stack.enter_context(mock.patch.object(generate, "retarget_eyes", lambda jgen, *a: jgen))
            stack.enter_context(mock.patch.object(reenactor, "lid_amounts", lambda jgen, pts: np.zeros(2, np.float32)))
        elif setting == "lowpass":
            real_paste = reenactor.Reenactor._paste_guided

            def paste(self, tg, jgen, head, guide=None):
                r = np.ascontiguousarray((head[3:4] * head[:3]).transpose(1, 2, 0))
                keep = eyes_mouth(jgen, r.shape[0])[..., None]
                r = keep * r + (1 - keep) * cv2.GaussianBlur(r, (0, 0), LOWPASS_SIGMA)
                ones = np.ones((1,) + r.shape[:2], np.float32)
                return real_paste(self, tg, jgen, np.concatenate([r.transpose(2, 0, 1), ones]), guide)

            stack.enter_context(mock.patch.object(reenactor.Reenactor, "_paste_guided", paste))
        elif setting == "keep":
            real_region = generate.residual_region

            def region(jgen, size=256):
                return real_region(jgen, size) * (KEEP_ELSEWHERE + (1 - KEEP_ELSEWHERE) * eyes_mouth(jgen, size))

            stack.enter_context(mock.patch.object(generate, "residual_region", region))
        yield


def _mean(values: list[float]) -> float:
    """The mean of the finite values; nan when there are none (the scripted drivers show no teeth)."""
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="dataset folder (../shared/data)")
    ap.add_argument("--split", choices=("val", "test"), default="val")
    ap.add_argument("--targets", type=int, default=2, help="target photos (the eval's first N of the split)")
    ap.add_argument("--sets", default="cremad", help="comma-separated: cremad, scripted")
    ap.add_argument("--settings", default=",".join(SETTINGS), help=f"comma-separated, of {', '.join(SETTINGS)}")
    ap.add_argument("--weights", type=Path, default=WEIGHTS_DIR)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    settings = [s for s in args.settings.split(",") if s]
    if unknown := set(settings) - set(SETTINGS):
        ap.error(f"unknown settings {sorted(unknown)}; choose from {', '.join(SETTINGS)}")

    det = DlibDetector()
    bank = build_bank(args.data, seed=0)
    sets = tuple(x for x in args.sets.split(",") if x)
    cases, skipped = es.expressive_cases(bank, args.data, args.split, sets, args.targets, 0, det)
    for name, why in skipped.items():
        print(f"{name} left out: {why}")
    if not cases:
        raise SystemExit("no expressive cases to run")
    tracks, neutrals = {}, {}
    for case in (c for cs in cases.values() for c in cs):
        drv = case.driver
        if drv.name not in tracks:
            tracks[drv.name] = es.track_driver(drv, det)
            first = det.detect(next(iter(drv.frames()))).points.astype(np.float32)
            neutrals[drv.name] = align_points(first).to_crop(first)

    rows: dict[str, dict[str, dict[str, float]]] = {name: {} for name in cases}
    holder: dict[str, np.ndarray] = {}
    for setting in settings:
        backend = create_backend("onnx", args.weights, device="cpu", threads=args.threads)
        interior = "driver"
        if setting in ("warp", "plain"):
            backend, interior = es.WarpBackend(backend.cfg), "generated"
        with patched(setting, holder):
            for name, set_cases in cases.items():
                per_case = []
                for case in set_cases:
                    holder["now"] = neutrals[case.driver.name]
                    per_case.append(es.run_case(case, backend, tracks[case.driver.name], det, args.threads, interior)[0])
                rows[name][setting] = {k: _mean([c[k] for c in per_case]) for k in es.KEYS if k in per_case[0]}
                print(f"{name} {setting}: " + ", ".join(f"{k} {v:.4f}" for k, v in rows[name][setting].items()), flush=True)

    for name, by_setting in rows.items():
        keys = [k for k in es.KEYS if k != "face_found" and any(np.isfinite(r.get(k, np.nan)) for r in by_setting.values())]
        print(f"\n{name}, {args.split} split, targets {', '.join(c.target_key for c in cases[name])}\n")
        print("| setting | " + " | ".join(keys) + " |")
        print("|:--|" + "--:|" * len(keys))
        for setting, r in by_setting.items():
            print(f"| {setting} | " + " | ".join(f"{r[k]:.4f}" for k in keys) + " |")


if __name__ == "__main__":
    main()
