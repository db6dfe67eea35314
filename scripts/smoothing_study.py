#!/usr/bin/env python3
"""How much the live path's landmark smoothing costs in lag and gains in steadiness, on real clips.

Runs dlib on every frame of every video in ``--data``'s ``grid/`` folder (talking heads) and
``cremad/`` folder (one actor, six emotions: brows, squints, blinks), cached with ``--cache``, then
feeds the landmarks through :class:`reenact.face.smoothing.LandmarkSmoother` at the clip's frame
rate with several settings and prints a markdown table per set, in face-normalised units
(interocular distance = 1000):

- still noise: on still-face frames (the mouth closed and the eyes within 15 % of their median
  opening for ±3 frames: until 2026-11-30 blinks counted, which charged a smoother that lets blinks
  through with their motion), the RMS distance of each point to its own 5-frame centred mean (the
  jitter a viewer sees as shimmer), by part of the face;
- mouth lag: the delay, in frames (sub-frame, parabolic peak), that best aligns the smoothed
  mouth opening (inner lips 62–66) with the raw one;
- mouth peak: smoothed over raw opening on the clip's 8 widest-open frames (1 = full opening);
- eye lag and blink depth: the same for the eye opening on the 3 most closed frames, on the clips
  where the eyes close (opening below 0.6 of the clip's median; three of the six GRID clips);
- eye following: Pearson r of the smoothed eye opening with dlib's; blink-frame opening: the
  smoothed eye opening over its median on the frames where dlib's is below 0.6 of its median (as
  ``reenact eval``'s blink depth; dlib's own figure is in the raw row);
- brow following: Pearson r of the smoothed brow height (``eval.expressive``) with the raw one;
- synthetic (no data): a template brow raise over 3 frames at 30 fps, the smoothed height 2 frames
  after the raw one is full, over it; a fast blink (closed in 2 frames, open over 4), its depth.

    python scripts/smoothing_study.py --data ../shared/data [--cache /tmp/landmarks]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from reenact.eval.expressive import face_features, move
from reenact.face.smoothing import LandmarkSmoother, OneEuroConfig, normalise
from reenact.face.topology import TEMPLATE_256

STEADY_EYES = 0.15  # still face: the eye opening within this fraction of the clip's median
BLINK = 0.6  # an eye closing: the eye opening falls below this fraction of the clip's median
PARTS = {"brows": list(range(17, 27)), "jaw sides": list(range(0, 4)) + list(range(13, 17)), "nose": list(range(27, 36)),
         "eyes": list(range(36, 48)), "lips": list(range(48, 68)), "chin": list(range(4, 13))}


def clip_landmarks(folder: Path, cache: Path | None) -> dict[str, tuple[np.ndarray, float]]:
    """{clip: (landmarks [T,68,2] in pixels, fps)}; frames where dlib finds no face are dropped."""
    if cache is not None and cache.exists():
        z = np.load(cache)
        return {k[:-4]: (z[k], float(z[k[:-4] + ".fps"])) for k in z.files if k.endswith(".pts")}
    import cv2

    from reenact.face.landmarks import create_detector

    det = create_detector("dlib")
    out = {}
    for path in sorted(p for ext in ("mpg", "mp4", "flv") for p in folder.glob(f"*.{ext}")):
        cap = cv2.VideoCapture(str(path))
        fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        pts = []
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            lm = det.detect(frame)
            if lm.found:
                pts.append(lm.points.astype(np.float32))
        out[path.stem] = (np.array(pts), fps)
    if cache is not None:
        np.savez(cache, **{f"{k}.pts": v[0] for k, v in out.items()}, **{f"{k}.fps": np.array(v[1]) for k, v in out.items()})
    return out


def _norm(P: np.ndarray) -> np.ndarray:
    return np.array([normalise(p.astype(np.float64))[0] for p in P])


def mouth_opening(N: np.ndarray) -> np.ndarray:
    return np.linalg.norm(N[:, 66] - N[:, 62], axis=1)


def eye_opening(N: np.ndarray) -> np.ndarray:
    pairs = [(37, 41), (38, 40), (43, 47), (44, 46)]
    return np.mean([np.linalg.norm(N[:, a] - N[:, b], axis=1) for a, b in pairs], axis=0)


def best_lag(raw: np.ndarray, out: np.ndarray, max_lag: int = 3) -> float:
    """Frames by which ``out`` trails ``raw`` (the lag of highest correlation, refined to sub-frame)."""
    cs = [np.corrcoef(raw[:len(raw) - k], out[k:])[0, 1] for k in range(max_lag + 1)]
    k = int(np.argmax(cs))
    if 0 < k < max_lag:
        y0, y1, y2 = cs[k - 1], cs[k], cs[k + 1]
        return k + 0.5 * (y0 - y2) / (y0 - 2 * y1 + y2)
    return float(k)


def still_noise(out: np.ndarray, raw: np.ndarray) -> np.ndarray | None:
    """Per-point RMS distance to the 5-frame centred mean, on still-face frames: the mouth closed and
    the eyes within 15 % of their median opening for ±3 frames (a blink is motion, not shimmer)."""
    a, e = mouth_opening(raw), eye_opening(raw)
    steady = np.abs(e / np.median(e) - 1) < STEADY_EYES
    still = [i for i in range(3, len(a) - 3) if np.all(a[i - 3:i + 4] < 0.06) and np.all(steady[i - 3:i + 4])]
    if not still:
        return None
    centre = np.array([out[i - 2:i + 3].mean(0) for i in still])
    return np.sqrt(((out[still] - centre) ** 2).sum(-1).mean(0))


def measure(clips: dict[str, tuple[np.ndarray, float]], smoother_factory) -> dict[str, float]:
    noise, m_lag, m_peak, e_lag, e_depth, b_r, e_r, e_frames = [], [], [], [], [], [], [], []
    for P, fps in clips.values():
        sm = smoother_factory()
        S = np.array([sm(p, i / fps) for i, p in enumerate(P)]) if sm is not None else P
        out, raw = _norm(S), _norm(P)
        b_r.append(np.corrcoef(face_features(P)[:, 0], face_features(S)[:, 0])[0, 1])
        n = still_noise(out, raw)
        if n is not None:
            noise.append(n)
        a, b = mouth_opening(raw), mouth_opening(out)
        m_lag.append(best_lag(a, b))
        top = np.argsort(-a)[:8]
        m_peak.append(b[top].mean() / a[top].mean())
        a, b = eye_opening(raw), eye_opening(out)
        low, base = np.argsort(a)[:3], np.median(a)
        e_r.append(np.corrcoef(a, b)[0, 1])
        if a.min() < BLINK * base:  # clips without a real eye closing would measure dlib's noise dips
            e_lag.append(best_lag(-a, -b))
            e_depth.append((base - b[low].mean()) / max(base - a[low].mean(), 1e-9))
            e_frames.append(b[a < BLINK * base].mean() / np.median(b))
    n = np.mean(noise, 0)
    res = {f"still noise {k}": 1000 * float(n[idx].mean()) for k, idx in PARTS.items()}
    res.update({"mouth lag (frames)": float(np.mean(m_lag)), "mouth peak": float(np.mean(m_peak)),
                "eye lag (frames)": float(np.mean(e_lag)) if e_lag else float("nan"),
                "blink depth": float(np.mean(e_depth)) if e_depth else float("nan"),
                "eye following": float(np.mean(e_r)),
                "blink-frame opening": float(np.mean(e_frames)) if e_frames else float("nan"),
                "brow following": float(np.mean(b_r))})
    return res


def synthetic(smoother_factory) -> dict[str, float]:
    """A brow raise (3 frames) and a fast blink (closed in 2 frames, open over 4) on the template at
    30 fps: the smoothed raise 2 frames after the raw one is full, and the blink's depth, over raw."""
    face = TEMPLATE_256 * 1.5
    res = {}
    for kind, down, hold, up, col in (("brows", 3, 10, 3, 0), ("blink", 2, 0, 4, 1)):
        amount = np.interp(np.arange(40), [10, 10 + down, 10 + down + hold, 10 + down + hold + up], [0, 1, 1, 0])
        raw = np.array([move(face, kind, k) for k in amount], np.float32)
        sm = smoother_factory()
        out = np.array([sm(p, i / 30.0) for i, p in enumerate(raw)]) if sm is not None else raw
        a, b = face_features(raw)[:, col], face_features(out)[:, col]
        resp = (b - b[0]) / (a[10 + down] - a[0])
        res["synthetic brow at 2 frames" if kind == "brows" else "synthetic fast blink depth"] = float(
            resp[10 + down + 2] if kind == "brows" else resp.max())
    return res


def settings() -> dict:
    """The compared settings: {name: a factory of smoothers (None: no smoothing)}."""
    one = OneEuroConfig(mincutoff=1.0, beta=0.5, dcutoff=1.0)
    b20 = OneEuroConfig(mincutoff=1.0, beta=20.0, dcutoff=1.0)
    out = {
        "raw (no smoothing)": lambda: None,
        "one beta 0.5 for all points (before 2026-11-29)": lambda: LandmarkSmoother(expression=one, eyes=one, brows=one, blink_gate=None),
        "mouth+eyes beta 20, brows 0.5 (before issue 17)": lambda: LandmarkSmoother(eyes=b20, brows=one, blink_gate=None),
        "eyes beta 40, brows beta 20": lambda: LandmarkSmoother(brows=b20),
        "default without the blink gate (before 2026-11-30)": lambda: LandmarkSmoother(blink_gate=None),
    }
    for eb in (20.0, 40.0, 60.0):
        for mc, bb in ((0.3, 5.0), (0.3, 10.0), (1.0, 10.0)):
            out[f"eyes beta {eb:g}, brows mincutoff {mc:g} beta {bb:g}"] = (
                lambda eb=eb, mc=mc, bb=bb: LandmarkSmoother(eyes=OneEuroConfig(beta=eb), brows=OneEuroConfig(mincutoff=mc, beta=bb)))
    out["default (LandmarkSmoother())"] = LandmarkSmoother
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="dataset folder with grid/ and cremad/ folders of clips")
    ap.add_argument("--cache", type=Path, help="folder for landmark caches (<set>.npz), written on the first run")
    a = ap.parse_args()
    sets = {}
    for name in ("grid", "cremad"):
        cache = a.cache / f"{name}.npz" if a.cache is not None else None
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
        clips = clip_landmarks(Path(a.data) / name, cache) if (Path(a.data) / name).is_dir() or (cache and cache.exists()) else {}
        if clips:
            sets[name] = clips
    if not sets:
        raise SystemExit(f"no clips in {Path(a.data) / 'grid'} or {Path(a.data) / 'cremad'}")
    factories = settings()
    synth = {name: synthetic(f) for name, f in factories.items()}
    for set_name, clips in sets.items():
        rows = {name: {**measure(clips, f), **synth[name]} for name, f in factories.items()}
        cols = list(next(iter(rows.values())))
        n_frames = sum(len(p) for p, _ in clips.values())
        print(f"\n{set_name}: {len(clips)} clips, {n_frames} frames with a face\n")
        print("| setting | " + " | ".join(cols) + " |")
        print("|:--|" + "--:|" * len(cols))
        for name, r in rows.items():
            print(f"| {name} | " + " | ".join(f"{r[c]:.1f}" if c.startswith("still noise") else f"{r[c]:.2f}" for c in cols) + " |")


if __name__ == "__main__":
    main()
