"""Choose the MediaPipe-mesh → dlib-68 index map (and residuals) from photos with both detectors.

Run in the mediapipe virtualenv (numpy<2):
    /tmp/venv_mp/bin/python scripts/fit_mediapipe_map.py ../shared/data/london
Prints the table for ``reenact/face/mediapipe_detector.py`` and the held-out errors.
People with odd numbers choose the map; even numbers measure it (no person in both).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import cv2
import numpy as np


def collect(folder: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """dlib [N,68,2] and raw mesh [N,468,2] points for every photo where both find a face."""
    import mediapipe as mp

    from reenact.face.dlib_detector import DlibDetector

    det = DlibDetector(detect_width=1000)
    mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=False)
    names, d68, m468 = [], [], []
    for f in sorted(folder.rglob("*.jpg")):
        img = cv2.imread(str(f))
        if img is None:
            continue
        r = det.detect(img)
        res = mesh.process(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
        if not r.found or not res.multi_face_landmarks:
            continue
        h, w = img.shape[:2]
        names.append(f.name)
        d68.append(r.points)
        m468.append(np.array([(p.x * w, p.y * h) for p in res.multi_face_landmarks[0].landmark][:468], np.float32))
    return names, np.array(d68), np.array(m468)


def fit(names: list[str], d68: np.ndarray, m468: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict]:
    """Mirror-symmetric nearest-vertex map, mirror-averaged residuals, held-out errors (interocular units)."""
    from reenact.face.align import align_points
    from reenact.face.topology import MIRROR

    al = [align_points(d) for d in d68]
    dc = np.array([a.to_crop(d) for a, d in zip(al, d68, strict=True)])
    mc = np.array([a.to_crop(m) for a, m in zip(al, m468, strict=True)])
    ids = np.array([int(Path(n).stem[:3]) for n in names])
    train, test = ids % 2 == 1, ids % 2 == 0
    mbar = mc.mean(0)
    mirror = np.array([np.linalg.norm(mbar - (256 - mbar[v, 0], mbar[v, 1]), axis=1).argmin() for v in range(468)])
    dist = np.linalg.norm(dc[train][:, :, None] - mc[train][:, None], axis=3).mean(0)  # [68,468]
    midline = np.where(mirror == np.arange(468))[0]
    idx = np.zeros(68, int)
    for k, m in enumerate(MIRROR):
        if m == k:
            idx[k] = midline[dist[k, midline].argmin()]
        elif k < m:
            v = (dist[k] + dist[m, mirror]).argmin()
            idx[k], idx[m] = v, mirror[v]
    off = (dc[train] - mc[train][:, idx]).mean(0)
    off = (off + off[list(MIRROR)] * [-1, 1]) / 2
    errors = {
        "index map": float((np.linalg.norm(mc[test][:, idx] - dc[test], axis=2) / 64).mean()),
        "with residual": float((np.linalg.norm(mc[test][:, idx] + off - dc[test], axis=2) / 64).mean()),
    }
    return idx, off, errors


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path, help="photos named NNN*.jpg (the London set), searched recursively")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    names, d68, m468 = collect(args.folder)
    idx, off, errors = fit(names, d68, m468)
    for k in range(68):
        print(f"    ({idx[k]:3d}, {off[k, 0]:+.2f}, {off[k, 1]:+.2f}),  # {k:2d}")
    print(f"# {len(names)} photos; held-out mean error (interocular units): {errors}")


if __name__ == "__main__":
    main()
