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


class DlibDetector:
    """HOG detection (on a downscaled frame) + 68-point shape prediction.

    ``detect`` finds faces in the whole image and returns the largest one.
    ``track`` (for video) re-uses the previous landmarks' box; see ``reenact.face.tracking``.
    """

    name = "dlib"

    def __init__(self, detect_width: int = 320, upsample: int = 0, redetect_every: int = 10) -> None:
        self.detect_width = detect_width  # frames wider than this are downscaled for the HOG detector
        self.upsample = upsample  # dlib pyramid upsampling for small faces (slower)
        self.redetect_every = redetect_every
        self._tracker = None
        _load("detector")
        _load("predictor")

    def faces(self, image: np.ndarray, region: tuple[int, int, int, int] | None = None) -> list[dlib.rectangle]:
        """Face rectangles in full-image pixels, largest first; ``region`` limits the search."""
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
        if gray.shape[1] > self.detect_width:
            scale = self.detect_width / gray.shape[1]
            gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        rects = _load("detector")(gray, self.upsample)
        out = []
        for r in rects:
            out.append(
                dlib.rectangle(
                    int(r.left() / scale) + ox,
                    int(r.top() / scale) + oy,
                    int(r.right() / scale) + ox,
                    int(r.bottom() / scale) + oy,
                )
            )
        out.sort(key=lambda r: r.width() * r.height(), reverse=True)
        return out

    def landmarks_in(self, image: np.ndarray, rect: dlib.rectangle, n_faces: int = 1) -> FaceLandmarks:
        """68 points inside a known face rectangle."""
        pts = shape_points(_to_gray(image), rect)
        return FaceLandmarks(points=pts, found=True, box=box_of(pts), n_faces=n_faces)

    def detect(self, image: np.ndarray) -> FaceLandmarks:
        rects = self.faces(image)
        if not rects:
            # small faces: retry at full resolution with one pyramid upsample
            if image.shape[1] <= 2 * self.detect_width:
                gray = _to_gray(image)
                rects = sorted(_load("detector")(gray, 1), key=lambda r: r.width() * r.height(), reverse=True)
            if not rects:
                return FaceLandmarks.empty()
        return self.landmarks_in(image, rects[0], n_faces=len(rects))

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
