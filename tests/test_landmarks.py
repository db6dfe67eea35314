"""dlib landmarks, the video tracker and `reenact landmarks`, on the public-domain astronaut.

The reference points in tests/data/astronaut_landmarks.json were produced once by
``DlibDetector().detect`` (dlib 20.0.1); the test allows 3 px per point.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from reenact.face.flip import flip_image, flip_points
from reenact.face.landmarks import FaceLandmarks

skimage_data = pytest.importorskip("skimage.data", reason="scikit-image provides the astronaut test image")
dlib_detector = pytest.importorskip("reenact.face.dlib_detector", reason="dlib (dlib-bin) is not installed")

REFERENCE = Path(__file__).parent / "data" / "astronaut_landmarks.json"
from _face_fixtures import SHARED_DATA  # noqa: E402

LONDON = SHARED_DATA / "london"
TOL_PX = 3.0
MAX_YAW = 25.0  # degrees; the command warns above this


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR)  # 512x512 BGR


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return np.array(json.loads(REFERENCE.read_text())["points"], np.float32)


@pytest.fixture(scope="module")
def detector():
    return dlib_detector.DlibDetector()


def _err(a: np.ndarray, b: np.ndarray) -> float:
    """Largest per-point distance, px."""
    return float(np.linalg.norm(a - b, axis=1).max())


# -- detection ---------------------------------------------------------------------------
def test_dlib_finds_the_reference_points(astronaut, reference, detector) -> None:
    res = detector.detect(astronaut)
    assert isinstance(res, FaceLandmarks) and res.found and res.n_faces == 1
    assert res.points.shape == (68, 2) and res.points.dtype == np.float32
    assert _err(res.points, reference) < TOL_PX
    x0, y0, x1, y1 = res.box
    assert (res.points[:, 0] >= x0).all() and (res.points[:, 0] <= x1).all()
    assert (res.points[:, 1] >= y0).all() and (res.points[:, 1] <= y1).all()


def test_rank_faces_prefers_the_largest_sure_face_over_a_larger_weak_hit() -> None:
    rect = dlib_detector.dlib.rectangle
    face, big_fp, small_face = rect(100, 100, 200, 200), rect(0, 0, 300, 300), rect(400, 100, 460, 160)
    ranked = dlib_detector.rank_faces([(small_face, 1.0), (big_fp, 0.1), (face, 1.2)])
    assert [r for r, _ in ranked] == [face, small_face, big_fp]  # both sure faces by size, then the weak hit
    assert dlib_detector.rank_faces([(big_fp, 0.9), (face, 1.2)])[0][0] == big_fp  # equally sure: the larger
    assert dlib_detector.rank_faces([]) == []


def test_a_weak_false_hit_does_not_hide_the_real_face(astronaut, reference, detector) -> None:
    """Rotated 25° in a 512² frame, the fast (downscaled) pass finds only a weak hit on the suit;
    the full-resolution retry finds the face, whose points land where the rotated reference's do."""
    M = cv2.getRotationMatrix2D((256.0, 133.0), -25.0, 1.0)
    tilted = cv2.warpAffine(astronaut, M, (512, 512), borderMode=cv2.BORDER_REPLICATE)
    fast = detector.scored_faces(tilted)
    assert fast and fast[0][1] < dlib_detector.WEAK_SCORE  # the situation this guards against
    res = detector.detect(tilted)
    assert res.found
    want = reference @ M[:, :2].T + M[:, 2]
    assert float(np.linalg.norm(res.points - want, axis=1).mean()) < 2 * TOL_PX


def test_blank_image_gives_an_empty_result(detector) -> None:
    for img in (np.zeros((480, 640, 3), np.uint8), np.full((240, 320), 200, np.uint8)):
        res = detector.detect(img)
        assert res is not None and isinstance(res, FaceLandmarks)
        assert not res.found and res.n_faces == 0 and res.points.shape == (68, 2)
    detector.reset()
    assert not detector.track(np.zeros((480, 640, 3), np.uint8)).found
    detector.reset()


def test_detector_checks_its_input(detector) -> None:
    with pytest.raises(TypeError, match="uint8"):
        detector.detect(np.zeros((64, 64, 3), np.float32))
    with pytest.raises(ValueError, match="shape"):
        detector.detect(np.zeros((64, 64, 4), np.uint8))
    with pytest.raises(TypeError, match="numpy"):
        detector.detect([[0, 1], [2, 3]])


def test_flipped_detection_matches_flipped_points(astronaut, reference, detector) -> None:
    """dlib on the mirrored photo ≈ the mirrored reference: checks MIRROR on a real face."""
    res = detector.detect(flip_image(astronaut))
    assert res.found
    expected = flip_points(reference, astronaut.shape[1])
    assert float(np.linalg.norm(res.points - expected, axis=1).mean()) < TOL_PX


# -- tracking on video -------------------------------------------------------------------
BG = (90, 100, 110)


def _place(face: np.ndarray, scale: float, dx: float, dy: float, size=(640, 480)) -> tuple[np.ndarray, np.ndarray]:
    """The astronaut scaled and shifted into a frame, and the 2x3 matrix that did it."""
    M = np.float32([[scale, 0, dx], [0, scale, dy]])
    return cv2.warpAffine(face, M, size, flags=cv2.INTER_LINEAR, borderValue=BG), M


def _video(tmp_path: Path, astronaut: np.ndarray, plan: list) -> tuple[Path, list]:
    """Write a MJPG video of the plan [(scale, dx, dy) or None for a frame with no face]."""
    path = tmp_path / "astronaut.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (640, 480))
    assert writer.isOpened(), "OpenCV cannot write MJPG video here"
    mats = []
    for step in plan:
        if step is None:
            frame, M = np.full((480, 640, 3), BG, np.uint8), None
        else:
            frame, M = _place(astronaut, *step)
        writer.write(frame)
        mats.append(M)
    writer.release()
    return path, mats


def _read(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


def test_tracker_recovers_after_the_face_leaves_and_reenters(tmp_path, astronaut, reference, detector) -> None:
    from reenact.face.tracking import LandmarkTracker

    plan = (
        [(1.0, 40 + 3 * i, -20 + i) for i in range(12)]  # the face drifts right
        + [None] * 5  # it leaves the frame
        + [(1.5, 150 - 2 * i, -100) for i in range(10)]  # it comes back, closer and elsewhere
        + [(1.0, -60, 0)] * 4  # and jumps across the frame between two frames
    )
    path, mats = _video(tmp_path, astronaut, plan)
    frames = _read(path)
    assert len(frames) == len(plan)
    every = 5
    tracker = LandmarkTracker(detector, redetect_every=every)
    results, modes = [], []
    for frame in frames:
        results.append(tracker.update(frame))
        modes.append(tracker.last_mode)
    assert all(isinstance(r, FaceLandmarks) for r in results)

    def expected(i: int) -> np.ndarray:
        M = mats[i]
        return reference * M[0, 0] + M[:, 2]

    def ok(i: int) -> bool:
        # 3 px at scale 1, a little more after MJPG compression and 1.5x scaling
        return results[i].found and _err(results[i].points, expected(i)) < TOL_PX * 1.5 * mats[i][0, 0]

    assert all(ok(i) for i in range(12)), [(m, r.found) for m, r in zip(modes[:12], results[:12], strict=True)]
    assert "track" in modes[:12]  # the cheap path was used, not a detection per frame
    assert not any(r.found for r in results[12:17])
    back = [i for i in range(17, 27) if results[i].found]
    assert back and back[0] <= 17 + every, f"not recovered within {every} frames: {modes[17:27]}"
    assert all(ok(i) for i in range(back[0], 27))
    assert all(ok(i) for i in range(28, 31)), modes[27:]  # re-found after the jump (one frame allowed)


def test_tracker_takes_back_a_weakly_scored_face_on_the_next_frame(astronaut, reference, detector) -> None:
    """Downscaled for the fast pass the astronaut scores below WEAK_SCORE; the region check confirms her."""
    from reenact.face import dlib_detector
    from reenact.face.tracking import LandmarkTracker

    fast = detector.scored_faces(astronaut)
    assert fast and fast[0][1] < dlib_detector.WEAK_SCORE  # the situation this guards against
    tracker = LandmarkTracker(detector, redetect_every=10)
    assert not tracker.update(np.full_like(astronaut, 127)).found  # lost: the thorough search is 9 frames away
    res = tracker.update(astronaut)
    assert res.found and tracker.last_mode == "detect"
    assert _err(res.points, reference) < TOL_PX


def test_tracker_keeps_the_rect_shape_across_redetections(astronaut, detector) -> None:
    """A regional re-detection lands on another HOG pyramid step than the full-frame one here
    (rect 10 % smaller); the points must not move with it: a still face gives the same points
    before and after every re-detection, as ``detect`` gives them."""
    from reenact.face.tracking import LandmarkTracker

    frame, _ = _place(astronaut, 1.5, 20, -30)
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    full = detector.scored_faces(frame)[0][0]
    tracker = LandmarkTracker(detector, redetect_every=3)
    region = tracker._faces_in_region(gray, detector.landmarks_in(frame, full).box)[0]
    assert abs(region.width() / full.width() - 1) > 0.05  # the situation this guards against
    ref = detector.detect(frame).points
    results, modes = [], []
    for _ in range(10):
        results.append(tracker.update(frame).points)
        modes.append(tracker.last_mode)
    assert modes.count("redetect") >= 2, modes
    worst = max(_err(p, ref) for p in results)
    assert worst < 0.5, f"tracked points moved {worst:.2f} px from detect's on a still face ({modes})"


def test_the_periodic_check_corrects_a_drifted_track(astronaut, detector) -> None:
    """Tracking that has drifted 0.2 face sizes sideways is put back on the face at the next
    periodic check (the detector's rect is compared with the tracked one), not kept as plausible
    (the frame-to-frame bounds kept it: 7 px off detect's points on that frame)."""
    from reenact.face.landmarks import FaceLandmarks, box_of
    from reenact.face.tracking import LandmarkTracker

    frame, _ = _place(astronaut, 1.5, 20, -30)
    ref = detector.detect(frame).points
    tracker = LandmarkTracker(detector, redetect_every=3)
    for _ in range(3):  # detect, track, track: the next frame is the periodic check
        tracker.update(frame)
    st = tracker._state
    drift = 0.2 * (st.landmarks.box[2] - st.landmarks.box[0])
    moved = st.landmarks.points + np.float32([drift, 0.0])
    st.landmarks = FaceLandmarks(points=moved, found=True, box=box_of(moved), n_faces=1)
    res = tracker.update(frame)  # the periodic frame: re-anchored on the detector's face
    assert tracker.last_mode == "redetect"
    assert _err(res.points, ref) < 3.0, _err(res.points, ref)  # the drift was 0.2 x ~165 px
    for _ in range(2):  # tracking settles back on detect's points
        res = tracker.update(frame)
    assert _err(res.points, ref) < 0.5, _err(res.points, ref)


def test_detector_track_uses_the_tracker_and_resets(astronaut, detector) -> None:
    frame, _ = _place(astronaut, 1.5, 0, -60)
    detector.reset()
    first = detector.track(frame)
    second = detector.track(frame)
    assert first.found and second.found
    assert _err(first.points, second.points) < 2.0
    assert detector._tracker is not None and detector._tracker.last_mode == "track"
    detector.reset()
    assert not detector._tracker.tracking


# -- `reenact landmarks` -----------------------------------------------------------------
def _cli(capsys, *args: str) -> tuple[int, str, str]:
    from reenact.cli import main

    rc = main(["landmarks", *args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _save(path: Path, image: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), image)
    return path


def test_cli_landmarks_on_the_astronaut(tmp_path, capsys, astronaut, reference) -> None:
    img = _save(tmp_path / "astronaut.png", astronaut)
    rc, out, err = _cli(capsys, str(img))
    assert rc == 0, err
    assert "1 face" in out
    annotated, crop = tmp_path / "astronaut_landmarks.png", tmp_path / "astronaut_crop.png"
    assert cv2.imread(str(annotated)).shape == astronaut.shape
    assert cv2.imread(str(crop)).shape == (256, 256, 3)

    rc, out, err = _cli(capsys, str(img), "--json", "--out", str(tmp_path / "sub" / "check.png"))
    assert rc == 0, err
    summary = json.loads(out)
    for key in ("found", "n_faces", "box", "interocular_px", "roll_deg", "yaw_estimate", "warnings", "points"):
        assert key in summary
    assert summary["found"] is True and summary["n_faces"] == 1
    assert _err(np.array(summary["points"], np.float32), reference) < TOL_PX
    assert 35 < summary["interocular_px"] < 55 and abs(summary["roll_deg"]) < 10 and abs(summary["yaw_estimate"]) < 15
    assert (tmp_path / "sub" / "check.png").is_file() and (tmp_path / "sub" / "astronaut_crop.png").is_file()


def test_cli_landmarks_no_face_exits_non_zero(tmp_path, capsys) -> None:
    img = _save(tmp_path / "blank.png", np.full((300, 400, 3), 128, np.uint8))
    rc, out, err = _cli(capsys, str(img))
    assert rc != 0
    assert "no face found" in err and "Traceback" not in err + out
    assert not (tmp_path / "blank_landmarks.png").exists()


def test_cli_landmarks_corrupt_or_missing_file(tmp_path, capsys) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    rc, out, err = _cli(capsys, str(bad))
    assert rc != 0 and "not a readable image" in err and "Traceback" not in err
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    rc, _, err = _cli(capsys, str(empty))
    assert rc != 0 and "not a readable image" in err
    rc, _, err = _cli(capsys, str(tmp_path / "missing.png"))
    assert rc != 0 and "does not exist" in err


def test_cli_landmarks_refuses_two_faces_as_live_does(tmp_path, capsys, astronaut) -> None:
    img = _save(tmp_path / "two.png", np.concatenate([astronaut, astronaut], axis=1))
    rc, out, err = _cli(capsys, str(img), "--json")
    assert rc == 2 and "2 faces" in err and "exactly one" in err, err
    summary = json.loads(out)
    assert summary["n_faces"] == 2
    assert not list(tmp_path.glob("two_*.png")), "nothing is written for a photo live would refuse"


def test_cli_landmarks_warns_on_a_small_or_tilted_face(tmp_path, capsys, astronaut) -> None:
    small = cv2.resize(astronaut, None, fx=0.75, fy=0.75, interpolation=cv2.INTER_AREA)
    rc, out, err = _cli(capsys, str(_save(tmp_path / "small.png", small)), "--json")
    assert rc == 0, err
    assert any("small" in w for w in json.loads(out)["warnings"])

    # the head only: rotated, the full picture has HOG false positives on the suit larger than the face
    head = astronaut[0:300, 76:376]
    tilted = cv2.warpAffine(head, cv2.getRotationMatrix2D((150.0, 133.0), -25.0, 1.0), (300, 300),
                            borderMode=cv2.BORDER_REPLICATE)
    rc, out, err = _cli(capsys, str(_save(tmp_path / "tilted.png", tilted)), "--json")
    assert rc == 0, err
    summary = json.loads(out)
    assert summary["roll_deg"] == pytest.approx(25.0, abs=5.0)  # clockwise on screen
    assert any("tilted" in w for w in summary["warnings"])


@pytest.mark.skipif(not LONDON.is_dir(), reason="the London face set (../shared/data/london) is absent")
def test_frontal_london_faces_read_as_frontal(tmp_path, capsys) -> None:
    """Frontal London photos: found, large enough, no turn warning (checks the yaw estimate's scale)."""
    files = sorted((LONDON / "neutral").glob("*.jpg"))[:4]
    assert files
    for f in files:
        rc, out, err = _cli(capsys, str(f), "--json", "--out", str(tmp_path / f"{f.stem}.png"))
        assert rc == 0, err
        s = json.loads(out)
        assert s["interocular_px"] > 40 and abs(s["yaw_estimate"]) < MAX_YAW
        assert not any("turned" in w for w in s["warnings"])



def test_expression_warning_reads_the_mouth_in_the_aligned_crop() -> None:
    """The mean neutral face passes wherever it sits in the picture; the same face with its lips
    apart, or with its mouth corners raised, gets the warning."""
    from reenact.commands.landmarks import expression_warning
    from reenact.face.topology import TEMPLATE_256

    a = np.radians(12.0)
    R = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])

    def placed(face):  # rotated, scaled and shifted into a camera frame: the check must not care
        return (face - 128) @ R.T * 1.7 + np.array([400.0, 300.0])

    assert expression_warning(placed(TEMPLATE_256)) is None
    opened = TEMPLATE_256.copy()
    opened[[56, 57, 58, 65, 66, 67], 1] += 10.0  # 0.16 of the 64 px eye distance
    w = expression_warning(placed(opened))
    assert w is not None and "mouth is open" in w and "smiling" not in w
    smile = TEMPLATE_256.copy()
    smile[[48, 60], 0] -= 4.0
    smile[[54, 64], 0] += 4.0
    smile[[48, 54, 60, 64], 1] -= 6.0  # wider, corners up
    w = expression_warning(placed(smile))
    assert w is not None and "smiling" in w and "open" not in w


def test_the_astronauts_grin_is_flagged(tmp_path, capsys, astronaut) -> None:
    rc, out, err = _cli(capsys, str(_save(tmp_path / "astronaut.png", astronaut)), "--json")
    assert rc == 0, err
    assert any("smiling" in w and "mouth is open" in w for w in json.loads(out)["warnings"])


@pytest.mark.slow
@pytest.mark.skipif(not LONDON.is_dir(), reason="the London face set (../shared/data/london) is absent")
def test_expression_warning_separates_london_neutral_from_smiling() -> None:
    """Measured on all 102 people: 2 neutral photos flagged, 74 smiling ones."""
    from reenact.commands.landmarks import expression_warning
    from reenact.face.landmarks import create_detector

    det = create_detector("dlib", detect_width=1000)
    flagged = {}
    for kind in ("neutral", "smiling"):
        files = sorted((LONDON / kind).glob("*.jpg"))
        assert len(files) >= 50
        hits = 0
        for f in files:
            lm = det.detect(cv2.imread(str(f)))
            assert lm.found, f
            hits += expression_warning(lm.points) is not None
        flagged[kind] = hits / len(files)
    assert flagged["neutral"] <= 0.08, flagged
    assert flagged["smiling"] >= 0.70, flagged


def test_cli_landmarks_reports_the_size_the_target_is_used_at(tmp_path, capsys, astronaut) -> None:
    """A 1024x768 picture is scaled to 960x720 for a 1280x720 output: its 43 px face becomes 40 px
    there and is warned about; a close, large head photo is scaled down and passes."""
    wide = np.full((768, 1024, 3), 128, np.uint8)
    wide[128:640, 256:768] = astronaut
    rc, out, err = _cli(capsys, str(_save(tmp_path / "wide.png", wide)), "--json")
    assert rc == 0, err
    s = json.loads(out)
    assert s["output_size"] == [1280, 720] and s["used_size"] == [960, 720]
    assert s["output_interocular_px"] == pytest.approx(s["interocular_px"] * 0.9375, abs=0.2)
    assert any("1280x720 output" in w and "between the eyes" in w for w in s["warnings"])

    head = cv2.resize(astronaut[0:300, 76:376], (1200, 1200), interpolation=cv2.INTER_CUBIC)
    path = _save(tmp_path / "head.png", head)
    rc, out, err = _cli(capsys, str(path))
    assert rc == 0, err
    assert "1200x1200 photo scaled 0.60x to 720x720" in out
    assert "output the face is only" not in out
    rc, out, err = _cli(capsys, str(path), "--size", "320x240", "--json")  # a small output: now too small
    s = json.loads(out)
    assert s["used_size"] == [240, 240] and any("320x240 output" in w for w in s["warnings"])
