"""Real-face fixtures (the public-domain astronaut, ../shared/data when present).

Imported by the test modules that use them: `from _face_fixtures import tiny_bank  # noqa: F401`.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

#: ../shared/data beside the checkout; REENACT_TEST_DATA points elsewhere (a git worktree, a CI cache)
SHARED_DATA = Path(os.environ.get("REENACT_TEST_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "london").is_dir():
        pytest.skip(f"the shared face data is absent ({SHARED_DATA}; set REENACT_TEST_DATA to its folder)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def smoothing_study():
    """scripts/smoothing_study.py as a module (its GRID clip reader and measures)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "scripts" / "smoothing_study.py"
    spec = importlib.util.spec_from_file_location("smoothing_study", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _clips(shared_data: Path, smoothing_study, folder: str, what: str) -> dict[str, tuple[np.ndarray, float]]:
    clips = smoothing_study.clip_landmarks(shared_data / folder, None)
    if len(clips) < 2:
        pytest.skip(f"fewer than two {what} clips in ../shared/data/{folder}")
    return clips


@pytest.fixture(scope="session")
def grid_clips(shared_data, smoothing_study) -> dict[str, tuple[np.ndarray, float]]:
    """dlib's landmarks on every frame of every GRID clip: {clip: ([T,68,2] image px, fps)}, once a session."""
    return _clips(shared_data, smoothing_study, "grid", "GRID")


@pytest.fixture(scope="session")
def cremad_clips(shared_data, smoothing_study) -> dict[str, tuple[np.ndarray, float]]:
    """dlib's landmarks on every frame of the CREMA-D clips (expressive; evaluation only), as grid_clips."""
    return _clips(shared_data, smoothing_study, "cremad", "CREMA-D")


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """scikit-image's astronaut (public domain), BGR uint8."""
    data = pytest.importorskip("skimage.data", reason="scikit-image (dev extra) provides the astronaut face")
    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


@pytest.fixture(scope="session")
def astronaut_points(astronaut) -> np.ndarray:
    from reenact.face.dlib_detector import DlibDetector

    lm = DlibDetector().detect(astronaut)
    assert lm.found
    return lm.points


@pytest.fixture(scope="session")
def tiny_bank(astronaut, astronaut_points):
    """A FaceBank of synthetic talking clips of real faces: 3 'people' (astronaut, mirrored, darker)."""
    from reenact.data.datasets import FaceBank, FaceRecord
    from reenact.face.align import align_points
    from reenact.face.flip import flip_image, flip_points
    from reenact.synthetic import open_mouth, talking_frames

    people = {
        "a": (astronaut, astronaut_points),
        "b": (flip_image(astronaut), flip_points(astronaut_points, astronaut.shape[1])),
        "c": (cv2.convertScaleAbs(astronaut, alpha=0.8, beta=10), astronaut_points),
    }
    records, crops, points = [], [], []
    for name, (img, pts) in people.items():
        frames, amounts = talking_frames(img, pts, 8, period=8)
        for i, f in enumerate(frames):
            p = open_mouth(pts, float(amounts[i]))
            al = align_points(p)
            records.append(FaceRecord("video", f"video:{name}", f"{name}.mp4", "frame", i, name))
            crops.append(al.crop(f))
            points.append(al.to_crop(p))
    split = {"video:a": "train", "video:b": "train", "video:c": "val"}
    return FaceBank(records, np.stack(crops), np.stack(points).astype(np.float32), np.ones(len(records), np.float32), split)


@pytest.fixture(scope="session")
def video_set(tmp_path_factory, astronaut, astronaut_points):
    """Three 'people' (the astronaut, mirrored, darker), one talking clip each, as real video files."""
    from reenact.face.flip import flip_image, flip_points
    from reenact.synthetic import talking_frames

    root = tmp_path_factory.mktemp("videos")
    people = {
        "a": (astronaut, astronaut_points),
        "b": (flip_image(astronaut), flip_points(astronaut_points, astronaut.shape[1])),
        "c": (cv2.convertScaleAbs(astronaut, alpha=0.8, beta=10), astronaut_points),
    }
    for name, (img, pts) in people.items():
        frames, _ = talking_frames(img, pts, 16, period=16)
        w = cv2.VideoWriter(str(root / f"{name}.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 25, (img.shape[1], img.shape[0]))
        for f in frames:
            w.write(f)
        w.release()
    return root
