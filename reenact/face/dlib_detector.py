"""dlib's HOG face detector and 68-point shape predictor (the paper's landmarks).

The only module that imports dlib. The 68-point model file ships in the PyPI package
``face-recognition-models``; its ``__init__`` imports ``pkg_resources`` (gone from new
setuptools), so the file is located without importing the package.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import cv2
import dlib
import numpy as np

from reenact.errors import ReenactError
from reenact.face.landmarks import FaceLandmarks, box_of, check_image

log = logging.getLogger(__name__)


def model_file(name: str) -> Path:
    """Path of a model file shipped in ``face-recognition-models`` (without importing it)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ReenactError(
            "the dlib model files are missing (package face-recognition-models)",
            hint="pip install face-recognition-models",
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / name
    if not path.is_file():
        raise ReenactError(f"dlib model file not found: {path}", hint="pip install --force-reinstall face-recognition-models")
    return path


_MODELS: dict[str, object] = {}


def _load(kind: str):
    """Load dlib models once per process."""
    if kind not in _MODELS:
        if kind == "detector":
            _MODELS[kind] = dlib.get_frontal_face_detector()
        elif kind == "predictor":
            _MODELS[kind] = dlib.shape_predictor(str(model_file("shape_predictor_68_face_landmarks.dat")))
        elif kind == "descriptor":
            _MODELS[kind] = dlib.face_recognition_model_v1(str(model_file("dlib_face_recognition_resnet_model_v1.dat")))
    return _MODELS[kind]


def _to_gray(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def shape_points(gray: np.ndarray, rect: dlib.rectangle) -> np.ndarray:
    """Run the 68-point shape predictor in a face rectangle. Returns [68,2] float32."""
    shape = _load("predictor")(gray, rect)
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


#: HOG scores below this are weak hits (on a tilted astronaut, the suit scored 0.16 and the face 1.2).
WEAK_SCORE = 0.3
#: Faces whose score is within this of the best one count as equally sure; the largest of them wins.
SCORE_MARGIN = 0.5


def rank_faces(found: list[tuple[dlib.rectangle, float]]) -> list[tuple[dlib.rectangle, float]]:
    """Best face first: among hits scoring within :data:`SCORE_MARGIN` of the best one, the largest
    (the person nearest the camera); then the rest by score. A larger but much weaker hit (HOG false
    positives on clothes or background) no longer beats a clear face."""
    if not found:
        return []
    top = max(sc for _, sc in found)
    sure = sorted((f for f in found if f[1] >= top - SCORE_MARGIN), key=lambda f: f[0].width() * f[0].height(), reverse=True)
    rest = sorted((f for f in found if f[1] < top - SCORE_MARGIN), key=lambda f: f[1], reverse=True)
    return sure + rest


class DlibDetector:
    """HOG detection (on a downscaled frame) + 68-point shape prediction.

    ``detect`` finds faces in the whole image and returns the best one (:func:`rank_faces`).
    ``track`` (for video) re-uses the previous landmarks' box; see ``reenact.face.tracking``.
    """

    name = "dlib"
    weak_score = WEAK_SCORE  # the tracker asks the detector, so tracking.py needs no dlib import

    @staticmethod
    def rectangle(x0: int, y0: int, x1: int, y1: int) -> dlib.rectangle:
        """A dlib rectangle (the tracker builds the rects it hands back to :meth:`landmarks_in`)."""
        return dlib.rectangle(int(x0), int(y0), int(x1), int(y1))

    def __init__(self, detect_width: int = 320, upsample: int = 0, redetect_every: int = 10) -> None:
        self.detect_width = detect_width  # frames wider than this are downscaled for the HOG detector
        self.upsample = upsample  # dlib pyramid upsampling for small faces (slower)
        self.redetect_every = redetect_every
        self._tracker = None
        _load("detector")
        _load("predictor")

    def faces(self, image: np.ndarray, region: tuple[int, int, int, int] | None = None) -> list[dlib.rectangle]:
        """Face rectangles in full-image pixels, best first (see :func:`rank_faces`); ``region`` limits the search."""
        return [r for r, _ in self.scored_faces(image, region)]

    def scored_faces(self, image: np.ndarray, region: tuple[int, int, int, int] | None = None,
                     upsample: int | None = None, full_res: bool = False) -> list[tuple[dlib.rectangle, float]]:
        """(rectangle in full-image pixels, HOG score) pairs, ranked by :func:`rank_faces`.

        Frames wider than ``detect_width`` are downscaled first unless ``full_res``.
        """
        check_image(image)
        gray = _to_gray(image)
        ox, oy = 0, 0
        if region is not None:
            x0, y0, x1, y1 = region
            h, w = gray.shape
            x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
            if x1 - x0 < 16 or y1 - y0 < 16:
                return []
            gray, ox, oy = gray[y0:y1, x0:x1], x0, y0
        scale = 1.0
        if gray.shape[1] > self.detect_width and not full_res:
            scale = self.detect_width / gray.shape[1]
            gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        rects, scores, _ = _load("detector").run(gray, self.upsample if upsample is None else upsample, 0.0)
        out = [(dlib.rectangle(int(r.left() / scale) + ox, int(r.top() / scale) + oy,
                               int(r.right() / scale) + ox, int(r.bottom() / scale) + oy), float(sc))
               for r, sc in zip(rects, scores, strict=True)]
        return rank_faces(out)

    def landmarks_in(self, image: np.ndarray, rect: dlib.rectangle, n_faces: int = 1) -> FaceLandmarks:
        """68 points inside a known face rectangle."""
        pts = shape_points(_to_gray(image), rect)
        return FaceLandmarks(points=pts, found=True, box=box_of(pts), n_faces=n_faces)

    def detect(self, image: np.ndarray) -> FaceLandmarks:
        found = self.scored_faces(image)
        if (not found or found[0][1] < WEAK_SCORE) and image.shape[1] <= 2 * self.detect_width:
            # small faces, or only a weak (often false) hit: retry at full resolution, one pyramid upsample
            retry = self.scored_faces(image, upsample=1, full_res=True)
            if retry and (not found or retry[0][1] > found[0][1]):
                found = retry
        if not found:
            return FaceLandmarks.empty()
        # weak hits (HOG false positives on clothes, background) are not counted as faces: a photo of one
        # face must not be refused as showing two (the astronaut at 384 px: a 0.25 hit on her suit)
        sure = sum(sc >= WEAK_SCORE for _, sc in found)
        return self.landmarks_in(image, found[0][0], n_faces=max(1, sure))

    def track(self, image: np.ndarray) -> FaceLandmarks:
        if self._tracker is None:
            from reenact.face.tracking import LandmarkTracker

            self._tracker = LandmarkTracker(self, redetect_every=self.redetect_every)
        return self._tracker.update(image)

    def reset(self) -> None:
        if self._tracker is not None:
            self._tracker.reset()


def face_descriptor(image: np.ndarray, landmarks: FaceLandmarks | np.ndarray) -> np.ndarray:
    """dlib's 128-d face descriptor (identity) for one face; distance < 0.6 means same person.

    The descriptor's face chip is aligned on exactly the given 68 points (rounded to whole
    pixels, as dlib stores them), not on a fresh shape prediction: evaluation measures the
    face the landmarks describe. ``landmarks`` is a found :class:`FaceLandmarks` or a
    [68,2] array in image pixels.
    """
    check_image(image)
    if isinstance(landmarks, FaceLandmarks):
        if not landmarks.found:
            raise ValueError("face_descriptor needs found landmarks")
        pts = landmarks.points
    else:
        pts = np.asarray(landmarks)
        if pts.shape != (68, 2):
            raise ValueError(f"face_descriptor needs [68,2] landmarks, got {pts.shape}")
    if not np.all(np.isfinite(pts)):
        raise ValueError("face_descriptor: landmarks contain nan or inf")
    rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    x0, y0, x1, y1 = box_of(pts)
    parts = [dlib.point(int(round(float(x))), int(round(float(y)))) for x, y in pts]
    shape = dlib.full_object_detection(dlib.rectangle(x0, y0, x1, y1), parts)
    desc = _load("descriptor").compute_face_descriptor(np.ascontiguousarray(rgb), shape)
    return np.asarray(desc, dtype=np.float32)
