"""The MediaPipe detector (optional extra): same result type and nearly the same 68 points as dlib.

Runs only where mediapipe 0.10.21 is importable (its own virtualenv, numpy<2):
    /tmp/venv_mp/bin/python -m pytest tests/test_mediapipe.py
Tolerances are in interocular distances (IOD) against the stored dlib reference.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from reenact.errors import ReenactError
from reenact.face.flip import flip_image, flip_points
from reenact.face.landmarks import FaceLandmarks, create_detector
from reenact.face.topology import interocular

HAVE_MEDIAPIPE = importlib.util.find_spec("mediapipe") is not None
REFERENCE = Path(__file__).parent / "data" / "astronaut_landmarks.json"
needs_mediapipe = pytest.mark.skipif(
    not HAVE_MEDIAPIPE,
    reason="mediapipe is not importable (optional extra; needs numpy<2, test it in its own virtualenv)",
)


@pytest.mark.skipif(HAVE_MEDIAPIPE, reason="mediapipe is installed here")
def test_missing_mediapipe_is_a_clear_error() -> None:
    with pytest.raises(ReenactError, match="mediapipe") as info:
        create_detector("mediapipe")
    assert "pip install" in str(info.value)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    data = pytest.importorskip("skimage.data", reason="scikit-image provides the astronaut test image")
    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


@pytest.fixture(scope="module")
def detector():
    if not HAVE_MEDIAPIPE:
        pytest.skip("mediapipe is not importable (optional extra; needs numpy<2, test it in its own virtualenv)")
    det = create_detector("mediapipe")
    yield det
    det.close()


@needs_mediapipe
def test_index_map_is_a_valid_table() -> None:
    from reenact.face.mediapipe_detector import MESH_TO_DLIB68, RESIDUAL_256, mesh_to_dlib68

    assert len(MESH_TO_DLIB68) == 68 and len(set(MESH_TO_DLIB68)) == 68
    assert all(0 <= v < 468 for v in MESH_TO_DLIB68)
    assert RESIDUAL_256.shape == (68, 2) and np.abs(RESIDUAL_256).max() < 8  # crop px, 64 px IOD
    with pytest.raises(ValueError, match="468"):
        mesh_to_dlib68(np.zeros((68, 2)))


@needs_mediapipe
def test_mediapipe_points_match_dlib_on_the_astronaut(astronaut, detector) -> None:
    ref = np.array(json.loads(REFERENCE.read_text())["points"], np.float32)
    res = detector.detect(astronaut)
    assert isinstance(res, FaceLandmarks) and res.found and res.n_faces == 1
    assert res.points.shape == (68, 2) and res.points.dtype == np.float32
    err = np.linalg.norm(res.points - ref, axis=1) / interocular(ref)
    assert err.mean() < 0.06, f"mean {err.mean():.3f} IOD"  # measured 0.034
    assert err[36:68].max() < 0.15, f"eyes/lips max {err[36:68].max():.3f} IOD"


@needs_mediapipe
def test_mediapipe_map_is_mirror_consistent(astronaut, detector) -> None:
    res = detector.detect(astronaut)
    flipped = detector.detect(flip_image(astronaut))
    expected = flip_points(res.points, astronaut.shape[1])
    assert (np.linalg.norm(flipped.points - expected, axis=1).mean() / interocular(res.points)) < 0.03


@needs_mediapipe
def test_mediapipe_blank_image_and_tracking(astronaut, detector) -> None:
    blank = np.full((480, 640, 3), 100, np.uint8)
    empty = detector.detect(blank)
    assert empty is not None and not empty.found and empty.points.shape == (68, 2)
    face = cv2.copyMakeBorder(astronaut, 0, 0, 64, 64, cv2.BORDER_CONSTANT, value=(100, 100, 100))[16:496]
    detector.reset()
    found = [detector.track(f).found for f in [face] * 3 + [blank] * 3 + [face] * 3]
    assert found[:3] == [True] * 3 and not any(found[3:6]) and found[6:] == [True] * 3
    # MediaPipe's detector sees a 128 px letterboxed image: faces must fill a fair part of it
    # (two full astronauts side by side, faces 11% of the width, are not found; this is)
    head = astronaut[0:300, 80:380]
    assert detector.detect(np.concatenate([head, head], axis=1)).n_faces == 2
    with pytest.raises(TypeError):
        detector.detect(astronaut.astype(np.float32))


@needs_mediapipe
def test_cli_landmarks_with_mediapipe(tmp_path, capsys, astronaut) -> None:
    from reenact.cli import main

    img = tmp_path / "a.png"
    cv2.imwrite(str(img), astronaut)
    rc = main(["landmarks", str(img), "--json", "--detector", "mediapipe"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    summary = json.loads(out.out)
    assert summary["found"] and summary["detector"] == "mediapipe" and len(summary["points"]) == 68
    assert (tmp_path / "a_crop.png").is_file()
