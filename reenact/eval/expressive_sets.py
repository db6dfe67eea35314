"""The expressive sets of `reenact eval` (issue 17): the live per-frame path on expressive drivers.

Two sets, each a list of cases (one driver driving one target photo):

- ``cremad``: the six CREMA-D clips (one actor, six emotions; ``DATA/cremad/*.flv``) played one
  after another as one session. Evaluation and development material only: the training loaders
  never read that folder (``reenact.data.datasets.EVAL_ONLY_FOLDERS``).
- ``scripted``: a neutral London photo of one of the split's people warped along :data:`SCRIPT`
  (talking, brows raised and held 10 s, a frown, a squint, a held smile, a slow and two fast
  blinks; :func:`reenact.eval.expressive.scripted_driver`).

Targets are neutral London photos of the split's people (seeded choice, ``n`` of them; the
scripted drivers are other people of the same split). Each case runs through
:func:`reenact.session.open_pipeline`, the very per-frame processor `reenact live` runs
(smoothing, automatic calibration, Φ, Ω, paste-back), fed the driver's frames at the driver's
frame rate as a video file would be. Driver and output frames are re-detected (dlib) and scored
with :mod:`reenact.eval.expressive`; no ground truth is needed.

Methods: ``warp`` (the same live path with Φ and Ω replaced by the plain landmark warp,
:class:`WarpBackend`, so the difference is what the networks add), ``paper`` when its weights
are given, and the default weights.
"""

from __future__ import annotations

import logging
import math
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from reenact.eval import expressive as ex
from reenact.eval.results import ExpressiveScores
from reenact.inference.backend import CheckedBackend, omega_output_shape

log = logging.getLogger(__name__)

#: The scripted driver: 6 s of talking (the stand-in neutral's settling), brows raised and held
#: 10 s, talking, a frown, a squint and a smile (held 2, 2 and 3 s), a slow and two fast blinks.
SCRIPT: tuple[ex.Segment, ...] = tuple(
    ex.talking(0.0, 6.0)
    + [ex.Segment("brows", 6.5, 0.2, 10.0, 0.3)]
    + ex.talking(17.3, 1.5)
    + [ex.Segment("frown", 19.0, 0.3, 2.0, 0.3), ex.Segment("squint", 22.0, 0.3, 2.0, 0.3),
       ex.Segment("smile", 25.0, 0.4, 3.0, 0.4)]
    + [ex.Segment("blink", 29.0, 0.25, 0.1, 0.25), ex.Segment("blink", 30.0, 0.07, 0.0, 0.13),
       ex.Segment("blink", 30.8, 0.07, 0.0, 0.13)]
)
SCRIPT_FPS = 30.0
#: Output frames whose face descriptor is taken for the identity distance (every this many).
IDENTITY_EVERY = 10
#: Rows of the grid picture (frames of the first case).
GRID_ROWS = 6
#: The figure keys of one case, as in :class:`ExpressiveScores`.
KEYS: tuple[str, ...] = ("brow_following", "eye_following", "mouth_open_following", "mouth_width_following",
                         "blink_depth", "brow_hold_retention", "teeth_ratio", "identity_distance", "jitter_ratio",
                         "face_found")


# --------------------------------------------------------------------------- the warp method


class WarpBackend(CheckedBackend):
    """The plain landmark warp as a backend: J_gen = L_t + (L_s − J_s), Ω paints nothing (zero
    residual and mask), so the live path's output is the target warped to the driver's expression."""

    name = "warp"

    def __init__(self, cfg) -> None:
        if cfg.variant != "guided":
            from reenact.config import model_config

            cfg = model_config("guided", "lite")  # the warp runs on the guided path's paste-back
        super().__init__(cfg)

    def _phi(self, L_s: np.ndarray, J_s: np.ndarray, L_t: np.ndarray) -> np.ndarray:
        return (L_t + (L_s - J_s)).astype(np.float32)  # [1,68,2]

    def _omega(self, x: np.ndarray) -> np.ndarray:
        return np.zeros(omega_output_shape(self.cfg), np.float32)  # [1,4,256,256]: no residual

    def describe(self) -> str:
        return "plain landmark warp (no Φ, no Ω) on the live path"


# --------------------------------------------------------------------------- drivers and cases


@dataclass(frozen=True)
class Driver:
    """A driver video: its frames (made or read on each pass, never all held) and frame rate."""

    name: str  # 'cremad' or 'scripted:<person>'
    n: int  # frames
    fps: float
    read: Callable[[], Iterator[np.ndarray]]  # yields the n BGR uint8 frames in order
    hold: tuple[slice, slice, slice] | None = None  # scripted: frames before, at the start and at the end of the brow hold
    marks: tuple[tuple[str, float], ...] = ()  # scripted: (label, seconds) of frames worth a look

    def frames(self) -> Iterator[np.ndarray]:
        return self.read()


@dataclass(frozen=True)
class Case:
    """One driver driving one target photo."""

    driver: Driver
    target: Path  # a neutral London photo
    target_key: str  # its person


def _read_videos(paths: list[Path], limit: int | None) -> Iterator[np.ndarray]:
    k = 0
    for path in paths:
        cap = cv2.VideoCapture(str(path))
        try:
            ok, f = cap.read()
            while ok and (limit is None or k < limit):
                yield f
                k += 1
                ok, f = cap.read()
        finally:
            cap.release()


def cremad_driver(data: Path, max_frames: int | None = None) -> Driver | None:
    """The six CREMA-D clips as one driver (None when ``data/cremad`` holds none)."""
    folder = Path(data) / "cremad"
    clips = sorted(folder.glob("*.flv")) if folder.is_dir() else []
    if not clips:
        return None
    fps = []
    for c in clips:
        cap = cv2.VideoCapture(str(c))
        fps.append(cap.get(cv2.CAP_PROP_FPS) or 30.0)
        cap.release()
    n = sum(1 for _ in _read_videos(clips, max_frames))  # counted by reading: .flv frame counts are estimates
    return Driver("cremad", n, float(np.median(fps)), lambda: _read_videos(clips, n))


def scripted_driver(photo_path: Path, detector, person: str, max_frames: int | None = None,
                    script: tuple[ex.Segment, ...] = SCRIPT, fps: float = SCRIPT_FPS) -> Driver | None:
    """A neutral photo warped along ``script`` (None when no face is found in it)."""
    from reenact.face.align import align_points
    from reenact.face.warp import image_mesh, warp_image

    photo = cv2.imread(str(photo_path), cv2.IMREAD_COLOR)
    lm = detector.detect(photo) if photo is not None else None
    if lm is None or not lm.found:
        log.warning("no face found in the scripted driver's photo %s; left out", photo_path)
        return None
    pts, _ = ex.scripted_driver(lm.points, script, fps=fps)
    if max_frames:
        pts = pts[:max_frames]
    M = align_points(lm.points).M

    def read() -> Iterator[np.ndarray]:
        for p in pts:
            yield warp_image(photo, image_mesh(lm.points, p, M))

    brows = next((s for s in script if s.kind == "brows" and s.hold_s >= 5.0), None)
    hold = None
    if brows is not None:
        top, end = brows.start_s + brows.rise_s, brows.start_s + brows.rise_s + brows.hold_s
        windows = ((brows.start_s - 0.5, brows.start_s), (top + 0.1, top + 0.6), (end - 0.5, end))
        if windows[-1][1] * fps <= len(pts):
            hold = tuple(slice(int(round(a * fps)), int(round(b * fps))) for a, b in windows)
    marks = [("brows up", brows.start_s + brows.rise_s + 0.3), ("brows 10 s on", brows.end_s - brows.fall_s - 0.2)] \
        if brows is not None else []
    for s in script:
        if s.kind in ("frown", "squint", "smile") or (s.kind == "blink" and s.hold_s > 0):
            marks.append((s.kind if s.kind != "blink" else "slow blink", s.start_s + s.rise_s + s.hold_s / 2))
    marks = [(k, t) for k, t in marks if t * fps < len(pts)]
    return Driver(f"scripted:{person}", len(pts), fps, read, hold, tuple(marks))


def london_people(bank, split: str, seed: int) -> list[tuple[str, Path]]:
    """(person, neutral photo) of the split's London people, in a seeded order."""
    people = sorted({(r.identity, r.path) for r in bank.records
                     if r.dataset == "london" and r.expression == "neutral" and bank.split.get(r.identity) == split})
    order = np.random.default_rng(seed).permutation(len(people))
    return [(people[i][0], Path(people[i][1])) for i in order]


def expressive_cases(bank, data: Path, split: str, sets: tuple[str, ...], n: int, seed: int, detector,
                     max_frames: int | None = None) -> tuple[dict[str, list[Case]], dict[str, str]]:
    """The cases of each expressive set asked for, and a one-line reason for each set left out.

    Targets: the first ``n`` of the split's London people (seeded); scripted drivers: the next ``n``.
    """
    cases: dict[str, list[Case]] = {}
    skipped: dict[str, str] = {}
    people = london_people(bank, split, seed)
    targets = people[:n]
    no_targets = f"no London neutral photos of the {split} split's people in {data} (the targets)"
    if "cremad" in sets:
        drv = cremad_driver(data, max_frames)
        if drv is None:
            skipped["cremad"] = f"no CREMA-D clips in {Path(data) / 'cremad'} (*.flv)"
        elif not targets:
            skipped["cremad"] = no_targets
        else:
            cases["cremad"] = [Case(drv, path, who) for who, path in targets]
    if "scripted" in sets and not targets:
        skipped["scripted"] = no_targets
    elif "scripted" in sets:
        drivers = people[n:2 * n]
        made = [(d, scripted_driver(path, detector, who, max_frames)) for d, (who, path) in zip(targets, drivers, strict=False)]
        cases["scripted"] = [Case(drv, path, who) for (who, path), drv in made if drv is not None]
        if not cases["scripted"]:
            del cases["scripted"]
            skipped["scripted"] = f"fewer than two usable London people in the {split} split of {data}"
    return cases, skipped


# --------------------------------------------------------------------------- running and scoring


def _face_box(points: np.ndarray, shape: tuple[int, ...], scale: float = 1.7) -> tuple[int, int, int, int]:
    """A square (x0, y0, x1, y1) around a face's landmarks, inside the image."""
    c = (points.min(0) + points.max(0)) / 2
    half = scale * float(np.max(points.max(0) - points.min(0))) / 2
    x0, y0 = (int(max(0, c[0] - half)), int(max(0, c[1] - half)))
    return x0, y0, int(min(shape[1], c[0] + half)), int(min(shape[0], c[1] + half))


def _cut(img: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    x0, y0, x1, y1 = box
    return img[y0:y1, x0:x1].copy()


@dataclass
class DriverTrack:
    """A driver re-detected once, for every method and target it drives."""

    points: np.ndarray  # [T,68,2] image px, nan rows where no face
    features: np.ndarray  # [T,4] (expressive.FEATURES)
    teeth: np.ndarray  # [T] teeth area (nan without a face)
    rows: list[int]  # frames shown in the grid
    labels: list[str]
    cells: list[np.ndarray] = field(default_factory=list)  # those frames, cut around the face


def track_driver(driver: Driver, detector) -> DriverTrack:
    """Re-detect every frame of a driver; pick the grid's frames (the script's marks, or the
    strongest brow raise, the deepest blink, the widest mouth and the most teeth)."""
    pts, teeth = [], []
    for f in driver.frames():
        lm = detector.detect(f)
        p = lm.points.astype(np.float64) if lm.found else np.full((68, 2), np.nan)
        pts.append(p)
        teeth.append(ex.teeth_area(f, p) if lm.found else np.nan)
    points = np.array(pts).reshape(-1, 68, 2)
    feats = ex.face_features(points)
    t = np.asarray(teeth, np.float64)
    if driver.marks:
        rows = [min(driver.n - 1, int(round(s * driver.fps))) for _, s in driver.marks][:GRID_ROWS]
        labels = [k for k, _ in driver.marks][:GRID_ROWS]
    else:
        pick = []
        for label, series, best in (("brows up", feats[:, 0], np.nanargmax), ("eyes closing", feats[:, 1], np.nanargmin),
                                    ("mouth open", feats[:, 2], np.nanargmax), ("teeth", t, np.nanargmax)):
            if np.any(np.isfinite(series)) and (label != "teeth" or np.nanmax(series) > ex.TEETH_SHOWN):
                pick.append((label, int(best(series))))
        pick.append(("middle", driver.n // 2))
        rows, labels = [i for _, i in pick][:GRID_ROWS], [k for k, _ in pick][:GRID_ROWS]
    ok = np.all(np.isfinite(points), axis=(1, 2))
    face = np.nanmedian(points[ok], 0) if ok.any() else None
    track = DriverTrack(points, feats, t, rows, labels)
    want, kept = set(rows), {}
    for i, f in enumerate(driver.frames()):
        if i in want:
            kept[i] = _cut(f, _face_box(face, f.shape)) if face is not None else f
    track.cells = [kept[i] for i in rows if i in kept]
    return track


def run_case(case: Case, backend, track: DriverTrack, detector, threads: int,
             mouth_interior: str = "generated") -> tuple[dict, list[np.ndarray]]:
    """One case through the live per-frame processor; its figures (``KEYS``) and the grid's output cells.

    ``mouth_interior``: `reenact live --mouth-interior` (guided weights; the warp baseline keeps "generated")."""
    from reenact.face.dlib_detector import face_descriptor
    from reenact.live.capture import Frame
    from reenact.session import SessionConfig, open_pipeline

    drv = case.driver
    target = cv2.imread(str(case.target), cv2.IMREAD_COLOR)
    t_lm = detector.detect(target)
    t_desc = face_descriptor(target, t_lm).astype(np.float64) if t_lm.found else None
    session_log = logging.getLogger("reenact.session")
    level = session_log.level
    with tempfile.TemporaryDirectory() as cal:  # an empty profile folder: automatic calibration, as a first run
        config = SessionConfig(targets=(case.target,), source=drv.name, outputs=("null",), calibration_dir=cal,
                               auto_calibrate=True, threads=threads, mouth_interior=mouth_interior)
        proc = open_pipeline(config, say=log.debug, backend=backend).processor
        box = _face_box(proc.reenactor.target.points, proc.reenactor.target.image.shape)
        pts, teeth, dist, cells = [], [], [], {}
        calibrated = math.nan  # when the automatic calibration took the neutral face (s); nan: never
        want = set(track.rows)
        session_log.setLevel(logging.ERROR)  # the live hints ("calibrated from …") are for a person at a camera
        try:
            for i, img in enumerate(drv.frames()):
                t = i / drv.fps
                out = proc(Frame(image=img, index=i, t_capture=t, t_media=t, new_segment=i == 0))
                if math.isnan(calibrated) and proc.running is None:
                    calibrated = t
                lm = detector.detect(out)
                p = lm.points.astype(np.float64) if lm.found else np.full((68, 2), np.nan)
                pts.append(p)
                teeth.append(ex.teeth_area(out, p) if lm.found else np.nan)
                if lm.found and t_desc is not None and i % IDENTITY_EVERY == 0:
                    dist.append(float(np.linalg.norm(face_descriptor(out, lm).astype(np.float64) - t_desc)))
                if i in want:
                    cells[i] = _cut(out, box)
        finally:
            session_log.setLevel(level)
    points = np.array(pts).reshape(-1, 68, 2)
    row = score(track, points, np.asarray(teeth, np.float64), dist, drv.hold)
    row["calibrated_s"] = calibrated
    return row, [cells[i] for i in track.rows if i in cells]


def score(track: DriverTrack, out_points: np.ndarray, out_teeth: np.ndarray, identity: list[float],
          hold: tuple[slice, slice, slice] | None) -> dict[str, float]:
    """One case's figures from the driver's and the output's re-detected landmarks (``KEYS``)."""
    o = ex.face_features(out_points)
    d = track.features
    row = {f"{k}_following": v for k, v in ex.following(d, o).items()}
    row["blink_depth"] = ex.blink_depth(d[:, 1], o[:, 1])
    row["brow_hold_retention"] = ex.retention(o[:, 0], *hold) if hold is not None else math.nan
    row["teeth_ratio"] = ex.teeth_ratio(track.teeth, out_teeth)
    row["identity_distance"] = float(np.mean(identity)) if identity else math.nan
    drv_jitter = ex.landmark_jitter(track.points)
    row["jitter_ratio"] = ex.landmark_jitter(out_points) / drv_jitter if drv_jitter > 0 else math.nan
    row["face_found"] = float(np.mean(np.all(np.isfinite(out_points), axis=(1, 2))))
    return row


def driver_reference(track: DriverTrack, hold) -> dict[str, float]:
    """The driver's own figures where they mean something (blink depth, hold retention, faces found)."""
    d = track.features
    row = dict.fromkeys(KEYS, math.nan)
    row["blink_depth"] = ex.blink_depth(d[:, 1], d[:, 1])
    row["brow_hold_retention"] = ex.retention(d[:, 0], *hold) if hold is not None else math.nan
    row["face_found"] = float(np.mean(np.all(np.isfinite(track.points), axis=(1, 2))))
    row["jitter"] = ex.landmark_jitter(track.points)  # x1000 eye distances: the ratio's denominator
    row["teeth_frames"] = int(np.sum(track.teeth > ex.TEETH_SHOWN))
    return row


def mean_scores(rows: list[dict[str, float]], **extra) -> ExpressiveScores:
    """The set's figures: each key's mean over the cases where it is defined (nan when none)."""
    vals = {}
    for k in KEYS:
        v = [r[k] for r in rows if r[k] == r[k]]
        vals[k] = float(np.mean(v)) if v else math.nan
    return ExpressiveScores(**vals, extra=extra)


def run_sets(cases: dict[str, list[Case]], backends: dict, detector, threads: int = 2,
             on_case: Callable[[str], None] | None = None,
             interiors: dict[str, str] | None = None) -> tuple[dict, list[dict], dict]:
    """Every method (``backends``: name -> Backend, table order) on every case of every set.

    ``interiors``: method -> `reenact live --mouth-interior` (methods not named: "generated").

    Returns ({set: SetResult}, one row per (set, method, case) for pairs.csv, and {set: the first
    case's grid: (row labels, driver cells, {method: output cells})}).
    """
    from reenact.eval.results import SetResult

    results, all_rows, grids = {}, [], {}
    tracks: dict[str, DriverTrack] = {}
    for set_name, set_cases in cases.items():
        per_method: dict[str, list[dict]] = {m: [] for m in backends}
        refs = {}  # one reference per driver, however many targets it drives
        for k, case in enumerate(set_cases):
            drv = case.driver
            if drv.name not in tracks:
                tracks[drv.name] = track_driver(drv, detector)
            track = tracks[drv.name]
            refs.setdefault(drv.name, driver_reference(track, drv.hold))
            for name, backend in backends.items():
                row, cells = run_case(case, backend, track, detector, threads, (interiors or {}).get(name, "generated"))
                if on_case is not None:
                    on_case(f"{set_name} {name} {case.target_key}")
                per_method[name].append(row)
                all_rows.append({"set": set_name, "method": name, "pair": k, "driver": drv.name,
                                 "target": str(case.target), "frames": drv.n, **row})
                if k == 0:
                    grids.setdefault(set_name, (track.labels, track.cells, {}))[2][name] = cells
        refs_l = list(refs.values())
        jit = [j for r in refs_l if (j := r.pop("jitter")) == j]
        driver_extra = {"jitter": float(np.mean(jit)) if jit else math.nan,
                        "teeth_frames": int(sum(r.pop("teeth_frames") for r in refs_l))}
        results[set_name] = SetResult(
            set_name, len(set_cases), {m: mean_scores(rows) for m, rows in per_method.items()},
            driver=mean_scores(refs_l, **driver_extra),
            extra={"drivers": sorted({c.driver.name for c in set_cases}), "targets": [c.target_key for c in set_cases],
                   "frames": [c.driver.n for c in set_cases]})
    return results, all_rows, grids
