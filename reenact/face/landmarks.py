"""68-point landmark detection behind one interface and a registry.

Every detector returns a :class:`FaceLandmarks` for every call: 68 points ``[68,2]``
float32 in image pixels and ``found``. An empty result (``found=False``) is returned when
there is no face, never ``None``. Optional detectors (mediapipe) are imported only in their
own module, only when asked for.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from reenact.errors import ReenactError

log = logging.getLogger(__name__)

N_POINTS = 68


@dataclass(frozen=True)
class FaceLandmarks:
    """One face's 68 landmarks in image pixels, or an empty result."""

    points: np.ndarray = field(default_factory=lambda: np.zeros((N_POINTS, 2), np.float32))  # [68,2] x,y
    found: bool = False
    box: tuple[int, int, int, int] = (0, 0, 0, 0)  # face box x0, y0, x1, y1 in image pixels
    n_faces: int = 0  # faces seen in the frame (the best one is returned: largest of the sure ones)
    score: float = 0.0  # detector confidence where the detector gives one

    @staticmethod
    def empty(n_faces: int = 0) -> FaceLandmarks:
        return FaceLandmarks(n_faces=n_faces)

    def __post_init__(self) -> None:
        if self.points.shape != (N_POINTS, 2):
            raise ValueError(f"landmarks must be [68,2], got {self.points.shape}")


class LandmarkDetector(Protocol):
    """Detects one face's 68 landmarks per image; ``track`` may use the previous frame."""

    name: str

    def detect(self, image: np.ndarray) -> FaceLandmarks:
        """Full detection on one BGR uint8 image, no memory of earlier frames."""
        ...

    def track(self, image: np.ndarray) -> FaceLandmarks:
        """Detection on a video frame, using earlier frames to go faster."""
        ...

    def reset(self) -> None:
        """Forget earlier frames (a new video, a lost face)."""
        ...


#: detector name -> "module:class". Each module imports its library only when built.
DETECTORS: dict[str, str] = {
    "dlib": "reenact.face.dlib_detector:DlibDetector",
    "mediapipe": "reenact.face.mediapipe_detector:MediapipeDetector",
}

_INSTALL_HINT = {
    "dlib": "pip install dlib-bin face-recognition-models",
    "mediapipe": "pip install 'reenact[mediapipe]' (mediapipe 0.10.21, needs numpy<2; use its own virtualenv)",
}


def create_detector(name: str = "dlib", **kwargs) -> LandmarkDetector:
    """Build a detector by name; a missing library gives an error that says how to install it."""
    if name not in DETECTORS:
        raise ReenactError(f"unknown landmark detector {name!r}; expected one of {', '.join(DETECTORS)}")
    module, cls = DETECTORS[name].split(":")
    try:
        mod = importlib.import_module(module)
        return getattr(mod, cls)(**kwargs)
    except ImportError as exc:
        raise ReenactError(f"landmark detector {name!r} is not available: {exc}", hint=_INSTALL_HINT[name]) from exc


def check_image(image: np.ndarray) -> None:
    """Validate a detector input: a uint8 BGR (H,W,3) or grey (H,W) array."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise TypeError(f"image must be uint8, got {image.dtype}")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise ValueError(f"image must be (H,W,3) BGR or (H,W) grey, got shape {image.shape}")


def box_of(points: np.ndarray) -> tuple[int, int, int, int]:
    """Bounding box of landmark points, as ints."""
    x0, y0 = np.floor(points.min(0)).astype(int)
    x1, y1 = np.ceil(points.max(0)).astype(int)
    return int(x0), int(y0), int(x1), int(y1)
