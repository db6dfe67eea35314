"""Landmark tracking on video for the dlib detector: detect once, then follow the face.

Why: HOG detection costs 10-30 ms per 640x480 frame on a small CPU, the shape predictor ~5 ms.
So a frame normally only runs the shape predictor in a box derived from the previous
landmarks, and the detector runs

- on the first frame and whenever the face was lost (full frame, downscaled);
- every ``redetect_every`` frames, in a region around the last box (cheap, bounded size);
- whenever tracking looks wrong: the box jumps or grows/shrinks implausibly between frames,
  or the face patch no longer looks like the face seen at the last detection (the face left
  the frame; the shape predictor itself always returns 68 points, face or not).

A periodic re-detection that finds the face where it is tracked keeps the tracked points; one that
finds it elsewhere, or one after a doubtful frame, starts again from the detector's rect, and the
rect the shape predictor is then given keeps the shape (relative to the landmark box) of the rect
that started tracking. HOG rects come in pyramid
steps of 6/5, and a region searched at another scale can land a step away from the full-frame
detection's; the shape predictor's points move with the rect (the eyes most: a tracked eye read 7 %
more open from frame 10 on, a synthetic shut eye as half open), and a rect flipping between steps
at every re-detection made the landmarks jump. Held, the tracked points keep ``detect``'s convention,
the one the target photo and the calibration are read with.

If the regional detection fails, a full-frame detection follows; if that fails too the
result is empty (``found=False``) and the next frames search the whole frame again, so the
tracker recovers when the face re-enters. With several faces, the largest of the sure ones is
followed (``dlib_detector.rank_faces``); a weak hit alone waits for the thorough search.

The tracker follows a :class:`~reenact.face.dlib_detector.DlibDetector` without importing it (or
dlib): it asks the detector for ``faces(image, region)`` (rectangles, best first),
``scored_faces(image)``, ``landmarks_in(image, rect)``, ``detect(image)``, ``rectangle(x0, y0, x1, y1)``
(a rect of the detector's kind) and ``weak_score`` (below it a hit is weak).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np

from reenact.face.align import align_points
from reenact.face.landmarks import FaceLandmarks, check_image

log = logging.getLogger(__name__)

#: Side of the grey face patch compared between frames (face-loss check).
PATCH = 32
#: Normalised cross-correlation below which the tracked patch is no longer "the face".
MIN_PATCH_NCC = 0.5
#: Largest plausible frame-to-frame move of the box centre, in box sizes.
MAX_JUMP = 0.35
#: Largest plausible frame-to-frame size change of the box (ratio, either way).
MAX_SCALE_CHANGE = 1.3
#: Region searched when re-detecting around the last box: box size times this on each side.
REGION_MARGIN = 0.75
#: In a regional search the region is scaled so the expected face is about this many pixels
#: wide: dlib's HOG window is 80 px, so smaller faces are missed and larger ones waste time.
REGION_FACE_PX = 110
#: The periodic check keeps the tracked points only when the detector's rect is about the tracked one:
#: centres within this many box sizes, sizes within this ratio (one HOG pyramid step is 6/5).
#: Looser, a slow drift of the tracked box would never be corrected.
CONFIRM_SHIFT = 0.1
CONFIRM_SCALE = 1.25
#: A typical HOG rect relative to the landmark box (dx, dy, sw, sh): a little higher and 1.25x larger.
TYPICAL_RECT = (0.0, -0.05, 1.25, 1.25)


@dataclass
class _State:
    """What the tracker remembers between frames."""

    landmarks: FaceLandmarks  # the last result (found)
    rect_from_box: tuple[float, float, float, float]  # detector rect relative to the landmark box
    patch: np.ndarray  # [PATCH,PATCH] float32, zero mean / unit norm, at the last detection
    since_detect: int = 0  # frames tracked since the last detection
    n_faces: int = 1  # faces seen at the last full-frame detection


def _rect_relation(rect, box: tuple[int, int, int, int]) -> tuple[float, float, float, float]:
    """Detector rect as (dx, dy, sw, sh) relative to the landmark box's centre and size.

    The shape predictor was trained on detector rectangles (forehead included), not on
    landmark boxes, so tracking feeds it a rect of the same shape as the detector's.
    """
    bx0, by0, bx1, by1 = box
    bw, bh = max(bx1 - bx0, 1), max(by1 - by0, 1)
    bcx, bcy = (bx0 + bx1) / 2, (by0 + by1) / 2
    rcx, rcy = (rect.left() + rect.right()) / 2, (rect.top() + rect.bottom()) / 2
    return (rcx - bcx) / bw, (rcy - bcy) / bh, rect.width() / bw, rect.height() / bh


def _rect_from(box: tuple[int, int, int, int], rel: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
    """The detector rect (x0, y0, x1, y1) from a landmark box and the detector-rect relation."""
    bx0, by0, bx1, by1 = box
    bw, bh = max(bx1 - bx0, 1), max(by1 - by0, 1)
    cx = (bx0 + bx1) / 2 + rel[0] * bw
    cy = (by0 + by1) / 2 + rel[1] * bh
    w, h = rel[2] * bw, rel[3] * bh
    return int(round(cx - w / 2)), int(round(cy - h / 2)), int(round(cx + w / 2)), int(round(cy + h / 2))


def face_patch(gray: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The aligned face as a small zero-mean, unit-norm grey patch [PATCH,PATCH] float32.

    Aligned on the eyes and nose, so it is comparable across frames whatever the pose in
    the image; normalised, so lighting gain and offset do not matter.
    """
    crop = align_points(points, crop_size=PATCH).crop(gray)
    p = crop.astype(np.float32)
    p -= p.mean()
    n = float(np.linalg.norm(p))
    return p / n if n > 1e-6 else p


def _box_size(box: tuple[int, int, int, int]) -> float:
    return float(np.sqrt(max(box[2] - box[0], 1) * max(box[3] - box[1], 1)))


def _implausible(prev: tuple[int, int, int, int], new: tuple[int, int, int, int],
                 max_scale: float = MAX_SCALE_CHANGE, max_jump: float = MAX_JUMP) -> str | None:
    """Why a frame-to-frame change of the landmark box is not believable (None if it is)."""
    s0, s1 = _box_size(prev), _box_size(new)
    ratio = s1 / s0
    if ratio > max_scale or ratio < 1 / max_scale:
        return f"box size changed x{ratio:.2f}"
    c0 = np.array([(prev[0] + prev[2]) / 2, (prev[1] + prev[3]) / 2])
    c1 = np.array([(new[0] + new[2]) / 2, (new[1] + new[3]) / 2])
    jump = float(np.linalg.norm(c1 - c0)) / s0
    if jump > max_jump:
        return f"box jumped {jump:.2f} box sizes"
    return None



def _confirm(used: tuple[int, int, int, int], rects: list) -> str | None:
    """The periodic check: None when the regional detection ``rects`` found the face in about the
    rect tracking used (``CONFIRM_SHIFT``, ``CONFIRM_SCALE``), else why not."""
    if not rects:
        return "periodic: no face in the region"
    r = rects[0]
    why = _implausible(used, (r.left(), r.top(), r.right(), r.bottom()), CONFIRM_SCALE, CONFIRM_SHIFT)
    return None if why is None else f"periodic: the detector's face is elsewhere ({why})"

class LandmarkTracker:
    """Follows the best face (largest of the sure ones) through a video; one :class:`FaceLandmarks` per frame.

    ``redetect_every``: frames between regional re-detections while tracking (also the
    number of lost frames between thorough full-resolution searches).
    """

    def __init__(self, detector, redetect_every: int = 10) -> None:
        if redetect_every < 1:
            raise ValueError(f"redetect_every must be >= 1, got {redetect_every}")
        self.detector = detector
        self.redetect_every = int(redetect_every)
        self._state: _State | None = None
        self._lost_frames = 0
        #: how the last frame was handled: "detect", "track", "redetect", "full", "lost" (for tests and logs)
        self.last_mode = ""

    def reset(self) -> None:
        """Forget the face (a new video, a seek)."""
        self._state = None
        self._lost_frames = 0
        self.last_mode = ""

    @property
    def tracking(self) -> bool:
        """Whether a face is being followed."""
        return self._state is not None

    # -- one frame ----------------------------------------------------------------------
    def update(self, image: np.ndarray) -> FaceLandmarks:
        """Landmarks of the followed face in this frame; empty (``found=False``) when none."""
        check_image(image)
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        if self._state is None:
            return self._acquire(gray)
        st = self._state
        st.since_detect += 1
        used = _rect_from(st.landmarks.box, st.rect_from_box)
        res = self.detector.landmarks_in(gray, self.detector.rectangle(*used), n_faces=st.n_faces)
        why = _implausible(st.landmarks.box, res.box)
        if why is None:
            ncc = float((face_patch(gray, res.points) * st.patch).sum())
            if ncc < MIN_PATCH_NCC:
                why = f"face patch changed (ncc {ncc:.2f})"
        rects = None  # the periodic check's regional detection, handed on to a re-detection
        if why is None and st.since_detect >= self.redetect_every:
            rects = self._faces_in_region(gray, st.landmarks.box)
            why = _confirm(used, rects)
            if why is None:  # the detector sees the face where it is tracked: keep the tracked points
                st.landmarks, st.patch, st.since_detect = res, face_patch(gray, res.points), 0
                self.last_mode = "redetect"
                return res
        if why is not None:
            log.debug("tracking doubtful (%s); re-detecting", why)
            return self._redetect(gray, why, rects)
        st.landmarks = res
        self.last_mode = "track"
        return res

    # -- detection paths ----------------------------------------------------------------
    def _start(self, gray: np.ndarray, rect, n_faces: int, mode: str,
               relation: tuple[float, float, float, float] | None = None) -> FaceLandmarks:
        """Shape-predict in a detector rect and (re)start tracking from it. ``relation`` (a
        re-anchoring): the rect shape to keep; the points are predicted again in a rect of that
        shape around where the detector's rect found the face."""
        res = self.detector.landmarks_in(gray, rect, n_faces=n_faces)
        if relation is None:
            relation = _rect_relation(rect, res.box)
        else:
            res = self.detector.landmarks_in(gray, self.detector.rectangle(*_rect_from(res.box, relation)), n_faces=n_faces)
        self._state = _State(landmarks=res, rect_from_box=relation, patch=face_patch(gray, res.points), n_faces=n_faces)
        self._lost_frames = 0
        self.last_mode = mode
        return res

    def _lose(self, n_faces: int = 0) -> FaceLandmarks:
        if self._state is not None:
            log.debug("face lost")
        self._state = None
        self._lost_frames += 1
        self.last_mode = "lost"
        return FaceLandmarks.empty(n_faces)

    def _acquire(self, gray: np.ndarray) -> FaceLandmarks:
        """Full-frame search: downscaled every frame; the thorough ``detect`` every N lost frames."""
        found = self.detector.scored_faces(gray)
        if found and found[0][1] >= self.detector.weak_score:
            return self._start(gray, found[0][0], len(found), "detect")
        if found:
            # A weak hit: real faces often score this low when downscaled, and so does clutter.
            # Look again around it with the face at a detector-friendly size; a face is confirmed there.
            r = found[0][0]
            rects = self._faces_in_region(gray, (r.left(), r.top(), r.right(), r.bottom()))
            if rects:
                return self._start(gray, rects[0], len(found), "detect")
        if self._lost_frames % self.redetect_every == 0:
            res = self.detector.detect(gray)  # full resolution / upsampled retry for small faces
            if res.found:
                # no detector rect on this path: assume the typical HOG rect around the landmark box
                self._state = _State(landmarks=res, rect_from_box=TYPICAL_RECT, patch=face_patch(gray, res.points),
                                     n_faces=res.n_faces)
                self._lost_frames = 0
                self.last_mode = "detect"
                return res
        return self._lose()

    def _redetect(self, gray: np.ndarray, why: str, rects: list | None = None) -> FaceLandmarks:
        """Detect in a region around the last box (``rects``: that detection, when this frame's
        periodic check already ran it); fall back to a full-frame search."""
        st = self._state
        assert st is not None
        if rects is None:
            rects = self._faces_in_region(gray, st.landmarks.box)
        if rects:
            return self._start(gray, rects[0], max(st.n_faces, 1), "redetect", relation=st.rect_from_box)
        log.debug("no face around the last box (%s); searching the whole frame", why)
        self._state = None
        res = self._acquire(gray)
        if res.found:
            self.last_mode = "full"
        return res

    def _faces_in_region(self, gray: np.ndarray, box: tuple[int, int, int, int]) -> list:
        """Detector rects in a region around ``box``, the region scaled so the face is ~REGION_FACE_PX."""
        h, w = gray.shape[:2]
        size = _box_size(box)
        m = REGION_MARGIN * size
        x0, y0 = int(max(0, box[0] - m)), int(max(0, box[1] - m * 1.3))  # forehead above the landmarks
        x1, y1 = int(min(w, box[2] + m)), int(min(h, box[3] + m))
        if x1 - x0 < 16 or y1 - y0 < 16:
            return []
        region = gray[y0:y1, x0:x1]
        scale = float(np.clip(REGION_FACE_PX / max(size, 1.0), 0.25, 3.0))
        if abs(scale - 1.0) > 0.1:
            interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            region = cv2.resize(region, None, fx=scale, fy=scale, interpolation=interp)
        else:
            scale = 1.0
        rects = self.detector.faces(np.ascontiguousarray(region))
        return [
            self.detector.rectangle(int(r.left() / scale) + x0, int(r.top() / scale) + y0,
                                    int(r.right() / scale) + x0, int(r.bottom() / scale) + y0)
            for r in rects
        ]
