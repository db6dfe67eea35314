"""One frame in, one frame out: landmarks → smoothing → alignment → Φ → Ω → paste-back.

No threads here (the live runner owns them) and no torch: the networks run through a
:class:`~reenact.inference.backend.Backend`. Everything about a target (landmarks, crop,
mesh, face region) is computed once, in :func:`prepare_target`. A target photo larger than the
output shows it is scaled down to the output's size there, once, so each frame's paste-back costs
what the output size asks, not what the photo's megapixels do.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from reenact.config import MOUTH_INTERIORS
from reenact.errors import InputError, NoFaceError
from reenact.face.align import Alignment, align_points, apply, invert, similarity
from reenact.face.eyes import closed_eyes, draw_lashes, lid_amounts, paint_lids
from reenact.face.landmarks import FaceLandmarks, LandmarkDetector, check_image
from reenact.face.mouth import MouthGuide, driver_mouth_crop, mouth_skin_mean
from reenact.face.topology import TEMPLATE_256
from reenact.face.warp import PASTE_EXTEND, image_mesh, warp_image
from reenact.generate import Generated, generate_crop
from reenact.inputs import from_net, raster

log = logging.getLogger(__name__)

STAGES = ("landmarks", "smooth", "phi", "warp", "omega", "paste")
PASTE_INTERPOLATION = {"linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC, "lanczos": cv2.INTER_LANCZOS4}


@dataclass
class Target:
    """A target face, prepared once: everything the per-frame path reuses."""

    image: np.ndarray  # BGR uint8 the output is composed on: the photo, scaled down to the output size
    points: np.ndarray  # [68,2] landmarks in ``image`` pixels
    align: Alignment  # ``image`` <-> canonical crop
    crop: np.ndarray  # P_t, 256x256x3 uint8 (cut from the photo at its full resolution)
    crop_points: np.ndarray  # L_t, [68,2] in the crop
    roi: tuple[int, int, int, int]  # x0, y0, x1, y1: the crop's footprint in ``image`` (guided: and PASTE_EXTEND below it)
    feather: np.ndarray  # [256,256] float32 in [0,1]: where crop output may change the image
    n_faces: int = 1
    net: dict = field(default_factory=dict)  # per-target network inputs (paper: L_t raster)
    photo_size: tuple[int, int] = (0, 0)  # (width, height) of the photo as loaded, before scaling

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) the target is used at: the size of every output frame."""
        return self.image.shape[1], self.image.shape[0]


@dataclass(frozen=True)
class ReenactorOptions:
    """Per-frame behaviour of the reenactor."""

    smoothing: bool = True  # One Euro smoothing of the source landmarks
    head_motion: bool = False  # also move the target's head (in-plane rotation, scale, shift)
    color_match: bool = False  # paper variant: match the generated face's colour to the target's
    hold_s: float = 0.5  # face lost: keep the last output this long …
    ease_s: float = 0.5  # … then ease back to the target's own face over this long
    full_res_step: int = 2  # coarse-grid factor for the full-resolution warp (1 = exact)
    # Resampling of the full-resolution warp (guided paste-back): "cubic" keeps ~80 % of the target's
    # fine detail where the face moves by fractions of a pixel, "linear" ~45 % (BENCHMARKS.md).
    paste_interpolation: str = "cubic"
    # (width, height) of the largest picture the output shows (the virtual camera's 1280x720): a
    # larger target photo is scaled down to fit it once, when loaded. None: use the photo as it is.
    output_size: tuple[int, int] | None = None
    # Guided weights: "driver" lays the actor's own mouth interior, colour-matched, into J_gen's
    # inner lips (their pixels reach the output, inside the mouth only; Ω trained with the mouth
    # guide also gets it as input); "generated" shows the interior Ω paints. The paper variant
    # always paints it.
    mouth_interior: str = "driver"

    def __post_init__(self) -> None:
        if self.mouth_interior not in MOUTH_INTERIORS:
            raise ValueError(f"mouth_interior must be one of {', '.join(MOUTH_INTERIORS)}, got {self.mouth_interior!r}")
        if self.paste_interpolation not in PASTE_INTERPOLATION:
            raise ValueError(f"paste_interpolation must be one of {', '.join(PASTE_INTERPOLATION)}, "
                             f"got {self.paste_interpolation!r}")
        if self.output_size is not None and (len(self.output_size) != 2 or min(self.output_size) < 1):
            raise ValueError(f"output_size must be (width, height) >= 1, got {self.output_size}")


def _feather_mask(size: int = 256) -> np.ndarray:
    """A soft ellipse over the face in the canonical crop: 1 inside, 0 at the crop border."""
    m = np.zeros((size, size), np.float32)
    s = size / 256
    cv2.ellipse(m, (int(128 * s), int(140 * s)), (int(100 * s), int(112 * s)), 0, 0, 360, 1.0, -1, cv2.LINE_AA)
    k = int(31 * s) | 1
    return cv2.GaussianBlur(m, (k, k), 0)


def fit_size(size: tuple[int, int], box: tuple[int, int] | None) -> tuple[int, int]:
    """(width, height) of an image of ``size`` scaled down to fit inside ``box``, keeping its aspect
    (the letterbox's own rounding); ``size`` itself when it already fits or there is no box."""
    w, h = size
    if box is None:
        return w, h
    scale = min(box[0] / w, box[1] / h)
    if scale >= 1.0:
        return w, h
    return max(1, round(w * scale)), max(1, round(h * scale))


def scale_matrix(size: tuple[int, int], new_size: tuple[int, int]) -> np.ndarray:
    """2x3 affine from pixels of an image of ``size`` to pixels of it resized to ``new_size``
    (OpenCV's pixel-centre convention, as cv2.resize samples)."""
    sx, sy = new_size[0] / size[0], new_size[1] / size[1]
    return np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5]])


def prepare_target(image: np.ndarray, detector: LandmarkDetector, cfg, landmarks: FaceLandmarks | None = None,
                   output_size: tuple[int, int] | None = None) -> Target:
    """Detect and prepare a target image; NoFaceError when there is no face.

    ``output_size`` (width, height): the photo is scaled down once (area-averaged, as the
    output's letterbox would) to fit it, and every frame is composed at that size; the
    networks' 256x256 crop is still cut from the full-resolution photo.
    """
    check_image(image)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    lm = landmarks if landmarks is not None else detector.detect(image)
    if not lm.found:
        raise NoFaceError("no face found in the target image", hint="use a clear, frontal photo of one face (check it with `reenact landmarks IMAGE`)")
    al = align_points(lm.points)
    crop = al.crop(image)
    cpts = al.to_crop(lm.points)
    points = lm.points.astype(np.float32)
    h, w = image.shape[:2]
    size = fit_size((w, h), output_size)
    if size != (w, h):
        S = scale_matrix((w, h), size)  # photo px -> output px
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        points = apply(S, points)
        S3 = np.vstack([S, [0, 0, 1]])
        M = al.M @ np.linalg.inv(S3)  # output px -> crop
        al = Alignment(M=M, Minv=invert(M), crop_size=al.crop_size)
        log.info("target %dx%d scaled to %dx%d for the output, once", w, h, *size)
    bottom = 255 + (PASTE_EXTEND if cfg.variant == "guided" else 0)  # the guided paste-back's mesh reaches below the crop
    corners = al.to_image(np.array([[0, 0], [255, 0], [255, bottom], [0, bottom]], np.float32))
    x0, y0 = np.floor(corners.min(0)).astype(int)
    x1, y1 = np.ceil(corners.max(0)).astype(int) + 1
    roi = (max(0, int(x0)), max(0, int(y0)), min(size[0], int(x1)), min(size[1], int(y1)))
    t = Target(image, points, al, crop, cpts, roi, _feather_mask(), lm.n_faces, photo_size=(w, h))
    if cfg.variant == "paper":
        t.net["L_t"] = raster(cfg, cpts)[None]  # [1,1,256,256]
    if cfg.variant == "guided":
        t.net["mouth_skin"] = mouth_skin_mean(crop, cpts)  # the mouth guide's colour target
        # what a shut lid covers: the eyes inpainted, in the crop and the output image
        t.net["closed"] = closed_eyes(crop, cpts)
        t.net["closed_image"] = closed_eyes(image, points, _crop_scale(al))
    return t


def _crop_scale(al: Alignment) -> float:
    """Image pixels per canonical-crop pixel."""
    return float(1.0 / np.sqrt(abs(np.linalg.det(np.asarray(al.M, np.float64)[:, :2]))))


class Reenactor:
    """Makes a target face copy the expression of the face in each frame.

    ``backend`` runs Φ and Ω (its ``cfg`` is the model config); ``detector`` finds the
    source's landmarks (``track`` is used on video). ``neutral`` is the actor's neutral face
    J_s in the canonical crop (from calibration); without it the mean neutral face is used.
    """

    def __init__(self, backend, detector: LandmarkDetector | None, neutral: np.ndarray | None = None,
                 options: ReenactorOptions | None = None, smoother=None) -> None:
        self.backend = backend
        self.cfg = backend.cfg
        self.detector = detector
        self.options = options or ReenactorOptions()
        self.neutral = (np.asarray(neutral, np.float32) if neutral is not None else TEMPLATE_256.copy())
        if self.neutral.shape != (68, 2):
            raise ValueError(f"neutral landmarks must be [68,2], got {self.neutral.shape}")
        self.calibrated = neutral is not None
        if smoother is None and self.options.smoothing:
            from reenact.face.smoothing import LandmarkSmoother

            smoother = LandmarkSmoother()
        self.smoother = smoother
        self.targets: list[Target] = []
        self.index = 0
        self.timings: dict[str, float] = {}  # last frame's stage times, ms
        self._last_out: np.ndarray | None = None
        self._lost_since: float | None = None
        self._ref_pose: np.ndarray | None = None  # source face's reference alignment (head motion)
        # the last output's driver crop points and alignment when it showed the driver's mouth interior
        self._last_driver: tuple[np.ndarray, Alignment] | None = None
        self.face_found = False
        self.last_points: np.ndarray | None = None  # last frame's source landmarks (image px), None if no face

    # ------------------------------------------------------------------ targets

    def add_target(self, image: np.ndarray, landmarks: FaceLandmarks | None = None) -> Target:
        if self.detector is None and landmarks is None:
            raise InputError("a target needs its landmarks when the reenactor has no detector")
        t = prepare_target(image, self.detector, self.cfg, landmarks, output_size=self.options.output_size)
        self.targets.append(t)
        return t

    @property
    def target(self) -> Target:
        if not self.targets:
            raise InputError("no target set", hint="pass --target face.png")
        return self.targets[self.index]

    def select(self, step: int) -> None:
        """Next (+1) / previous (-1) target."""
        if self.targets:
            self.index = (self.index + step) % len(self.targets)
            self._last_out = None

    def set_neutral(self, neutral: np.ndarray, provisional: bool = False) -> None:
        """New calibration: the actor's neutral face in the canonical crop.

        ``provisional``: a stand-in until calibration (``calibration.RunningNeutral``), updated
        every frame; it does not count as calibrated and keeps the head-motion reference.
        """
        self.neutral = np.asarray(neutral, np.float32)
        if not provisional:
            self.calibrated = True
            self._ref_pose = None

    def status_lines(self) -> list[str]:
        """Lines for the preview overlay."""
        n = len(self.targets)
        return [f"target {self.index + 1}/{n}" if n else "no target",
                "face: tracked" if self.face_found else "face: lost",
                "calibrated" if self.calibrated else "not calibrated (press c)"]

    def reset(self) -> None:
        """Forget tracking and smoothing (new video segment, lost face)."""
        if self.smoother is not None:
            self.smoother.reset()
        if self.detector is not None:
            self.detector.reset()

    # ------------------------------------------------------------------ per frame

    def __call__(self, frame) -> np.ndarray:
        """Process a live Frame (or a bare BGR image); always returns an output image."""
        image = getattr(frame, "image", frame)
        t = float(getattr(frame, "t_capture", time.monotonic()))  # wall clock: hold and ease when lost
        t_smooth = float(getattr(frame, "t_stream", t))  # stream clock: a file smooths alike at any speed
        if getattr(frame, "new_segment", False):
            self.reset()
        t0 = time.perf_counter()
        lm = self.detector.track(image) if self.detector is not None else FaceLandmarks.empty()
        self.timings = {"landmarks": (time.perf_counter() - t0) * 1000}
        self.last_points = lm.points if lm.found else None
        if not lm.found:
            return self.face_lost(t)
        return self.from_landmarks(lm.points, t_smooth, _timed=True, image=image)

    def face_lost(self, t: float) -> np.ndarray:
        """No face: hold the last output briefly, then ease back to the target's own face.

        The output is always made from the target, so the source's pixels never reach it: a last
        output that carried the driver's mouth interior is made again without it before it is held.
        """
        self.face_found = False
        if self._lost_since is None:
            self._lost_since = t
            self.reset()
            self._drop_driver_mouth()
        target = self.target.image
        if self._last_out is None or self._last_out.shape != target.shape:
            return target.copy()
        dt = t - self._lost_since
        o = self.options
        if dt <= o.hold_s:
            return self._last_out
        a = min(1.0, (dt - o.hold_s) / max(o.ease_s, 1e-6))
        out = cv2.addWeighted(self._last_out, 1.0 - a, target, a, 0.0)
        if a >= 1.0:
            self._last_out = None
        return out

    @property
    def uses_driver_mouth(self) -> bool:
        """Whether the driver's mouth interior is used (guided weights, ``mouth_interior='driver'``): laid into
        J_gen's mouth over Ω's output, and given to Ω as well when it was trained with the guide."""
        return self.cfg.variant == "guided" and self.options.mouth_interior == "driver"

    def _drop_driver_mouth(self) -> None:
        """The held output, made again with Ω painting the mouth, when the last one showed the driver's."""
        if self._last_driver is None or self._last_out is None:
            return
        L_s, src_align = self._last_driver
        self._last_driver = None
        timings, self.timings = self.timings, {}
        out = self._generate(self.target, L_s, None)
        self.timings = timings
        self._last_out = self._apply_head_motion(out, src_align) if self.options.head_motion else out

    def from_landmarks(self, points: np.ndarray, t: float, _timed: bool = False,
                       image: np.ndarray | None = None) -> np.ndarray:
        """The output for source landmarks in source-image pixels (replay and benchmarks use this).

        ``t``: the landmarks' time in seconds on the stream's clock (the smoother's ``dt``).
        ``image``: the frame the points were found in, where the mouth guide reads the driver's
        mouth interior (``uses_driver_mouth``); without it Ω gets no guide.
        """
        if not _timed:
            self.timings = {"landmarks": 0.0}
        self.face_found = True
        self._lost_since = None
        tg = self.target
        t0 = time.perf_counter()
        pts = self.smoother(points.astype(np.float32), t) if self.smoother is not None else points.astype(np.float32)
        src_align = align_points(pts)
        L_s = src_align.to_crop(pts)
        # only the current frame's mouth area, only while its face is tracked (face_lost never gets here)
        driver = driver_mouth_crop(image, src_align.M, L_s) if image is not None and self.uses_driver_mouth else None
        t1 = time.perf_counter()
        self.timings["smooth"] = (t1 - t0) * 1000
        out = self._generate(tg, L_s, driver)
        if self.options.head_motion:
            out = self._apply_head_motion(out, src_align)
        self._last_out = out
        self._last_driver = (L_s, src_align) if driver is not None else None
        return out

    def crop_output(self, L_s: np.ndarray, jgen: np.ndarray | None = None, pix2pix: bool = False,
                    driver: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """The generated 256² crop (I_gen) and, for guided, J_gen — for evaluation.

        ``jgen`` (oracle), ``pix2pix`` and ``driver`` (the driver's crop, for the mouth guide; used
        only when ``uses_driver_mouth``) as in :func:`reenact.generate.generate_crop`.
        """
        driver = driver if self.uses_driver_mouth else None
        g = self._run_networks(self.target, L_s, jgen=jgen, pix2pix=pix2pix, driver=driver)
        return g.crop(), (g.jgen if self.cfg.variant == "guided" else None)

    def _run_networks(self, tg: Target, L_s: np.ndarray, **kw) -> Generated:
        """Φ and Ω for the current target through the one generation path live and eval share."""
        return generate_crop(self.cfg, self.backend.phi, self.backend.omega, tg.crop, tg.crop_points, L_s,
                             self.neutral, L_t_image=tg.net.get("L_t"), target_mouth_skin=tg.net.get("mouth_skin"),
                             target_closed=tg.net.get("closed"), **kw)

    def _generate(self, tg: Target, L_s: np.ndarray, driver: np.ndarray | None = None) -> np.ndarray:
        g = self._run_networks(tg, L_s, timings=self.timings, driver=driver)
        t2 = time.perf_counter()
        if self.cfg.variant == "guided":
            out = self._paste_guided(tg, g.jgen, g.out, g.guide)
        else:
            out = self._paste_paper(tg, from_net(g.out))
        self.timings["paste"] = (time.perf_counter() - t2) * 1000
        return out

    # ------------------------------------------------------------------ paste-back

    def _paste_guided(self, tg: Target, jgen: np.ndarray, head: np.ndarray, guide: MouthGuide | None = None) -> np.ndarray:
        """Warp the target (at output size) with the same triangles, add the upscaled residual in the mask."""
        x0, y0, x1, y1 = tg.roi
        jgen_image = tg.align.to_image(jgen)
        mesh = image_mesh(tg.points, jgen_image, tg.align.M, extend=PASTE_EXTEND)  # image-pixel landmarks
        lids = lid_amounts(jgen, tg.crop_points)  # closing eyes: the lids painted as in Ω's input
        scale = _crop_scale(tg.align)
        source = tg.image
        if lids.any():
            if "closed_image" not in tg.net:
                tg.net["closed_image"] = closed_eyes(tg.image, tg.points, scale)
            source = paint_lids(tg.image, tg.net["closed_image"], tg.points, lids, scale)
        region = warp_image(source, mesh, shape=(y1 - y0, x1 - x0), offset=(x0, y0), step=self.options.full_res_step,
                            interpolation=PASTE_INTERPOLATION[self.options.paste_interpolation])
        if lids.any():
            draw_lashes(region, jgen_image, lids, scale, offset=(x0, y0))
        delta = (head[3] * tg.feather)[..., None] * head[:3].transpose(1, 2, 0) * 127.5  # [256,256,3] grey levels
        M = tg.align.Minv.copy()
        M[:, 2] -= (x0, y0)
        up = cv2.warpAffine(delta.astype(np.float32), M, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        out = tg.image.copy()
        res = region.astype(np.float32) + up
        if guide is not None and guide.shown:
            _lay_interior(res, guide, M)
        out[y0:y1, x0:x1] = np.clip(res, 0, 255).astype(np.uint8)
        return out

    def _paste_paper(self, tg: Target, gen: np.ndarray) -> np.ndarray:
        """Paste the generated crop into the face region with a feathered mask."""
        x0, y0, x1, y1 = tg.roi
        if self.options.color_match:
            gen = _match_colour(gen, tg.crop, tg.feather)
        M = tg.align.Minv.copy()
        M[:, 2] -= (x0, y0)
        size = (x1 - x0, y1 - y0)
        up = cv2.warpAffine(gen, M, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
        m = cv2.warpAffine(tg.feather, M, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)[..., None]
        out = tg.image.copy()
        base = out[y0:y1, x0:x1].astype(np.float32)
        out[y0:y1, x0:x1] = np.clip(base * (1 - m) + up * m, 0, 255).astype(np.uint8)
        return out

    # ------------------------------------------------------------------ head motion

    def _apply_head_motion(self, out: np.ndarray, src_align: Alignment) -> np.ndarray:
        """Move the target head by the actor's in-plane rotation, scale and shift since the reference pose.

        The reference is the first face seen after start or calibration. Yaw and pitch are
        not transferred (a 2-D similarity cannot turn a head).
        """
        if self._ref_pose is None:
            self._ref_pose = src_align.Minv.copy()  # crop -> source image at the reference
            return out
        # motion of the actor's face, in crop units: reference crop -> current crop
        G = np.vstack([src_align.M, [0, 0, 1]]) @ np.vstack([self._ref_pose, [0, 0, 1]])
        tg = self.target
        # conjugate into the target image: target image -> crop -> (inverse motion) -> image
        T = np.vstack([tg.align.Minv, [0, 0, 1]]) @ np.linalg.inv(G) @ np.vstack([tg.align.M, [0, 0, 1]])
        h, w = out.shape[:2]
        return cv2.warpAffine(out, T[:2], (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _lay_interior(region: np.ndarray, guide: MouthGuide, crop_to_region: np.ndarray) -> None:
    """Lay the mouth guide's interior (``--mouth-interior driver``) over ``region`` (float32 [h,w,3],
    changed in place) at output resolution: the guide's patch and mask, premultiplied, warped from
    the crop by ``crop_to_region`` into the few output pixels they cover."""
    gx0, gy0, gx1, gy1 = guide.box
    corners = apply(crop_to_region, np.array([[gx0, gy0], [gx1, gy0], [gx1, gy1], [gx0, gy1]], np.float32))
    h, w = region.shape[:2]
    x0, y0 = np.maximum(np.floor(corners.min(0)).astype(int) - 1, 0)
    x1, y1 = np.minimum(np.ceil(corners.max(0)).astype(int) + 2, (w, h))
    if x1 <= x0 or y1 <= y0:
        return
    M = np.asarray(crop_to_region, np.float64).copy()
    M[:, 2] += M[:, :2] @ (gx0, gy0) - (x0, y0)  # patch pixels -> the sub-rectangle
    a = guide.alpha[..., None]
    size = (int(x1 - x0), int(y1 - y0))
    rgb = cv2.warpAffine(guide.patch.astype(np.float32) * a, M, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    alpha = cv2.warpAffine(guide.alpha, M, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)[..., None]
    sub = region[y0:y1, x0:x1]
    sub *= 1.0 - alpha
    sub += rgb


def _match_colour(gen: np.ndarray, ref: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Shift the generated crop's per-channel mean/std inside the mask to the reference's."""
    m = mask > 0.5
    g = gen.astype(np.float32)
    r = ref.astype(np.float32)
    for c in range(3):
        gm, gs = g[..., c][m].mean(), g[..., c][m].std() + 1e-3
        rm, rs = r[..., c][m].mean(), r[..., c][m].std() + 1e-3
        g[..., c] = (g[..., c] - gm) * (rs / gs) + rm
    return np.clip(g, 0, 255).astype(np.uint8)


__all__ = ["Reenactor", "ReenactorOptions", "Target", "fit_size", "prepare_target", "similarity"]
