"""Whole-face expression measures (issue 17) on synthetic faces with known answers."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from reenact.eval import expressive as ex
from reenact.face.topology import TEMPLATE_256, interocular

SKIN = (110, 150, 205)  # BGR
LIPS = (90, 80, 175)
INTERIOR = (40, 30, 70)


def _rot(deg: float) -> np.ndarray:
    a = np.radians(deg)
    return np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])


def _placed(points: np.ndarray, scale: float = 1.7, angle: float = 12.0, shift=(40.0, 30.0)) -> np.ndarray:
    return (points - 128) @ _rot(angle).T * scale + 128 * scale + np.array(shift)


def _drawn_face(points: np.ndarray, size: int = 256, teeth: tuple[int, int, int, int] | None = None,
                teeth_colour=(235, 240, 240), light: float = 1.0) -> np.ndarray:
    """A flat skin-coloured face with red lips, a dark mouth interior and optionally a teeth
    rectangle (x0, y0, x1, y1) inside it; ``light`` scales the whole picture (a darker room)."""
    img = np.zeros((size, size, 3), np.uint8)
    cv2.fillPoly(img, [np.round(np.concatenate([points[0:17], points[26:16:-1]])).astype(np.int32)], SKIN)
    cv2.fillPoly(img, [np.round(points[48:60]).astype(np.int32)], LIPS)
    cv2.fillPoly(img, [np.round(points[60:68]).astype(np.int32)], INTERIOR)
    if teeth is not None:
        cv2.rectangle(img, teeth[:2], (teeth[2] - 1, teeth[3] - 1), teeth_colour, -1)
    return np.clip(img.astype(np.float64) * light, 0, 255).astype(np.uint8)


def _open_face() -> np.ndarray:
    return ex.move(TEMPLATE_256, "talk", 1.0)  # inner lips ~19 px apart


def test_teeth_area_of_a_drawn_open_mouth() -> None:
    """A white 16 x 5 px rectangle of teeth inside a dark open mouth: area 80 / eye distance²,
    in a bright and in a dark room; a mouth with no teeth shows none; lips and interior don't count."""
    pts = _open_face()
    iod = ex.eye_distance(pts)
    box = (120, 167, 136, 172)
    inner = np.zeros((256, 256), np.uint8)
    cv2.fillPoly(inner, [np.round(pts[60:68]).astype(np.int32)], 1)
    assert inner[box[1]:box[3], box[0]:box[2]].all()  # the rectangle lies inside the inner lips
    for light in (1.0, 0.5):
        img = _drawn_face(pts, teeth=box, light=light)
        assert ex.teeth_area(img, pts) == pytest.approx(80 / iod**2, rel=0.02)
        assert ex.teeth_area(_drawn_face(pts, light=light), pts) == 0.0
    yellowish = _drawn_face(pts, teeth=box, teeth_colour=(190, 215, 225))  # ivory teeth: light, little colour
    assert ex.teeth_area(yellowish, pts) == pytest.approx(80 / iod**2, rel=0.02)
    assert ex.teeth_area(_drawn_face(pts, teeth=box, teeth_colour=(60, 60, 200)), pts) == 0.0  # a red tongue
    closed = TEMPLATE_256.astype(np.float64)
    assert ex.teeth_area(_drawn_face(closed), closed) == 0.0
    with pytest.raises(ValueError, match="BGR uint8"):
        ex.teeth_area(np.zeros((8, 8), np.uint8), pts)


def test_teeth_ratio_counts_only_frames_with_teeth() -> None:
    drv = np.array([0.0, 0.01, 0.1, 0.2, np.nan])
    out = np.array([0.5, 0.5, 0.05, 0.05, 0.3])
    assert ex.teeth_ratio(drv, out) == pytest.approx(0.1 / 0.3)
    assert math.isnan(ex.teeth_ratio(np.zeros(4), np.ones(4)))


def test_features_of_a_closed_eye_and_raised_brows_in_any_pose() -> None:
    """Features are in eye distances and ignore roll, scale and position: the template's eye
    opening is its lid gaps over the eye distance; a blink closes it to 0; raised brows add exactly 0.15."""
    face = TEMPLATE_256.astype(np.float64)
    f0 = ex.face_features(face)[0]
    gaps = np.mean([np.linalg.norm(face[a] - face[b]) for a, b in ((37, 41), (38, 40), (43, 47), (44, 46))])
    corners = np.linalg.norm(face[[42, 45]].mean(0) - face[[36, 39]].mean(0))
    assert f0[1] == pytest.approx(gaps / corners, rel=1e-6)
    assert corners == pytest.approx(ex.eye_distance(face)) == pytest.approx(interocular(face), rel=0.02)
    np.testing.assert_allclose(ex.face_features(_placed(face))[0], f0, atol=1e-9)
    closed = ex.face_features(_placed(ex.move(face, "blink", 1.0)))[0]
    assert closed[1] == pytest.approx(0.0, abs=1e-9)
    assert closed[0] == pytest.approx(f0[0], abs=1e-9)  # the brows did not move
    raised = ex.face_features(_placed(ex.move(face, "brows", 1.0)))[0]
    assert raised[0] - f0[0] == pytest.approx(0.15, abs=1e-6)
    np.testing.assert_allclose(raised[1:], f0[1:], atol=1e-9)
    smile = ex.face_features(ex.move(face, "smile", 1.0))[0]
    assert smile[3] - f0[3] == pytest.approx(0.16, abs=1e-6)
    squint = ex.face_features(ex.move(face, "squint", 1.0))[0]
    assert squint[1] == pytest.approx(0.4 * f0[1], rel=1e-6)
    assert np.isnan(ex.face_features(np.full((68, 2), np.nan))).all()
    with pytest.raises(ValueError, match=r"\[68,2\]"):
        ex.face_features(np.zeros((5, 2)))
    with pytest.raises(ValueError, match="unknown expression"):
        ex.move(face, "wink", 1.0)


def test_following_blink_depth_and_retention_known_answers() -> None:
    rng = np.random.default_rng(0)
    d = rng.normal(size=(50, 4))
    f = ex.following(d, 2 * d + 1)
    assert all(v == pytest.approx(1.0) for v in f.values())
    assert ex.following(d, -d)["brow"] == pytest.approx(-1.0)
    with pytest.raises(ValueError):
        ex.following(d, d[:, :3])

    drv = np.full(40, 0.3)
    drv[[10, 11, 25]] = 0.1  # three blink frames (below 0.6 x 0.3)
    drv[30] = 0.2  # not below 0.18: not a blink
    out = np.full(40, 0.4)
    out[[10, 11, 25]] = [0.2, 0.1, 0.3]
    assert list(ex.blink_frames(drv)) == [10, 11, 25]
    assert ex.blink_depth(drv, out) == pytest.approx(0.2 / 0.4)
    assert ex.blink_depth(drv, drv) == pytest.approx(0.1 / 0.3)
    assert math.isnan(ex.blink_depth(np.full(40, 0.3), out))

    s = np.r_[np.zeros(10), np.full(10, 1.0), np.linspace(1.0, 0.5, 10)]
    assert ex.retention(s, slice(0, 10), slice(10, 13), slice(27, 30)) == pytest.approx(np.mean(s[27:30]))
    assert math.isnan(ex.retention(np.zeros(30), slice(0, 10), slice(10, 13), slice(27, 30)))


def test_scripted_driver_follows_its_script() -> None:
    """The default script: talking first, the brows up 0.15 for the whole 10 s hold, blinks that
    close the eyes, and the face back to neutral at the end."""
    face = _placed(TEMPLATE_256.astype(np.float64))
    pts, t = ex.scripted_driver(face, fps=30.0)
    assert pts.shape == (len(t), 68, 2) and t[1] == pytest.approx(1 / 30)
    f = ex.face_features(pts)
    f0 = ex.face_features(face)[0]
    hold = (t > 6.8) & (t < 16.6)
    np.testing.assert_allclose(f[hold, 0] - f0[0], 0.15, atol=1e-4)
    assert f[t < 6, 2].max() > 0.2 and np.ptp(f[t < 6, 0]) < 1e-5  # talking moves the mouth, not the brows
    assert f[(t > 41) & (t < 41.6), 1].min() < 0.05 * f0[1]  # the slow blink closes the eyes
    assert len(ex.blink_frames(f[:, 1])) >= 3 + 2  # slow and fast blinks
    np.testing.assert_allclose(pts[-1], face, atol=1e-4)
    noisy, _ = ex.scripted_driver(face, noise=0.01)
    assert 0.005 < np.std(noisy - pts) / ex.eye_distance(face) < 0.015


def test_redetect_marks_missing_faces(astronaut) -> None:
    """dlib re-detection: a face gives its points, a blank frame a row of nan."""
    from reenact.face.dlib_detector import DlibDetector

    pts = ex.redetect([astronaut, np.zeros_like(astronaut)], DlibDetector())
    assert pts.shape == (2, 68, 2) and np.isfinite(pts[0]).all() and np.isnan(pts[1]).all()
    f = ex.face_features(pts)
    assert np.isfinite(f[0]).all() and np.isnan(f[1]).all()
    assert f[0, 2] > 0.1  # she is grinning with parted lips
    assert ex.teeth_area(astronaut, pts[0]) > ex.TEETH_SHOWN  # and shows her teeth


@pytest.mark.slow
def test_london_smiles_show_teeth_neutral_faces_do_not(shared_data) -> None:
    """On 30 London people: neutral photos show (almost) no teeth; the smiling photos with the
    widest-open lips do."""
    from reenact.face.dlib_detector import DlibDetector

    det = DlibDetector()
    neutral, smiling = [], []
    for path in sorted((shared_data / "london" / "neutral").glob("*.jpg"))[:30]:
        for folder, out in (("neutral", neutral), ("smiling", smiling)):
            img = cv2.imread(str(shared_data / "london" / folder / path.name))
            lm = det.detect(img) if img is not None else None
            if lm is not None and lm.found:
                out.append((ex.teeth_area(img, lm.points), ex.face_features(lm.points)[0, 2]))
    n, s = np.array(neutral), np.array(smiling)
    assert len(n) >= 25 and len(s) >= 25
    assert np.mean(n[:, 0] > ex.TEETH_SHOWN) <= 0.1, n[:, 0]
    open_lips = s[s[:, 1] > 0.1]
    assert len(open_lips) >= 5 and np.mean(open_lips[:, 0] > ex.TEETH_SHOWN) >= 0.8, open_lips
