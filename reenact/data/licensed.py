"""Loaders for the paper's datasets, RaFD and CK+, which need a signed licence.

Neither can be redistributed, so these loaders are tested on small fake trees that mimic
their file naming. Both yield :class:`~reenact.data.records.FaceRecord` photos.
"""

from __future__ import annotations

import re
from pathlib import Path

from reenact.data.records import FaceRecord

# Rafd090_01_Caucasian_female_angry_frontal.jpg: camera angle, person id, ethnicity, gender,
# expression, gaze. The paper uses the frontal camera (angle 090).
RAFD_RE = re.compile(r"^Rafd(\d{3})_(\d+)_([A-Za-z]+)_([A-Za-z]+)_([A-Za-z]+)_([A-Za-z]+)\.(jpg|jpeg|png)$", re.I)

#: CK+ emotion codes (Emotion/*_emotion.txt).
CK_EMOTIONS = {0: "neutral", 1: "anger", 2: "contempt", 3: "disgust", 4: "fear", 5: "happy", 6: "sadness", 7: "surprise"}


def is_rafd(folder: Path) -> bool:
    return any(RAFD_RE.match(f.name) for f in folder.iterdir() if f.is_file())


def rafd_records(folder: Path, angle: str = "090", gaze: str = "frontal") -> list[FaceRecord]:
    """Frontal-camera RaFD photos; 'neutral' is the neutral expression."""
    out = []
    for f in sorted(folder.iterdir()):
        m = RAFD_RE.match(f.name)
        if not m or m.group(1) != angle or m.group(6).lower() != gaze:
            continue
        out.append(FaceRecord("rafd", f"rafd:{int(m.group(2))}", str(f), m.group(5).lower()))
    return out


def is_ckplus(folder: Path) -> bool:
    return (folder / "cohn-kanade-images").is_dir()


def ckplus_records(folder: Path) -> list[FaceRecord]:
    """CK+ sequences: the first frame is the subject's neutral, the last (peak) frame carries
    the sequence's emotion from ``Emotion/`` (sequences without a label are 'unlabelled')."""
    out = []
    images = folder / "cohn-kanade-images"
    emotions = folder / "Emotion"
    seen_neutral: set[str] = set()
    for subj in sorted(p for p in images.iterdir() if p.is_dir()):
        for seq in sorted(p for p in subj.iterdir() if p.is_dir()):
            frames = sorted(f for f in seq.iterdir() if f.suffix.lower() in (".png", ".jpg"))
            if len(frames) < 2:
                continue
            label = "unlabelled"
            edir = emotions / subj.name / seq.name
            if edir.is_dir():
                for ef in edir.glob("*_emotion.txt"):
                    try:
                        label = CK_EMOTIONS.get(int(float(ef.read_text().split()[0])), "unlabelled")
                    except (ValueError, IndexError, OSError):
                        pass
            ident = f"ckplus:{subj.name}"
            if ident not in seen_neutral:
                out.append(FaceRecord("ckplus", ident, str(frames[0]), "neutral"))
                seen_neutral.add(ident)
            if label not in ("unlabelled", "neutral"):
                out.append(FaceRecord("ckplus", ident, str(frames[-1]), label))
    return out
