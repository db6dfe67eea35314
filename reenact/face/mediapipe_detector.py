"""MediaPipe face mesh as a 68-point landmark detector (the optional ``mediapipe`` extra).

The only module that imports mediapipe. Pinned to 0.10.21, the last release whose wheel
bundles the face-mesh models (``mp.solutions.face_mesh``); it needs numpy<2, so it lives in
its own virtualenv (see README). The 468-point mesh is mapped to dlib's 68 points through
:data:`MESH_TO_DLIB68`, so the rest of the pipeline cannot tell which detector ran.

How the map was chosen (reproduce with ``scripts/fit_mediapipe_map.py``):
both detectors were run on the 204 London-set photos (neutral + smiling, ../shared/data/london)
and every face was brought into the canonical 256 crop (64 px between the eyes) by the
similarity fitted on its dlib anchors. On the odd-numbered people (training half), for each
dlib point the mesh vertex with the smallest mean distance was taken, choosing left/right
pairs jointly so the map is mirror-symmetric (vertex v for dlib point k and the mirrored
vertex for dlib point MIRROR[k]; midline points from the mesh's midline vertices); the
residual is the mean remaining offset (mirror-averaged), in crop pixels. On the
even-numbered people (held out) the mean error against dlib is 0.044 interocular distances
with the index map alone and 0.030 with the residual (jaw 0.045, brows 0.038, nose 0.021,
eyes 0.019, lips 0.024); on the astronaut 1.9 px and 1.5 px (44 px between the eyes).
The jaw is the weakest part: dlib's jaw points slide along the face contour, mesh vertices don't.
"""

from __future__ import annotations

import logging

import cv2
import mediapipe as mp
import numpy as np

from reenact.face.align import align_points
from reenact.face.landmarks import FaceLandmarks, box_of, check_image

log = logging.getLogger(__name__)

#: (mesh vertex, residual dx, residual dy) per dlib point, residual in canonical-crop pixels
#: (64 px between the eyes). Subject's right = image left, as in dlib's numbering.
_TABLE: tuple[tuple[int, float, float], ...] = (
    (127, -2.84, -2.13),  #  0 jaw
    (234, -1.11, +1.77),  #  1 jaw
    ( 93, +0.73, +5.36),  #  2 jaw
    (215, -1.56, -1.66),  #  3 jaw
    (172, -3.68, -3.17),  #  4 jaw
    (136, -1.15, +2.75),  #  5 jaw
    (149, -4.53, +1.37),  #  6 jaw
    (176, +3.49, +5.51),  #  7 jaw
    (152, +0.00, +3.91),  #  8 jaw
    (400, -3.49, +5.51),  #  9 jaw
    (378, +4.53, +1.37),  # 10 jaw
    (365, +1.15, +2.75),  # 11 jaw
    (397, +3.68, -3.17),  # 12 jaw
    (435, +1.56, -1.66),  # 13 jaw
    (323, -0.73, +5.36),  # 14 jaw
    (454, +1.11, +1.77),  # 15 jaw
    (264, +2.84, -2.13),  # 16 jaw
    ( 70, -2.47, +3.22),  # 17 right brow
    ( 63, -0.23, -0.33),  # 18 right brow
    (105, +2.82, -0.83),  # 19 right brow
    ( 66, +3.64, -0.04),  # 20 right brow
    (107, +2.56, +3.31),  # 21 right brow
    (336, -2.56, +3.31),  # 22 left brow
    (296, -3.64, -0.04),  # 23 left brow
    (334, -2.82, -0.83),  # 24 left brow
    (293, +0.23, -0.33),  # 25 left brow
    (300, +2.47, +3.22),  # 26 left brow
    (168, +0.00, +1.52),  # 27 nose bridge
    (197, +0.00, -1.14),  # 28 nose bridge
    (  5, +0.00, -3.29),  # 29 nose bridge
    (  4, +0.00, -0.08),  # 30 nose bridge
    ( 75, -0.63, +0.40),  # 31 nose bottom
    ( 99, +1.32, -0.06),  # 32 nose bottom
    (  2, +0.00, +0.18),  # 33 nose bottom
    (328, -1.32, -0.06),  # 34 nose bottom
    (305, +0.63, +0.40),  # 35 nose bottom
    (  7, -0.62, -0.74),  # 36 right eye
    (160, +2.03, -0.14),  # 37 right eye
    (158, +0.96, +0.54),  # 38 right eye
    (155, -0.47, -0.12),  # 39 right eye
    (153, -0.41, -0.12),  # 40 right eye
    (144, +0.67, +0.41),  # 41 right eye
    (362, +0.47, -0.12),  # 42 left eye
    (385, -0.96, +0.54),  # 43 left eye
    (387, -2.03, -0.14),  # 44 left eye
    (249, +0.62, -0.74),  # 45 left eye
    (373, -0.67, +0.41),  # 46 left eye
    (380, +0.41, -0.12),  # 47 left eye
    ( 61, -1.59, +0.62),  # 48 outer lip
    ( 39, -1.48, +1.46),  # 49 outer lip
    ( 37, +0.42, +0.50),  # 50 outer lip
    (  0, +0.00, +1.24),  # 51 outer lip
    (267, -0.42, +0.50),  # 52 outer lip
    (269, +1.48, +1.46),  # 53 outer lip
    (306, +1.59, +0.62),  # 54 outer lip
    (405, +2.99, -0.74),  # 55 outer lip
    (314, +0.18, +0.00),  # 56 outer lip
    ( 17, +0.00, +0.17),  # 57 outer lip
    ( 84, -0.18, +0.00),  # 58 outer lip
    (181, -2.99, -0.74),  # 59 outer lip
    ( 62, +0.69, +1.18),  # 60 inner lip
    ( 38, -0.96, +0.93),  # 61 inner lip
    ( 13, +0.00, +0.97),  # 62 inner lip
    (312, +0.96, +0.93),  # 63 inner lip
    (308, -0.69, +1.18),  # 64 inner lip
    (317, +1.06, -0.36),  # 65 inner lip
    ( 14, +0.00, +0.14),  # 66 inner lip
    ( 87, -1.06, -0.36),  # 67 inner lip
)

#: The index map: dlib point k is mesh vertex MESH_TO_DLIB68[k].
MESH_TO_DLIB68: tuple[int, ...] = tuple(v for v, _, _ in _TABLE)
#: Mean offset from the mesh vertex to the dlib point, [68,2] canonical-crop pixels.
RESIDUAL_256 = np.array([(dx, dy) for _, dx, dy in _TABLE], np.float32)
N_MESH = 468


def mesh_to_dlib68(mesh_px: np.ndarray, residual: bool = True) -> np.ndarray:
    """Map [468,2] (or more, with iris points) mesh pixels to dlib's [68,2] float32 points.

    With ``residual`` the mean vertex-to-dlib offset is added, turned and scaled into the
    face's own frame (the similarity of the mapped points to the canonical crop).
    """
    mesh_px = np.asarray(mesh_px, np.float32)
    if mesh_px.ndim != 2 or mesh_px.shape[0] < N_MESH or mesh_px.shape[1] != 2:
        raise ValueError(f"mesh points must be [468,2] (or [478,2] with irises), got {mesh_px.shape}")
    pts = mesh_px[list(MESH_TO_DLIB68)].copy()
    if residual:
        al = align_points(pts)
        pts += RESIDUAL_256 @ al.Minv[:, :2].T.astype(np.float32)
    return pts.astype(np.float32)


class MediapipeDetector:
    """68 dlib-style points from MediaPipe's face mesh.

    ``detect`` runs the mesh in static-image mode (a face detection every call, up to
    ``max_faces`` faces, the largest returned); ``track`` runs it in video mode, where
    MediaPipe follows the face itself and re-detects only when it loses it (one face).
    """

    name = "mediapipe"

    def __init__(self, max_faces: int = 4, min_confidence: float = 0.5, residual: bool = True) -> None:
        self.max_faces = int(max_faces)
        self.min_confidence = float(min_confidence)
        self.residual = residual  # add the mean mesh-to-dlib offsets (see the module docstring)
        self._static = None
        self._video = None

    def _mesh(self, video: bool):
        """The FaceMesh graph for a mode, built on first use (loading takes ~100 ms)."""
        fm = mp.solutions.face_mesh
        if video:
            if self._video is None:
                self._video = fm.FaceMesh(static_image_mode=False, max_num_faces=1, refine_landmarks=False,
                                          min_detection_confidence=self.min_confidence,
                                          min_tracking_confidence=self.min_confidence)
            return self._video
        if self._static is None:
            self._static = fm.FaceMesh(static_image_mode=True, max_num_faces=self.max_faces, refine_landmarks=False,
                                       min_detection_confidence=self.min_confidence)
        return self._static

    def _run(self, image: np.ndarray, video: bool) -> FaceLandmarks:
        check_image(image)
        h, w = image.shape[:2]
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB if image.ndim == 3 else cv2.COLOR_GRAY2RGB)
        res = self._mesh(video).process(rgb)
        faces = res.multi_face_landmarks or []
        if not faces:
            return FaceLandmarks.empty()
        meshes = [np.array([(p.x * w, p.y * h) for p in f.landmark], np.float32) for f in faces]
        areas = [np.prod(m.max(0) - m.min(0)) for m in meshes]
        mesh = meshes[int(np.argmax(areas))]
        pts = mesh_to_dlib68(mesh, self.residual)
        return FaceLandmarks(points=pts, found=True, box=box_of(pts), n_faces=len(meshes))

    def detect(self, image: np.ndarray) -> FaceLandmarks:
        return self._run(image, video=False)

    def track(self, image: np.ndarray) -> FaceLandmarks:
        return self._run(image, video=True)

    def reset(self) -> None:
        """Forget the followed face: the video-mode graph is rebuilt on the next frame."""
        if self._video is not None:
            self._video.close()
            self._video = None

    def close(self) -> None:
        """Release MediaPipe's graphs."""
        self.reset()
        if self._static is not None:
            self._static.close()
            self._static = None
