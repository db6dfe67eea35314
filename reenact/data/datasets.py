"""Face datasets for both training stages and for evaluation (no torch here).

A dataset is a list of :class:`FaceRecord` (one face image: a photo or a video frame, with
its person and expression), turned into a :class:`FaceBank` (aligned 256² crops and
canonical-crop landmarks, via a landmark cache), and then into pairs. Each pair gives what
the two stages need, all in the canonical crop:

- P_t, L_t: the target image and its landmarks (a neutral face),
- L_s, J_s: the source's landmarks and the source's own neutral landmarks,
- J_o, I_o: the real target landmarks and image with the source's expression.

Layouts known (``detect_layouts``): the London set (``neutral/NNN.jpg`` + ``smiling/NNN.jpg``
or the original ``neutral_front/NNN_03.jpg`` + ``smiling_front/NNN_08.jpg``), a folder of
videos (GRID or a user's own; ``identities.csv`` optional), RaFD and CK+
(``reenact.data.licensed``). A folder holding several of these uses them all.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from reenact.data import licensed as lic
from reenact.data.records import FaceRecord
from reenact.errors import InputError
from reenact.face.align import align_points
from reenact.face.topology import interocular, mouth_opening
from reenact.weights_io import atomic_write_bytes

log = logging.getLogger(__name__)

VIDEO_EXTS = (".mpg", ".mpeg", ".mp4", ".avi", ".mov", ".mkv", ".webm")
#: Sub-folders of a data folder that are evaluation material only (`reenact eval`'s expressive
#: sets), never read as training or pair data, whatever files they hold: CREMA-D's clips.
EVAL_ONLY_FOLDERS = ("cremad",)
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")
NEUTRAL = "neutral"


# --------------------------------------------------------------------------- layouts


def _london_records(root: Path) -> list[FaceRecord]:
    out = []
    layouts = [("neutral", "smiling", r"^(\d+)\.jpe?g$"), ("neutral_front", "smiling_front", r"^(\d+)_\d+\.jpe?g$")]
    for neu, smi, pat in layouts:
        if (root / neu).is_dir() and (root / smi).is_dir():
            for sub, expr in ((neu, NEUTRAL), (smi, "smiling")):
                for f in sorted((root / sub).iterdir()):
                    m = re.match(pat, f.name, re.I)
                    if m:
                        out.append(FaceRecord("london", f"london:{m.group(1)}", str(f), expr))
    return out


def _video_records(root: Path) -> list[FaceRecord]:
    """One record per frame of every video; identities from identities.csv (clip,speaker) if present."""
    ids: dict[str, str] = {}
    idfile = root / "identities.csv"
    if idfile.is_file():
        with open(idfile, newline="") as fh:
            for row in csv.DictReader(fh):
                clip = row.get("clip") or row.get("video") or ""
                person = row.get("speaker") or row.get("identity") or row.get("person") or ""
                if clip and person:
                    ids[clip] = person
    out = []
    for f in sorted(root.iterdir()):
        if f.suffix.lower() not in VIDEO_EXTS:
            continue
        cap = cv2.VideoCapture(str(f))
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
        cap.release()
        person = ids.get(f.stem, f.stem)
        for i in range(n):
            out.append(FaceRecord("video", f"video:{person}", str(f), "frame", i, f.stem))
    return out


def detect_layouts(root: str | os.PathLike) -> dict[str, Path]:
    """Find the dataset layouts under a folder: {name: folder}. Raises with the known layouts."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"dataset folder not found: {root}")
    found: dict[str, Path] = {}
    candidates = [p for p in [root] + sorted(p for p in root.iterdir() if p.is_dir())
                  if p.name.lower() not in EVAL_ONLY_FOLDERS]  # evaluation material: never training data
    for folder in candidates:
        if ((folder / "neutral").is_dir() and (folder / "smiling").is_dir()) or (
            (folder / "neutral_front").is_dir() and (folder / "smiling_front").is_dir()
        ):
            found.setdefault("london", folder)
        elif any(f.suffix.lower() in VIDEO_EXTS for f in folder.iterdir() if f.is_file()):
            found.setdefault("video", folder)
        elif lic.is_rafd(folder):
            found.setdefault("rafd", folder)
        elif lic.is_ckplus(folder):
            found.setdefault("ckplus", folder)
    if not found:
        raise InputError(
            f"no known dataset layout in {root}",
            hint=(
                "known layouts: London set (neutral/NNN.jpg + smiling/NNN.jpg, or neutral_front/NNN_03.jpg + "
                "smiling_front/NNN_08.jpg); a folder of videos (.mp4/.mpg/.avi/…, optional identities.csv with "
                "clip,speaker); RaFD (Rafd090_01_Caucasian_female_angry_frontal.jpg); CK+ (cohn-kanade-images/S005/001/…)"
            ),
        )
    return found


def load_records(root: str | os.PathLike) -> list[FaceRecord]:
    """All face records of every layout found under ``root``."""
    records: list[FaceRecord] = []
    for name, folder in detect_layouts(root).items():
        if name == "london":
            records += _london_records(folder)
        elif name == "video":
            records += _video_records(folder)
        elif name == "rafd":
            records += lic.rafd_records(folder)
        elif name == "ckplus":
            records += lic.ckplus_records(folder)
    return records


# --------------------------------------------------------------------------- reading


def _read_frames(path: str, frames: list[int]) -> dict[int, np.ndarray]:
    """Read the wanted frames of a video in one sequential pass."""
    want = set(frames)
    out = {}
    cap = cv2.VideoCapture(path)
    i = 0
    while want:
        ok, img = cap.read()
        if not ok:
            break
        if i in want:
            out[i] = img
            want.discard(i)
        i += 1
    cap.release()
    return out


def iter_images(records: list[FaceRecord]) -> Iterator[tuple[FaceRecord, np.ndarray | None]]:
    """Yield (record, BGR image or None when unreadable), reading each video once."""
    videos: dict[str, list[FaceRecord]] = {}
    for r in records:
        if r.frame >= 0:
            videos.setdefault(r.path, []).append(r)
            continue
        img = cv2.imread(r.path, cv2.IMREAD_COLOR)
        yield r, img
    for path, recs in videos.items():
        frames = _read_frames(path, [r.frame for r in recs])
        for r in recs:
            yield r, frames.get(r.frame)


# --------------------------------------------------------------------------- landmark cache


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "reenact" / "landmarks"


def _mtime(path: str) -> float:
    try:
        return os.path.getmtime(path)
    except OSError:
        return -1.0


class LandmarkCache:
    """Landmarks per face picture, extracted once; keyed by file, modification time and detector.

    Stored as one JSON file per dataset root in the cache folder. Pictures with no face, or
    that cannot be read, are kept in the cache as such and listed in ``report``.
    """

    def __init__(self, root: str | os.PathLike, detector: str = "dlib", cache_dir: str | os.PathLike | None = None) -> None:
        self.root = Path(root).resolve()
        self.detector_name = detector
        self.dir = Path(cache_dir) if cache_dir else default_cache_dir()
        tag = hashlib.sha1(str(self.root).encode()).hexdigest()[:12]
        self.path = self.dir / f"{self.root.name}-{tag}-{detector}.json"
        self.entries: dict[str, dict] = {}
        if self.path.is_file():
            try:
                self.entries = json.loads(self.path.read_text())
            except (OSError, json.JSONDecodeError):
                log.warning("landmark cache %s is unreadable; rebuilding it", self.path)

    def save(self) -> None:
        atomic_write_bytes(self.path, json.dumps(self.entries).encode())  # unique temp name, fsync, rename

    def lookup(self, rec: FaceRecord) -> dict | None:
        e = self.entries.get(rec.key)
        if e is not None and e.get("mtime") == _mtime(rec.path):
            return e
        return None

    def fill(self, records: list[FaceRecord], progress: bool = True) -> None:
        """Detect landmarks for every record not yet cached (with a progress bar)."""
        todo = [r for r in records if self.lookup(r) is None]
        if not todo:
            return
        from reenact.face.landmarks import create_detector

        det = create_detector(self.detector_name)
        bar = tqdm(total=len(todo), desc="landmarks", unit="img", disable=not progress)
        for i, (rec, img) in enumerate(iter_images(todo)):
            entry: dict = {"mtime": _mtime(rec.path), "status": "ok"}
            if img is None:
                entry["status"] = "unreadable"
            else:
                res = det.detect(img)
                if not res.found:
                    entry["status"] = "no_face"
                else:
                    entry["points"] = np.round(res.points, 2).tolist()
                    entry["n_faces"] = res.n_faces
            self.entries[rec.key] = entry
            bar.update(1)
            if i % 200 == 199:
                self.save()
        bar.close()
        self.save()

    def report(self, records: list[FaceRecord]) -> list[tuple[str, str]]:
        """(picture, problem) for each record that has no usable landmarks."""
        out = []
        for r in records:
            e = self.lookup(r)
            if e is None:
                out.append((r.key, "not extracted"))
            elif e["status"] != "ok":
                out.append((r.key, e["status"]))
        return out


# --------------------------------------------------------------------------- split


def split_identities(identities: list[str], seed: int = 0, fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)) -> dict[str, str]:
    """Assign each person to 'train'/'val'/'test' (70/10/20), seeded, per dataset prefix.

    People are split within each dataset (the part of the id before ':'), so every dataset
    contributes to every part where it has at least 3 people. No person is in two parts.
    """
    rng = np.random.default_rng(seed)
    by_ds: dict[str, list[str]] = {}
    for ident in sorted(set(identities)):
        by_ds.setdefault(ident.split(":")[0], []).append(ident)
    out: dict[str, str] = {}
    for _ds, people in sorted(by_ds.items()):
        people = list(people)
        rng.shuffle(people)
        n = len(people)
        n_test = int(round(fractions[2] * n))
        n_val = int(round(fractions[1] * n))
        if n >= 3:
            n_test, n_val = max(1, n_test), max(1, n_val)
        for i, p in enumerate(people):
            out[p] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
    return out


def load_or_make_split(cache: LandmarkCache, identities: list[str], seed: int = 0) -> dict[str, str]:
    """The split saved beside the cache; new people are assigned and the file updated."""
    path = cache.path.with_name(cache.path.stem + f"-split-seed{seed}.json")
    split: dict[str, str] = {}
    if path.is_file():
        try:
            split = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            split = {}
    missing = sorted(set(identities) - set(split))
    if missing or not path.is_file():
        fresh = split_identities(identities, seed)
        for p in missing:
            split[p] = fresh[p]
        atomic_write_bytes(path, json.dumps(split, indent=1, sort_keys=True).encode())
    return split


# --------------------------------------------------------------------------- bank and pairs


@dataclass
class FaceBank:
    """Aligned crops and canonical-crop landmarks of usable face pictures."""

    records: list[FaceRecord]
    crops: np.ndarray  # [N,256,256,3] uint8 BGR
    points: np.ndarray  # [N,68,2] float32, canonical crop pixels
    weights: np.ndarray  # [N] float32: down-weights faces much smaller than the crop
    split: dict[str, str] = field(default_factory=dict)  # identity -> train/val/test
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (picture, problem)

    def __len__(self) -> int:
        return len(self.records)

    def indices(self, part: str | None = None) -> list[int]:
        return [i for i, r in enumerate(self.records) if part is None or self.split.get(r.identity) == part]


def build_bank(
    root: str | os.PathLike,
    detector: str = "dlib",
    cache_dir: str | os.PathLike | None = None,
    seed: int = 0,
    progress: bool = True,
    records: list[FaceRecord] | None = None,
) -> FaceBank:
    """Records → landmarks (cached) → aligned crops, and the identity split."""
    recs = records if records is not None else load_records(root)
    if not recs:
        raise InputError(f"no face pictures found in {root}")
    cache = LandmarkCache(root, detector, cache_dir)
    cache.fill(recs, progress=progress)
    skipped = cache.report(recs)
    if skipped:
        log.warning("%d pictures have no usable face and are left out (see FaceBank.skipped)", len(skipped))
    good = [r for r in recs if (e := cache.lookup(r)) is not None and e["status"] == "ok"]
    crops, pts, wts, kept = [], [], [], []
    bad = set()
    for rec, img in iter_images(good):
        if img is None:
            bad.add(rec.key)
            continue
        p = np.asarray(cache.lookup(rec)["points"], np.float32)
        al = align_points(p)
        crops.append(al.crop(img))
        pts.append(al.to_crop(p))
        # faces much smaller than the crop are upscaled and blurry: weight them down
        wts.append(float(np.clip(interocular(p) / 64.0, 0.25, 1.0)))
        kept.append(rec)
    skipped += [(k, "unreadable") for k in bad]
    split = load_or_make_split(cache, sorted({r.identity for r in kept}), seed)
    return FaceBank(kept, np.stack(crops), np.stack(pts).astype(np.float32), np.asarray(wts, np.float32), split, skipped)


@dataclass(frozen=True)
class Pair:
    """Indices into a FaceBank: target (P_t, L_t), source (L_s), source neutral (J_s), truth (J_o, I_o)."""

    target: int
    source: int
    source_neutral: int
    truth: int
    kind: str  # 'photo' | 'video'


def make_pairs(bank: FaceBank, part: str | None, cross_identity: bool = True, neutral_share: float = 0.15,
               seed: int = 0, max_video_targets: int = 4) -> list[Pair]:
    """All training/evaluation pairs of one split part.

    Photo pairs (London, RaFD, CK+): source A with an expression (J_s = A's neutral), target B
    neutral, truth B with the same expression; B ≠ A when ``cross_identity``, plus A = B.
    A share of neutral→neutral pairs teaches "no expression, no change".
    Video pairs: within one clip, target frame i (one of the clip's most neutral frames,
    since a reenactment target is a neutral photo), source frame j, truth frame j;
    J_s is the clip's most neutral frame.
    """
    rng = np.random.default_rng(seed)
    idx = bank.indices(part)
    pairs: list[Pair] = []
    # photos: person -> expression -> bank index
    people: dict[str, dict[str, int]] = {}
    clips: dict[str, list[int]] = {}
    for i in idx:
        r = bank.records[i]
        if r.frame >= 0:
            clips.setdefault(r.group or r.path, []).append(i)
        else:
            people.setdefault(r.identity, {}).setdefault(r.expression, i)
    with_neutral = {p: e for p, e in people.items() if NEUTRAL in e}
    names = sorted(with_neutral)
    for a in names:
        for expr, s in sorted(with_neutral[a].items()):
            js = with_neutral[a][NEUTRAL]
            targets = names if cross_identity else [a]
            for b in targets:
                if expr not in with_neutral[b]:
                    continue
                if expr == NEUTRAL and rng.random() > neutral_share:
                    continue
                pairs.append(Pair(with_neutral[b][NEUTRAL], s, js, with_neutral[b][expr], "photo"))
    for _clip, frames in sorted(clips.items()):
        frames = sorted(frames, key=lambda k: bank.records[k].frame)
        opening = np.array([mouth_opening(bank.points[k]) for k in frames])
        order = np.argsort(opening)
        neutral = frames[int(order[0])]
        calm = [frames[int(k)] for k in order[: max(1, min(max_video_targets, len(frames) // 4))]]
        for t in calm:
            for j in frames:
                pairs.append(Pair(t, j, neutral, j, "video"))
    return pairs
