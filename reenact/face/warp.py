"""Piecewise-affine warping over a Delaunay triangulation of the 68 points plus a border ring.

One implementation for the ``warp`` baseline, the ``guided`` variant's Ω input and the live
paste-back (at crop and at full resolution). The triangulation is computed once on the
canonical template, so every face uses the same triangles and no triangle flips between
frames. A warp is a triangle-index map (``fillConvexPoly``) plus one ``cv2.remap``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from reenact.face.topology import CROP_SIZE, TEMPLATE_256


def ring_points(center: np.ndarray, rx: float, ry: float, n: int = 16) -> np.ndarray:
    """n points on an ellipse around a face: the fixed border of the mesh. [n,2] float32."""
    ang = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([center[0] + rx * np.cos(ang), center[1] + ry * np.sin(ang)], 1).astype(np.float32)


def crop_border(size: int = CROP_SIZE, n_side: int = 4) -> np.ndarray:
    """Points along the border of a size x size crop (corners included). [4*n_side,2]."""
    t = np.linspace(0, size - 1, n_side + 1)[:-1]
    e = float(size - 1)
    top = np.stack([t, np.zeros_like(t)], 1)
    right = np.stack([np.full_like(t, e), t], 1)
    bottom = np.stack([e - t, np.full_like(t, e)], 1)
    left = np.stack([np.zeros_like(t), e - t], 1)
    return np.concatenate([top, right, bottom, left]).astype(np.float32)


def _mesh_points_crop(points: np.ndarray, size: int) -> np.ndarray:
    """68 points + an inner ring (which follows the face's similarity, fixed here) + crop border."""
    s = size / CROP_SIZE
    # around the face, inside the crop: the band between ring and border absorbs the motion
    inner = ring_points(np.array([128.0, 128.0]) * s, 118 * s, 122 * s, n=16)
    return np.concatenate([points.astype(np.float32), inner, crop_border(size)])


@lru_cache(maxsize=8)
def triangles(size: int = CROP_SIZE) -> np.ndarray:
    """Delaunay triangles (indices into the mesh points) on the canonical template. [T,3] int32."""
    pts = _mesh_points_crop(TEMPLATE_256 * (size / CROP_SIZE), size)
    sub = cv2.Subdiv2D((-1, -1, size + 2, size + 2))
    for p in pts:
        sub.insert((float(p[0]), float(p[1])))
    tris = []
    for t in sub.getTriangleList():
        corners = t.reshape(3, 2)
        # map each corner back to its vertex index (Subdiv2D returns coordinates, not ids)
        d = np.linalg.norm(pts[None, :, :] - corners[:, None, :], axis=2)
        idx = d.argmin(1)
        if (d[np.arange(3), idx] < 1e-3).all():
            tris.append(idx)
    return np.array(tris, dtype=np.int32)


@dataclass(frozen=True)
class Mesh:
    """Source and destination vertex sets sharing one triangulation."""

    src: np.ndarray  # [V,2] vertices where pixels are read from
    dst: np.ndarray  # [V,2] vertices where pixels are written to
    tris: np.ndarray  # [T,3] vertex indices


def crop_mesh(src68: np.ndarray, dst68: np.ndarray, size: int = CROP_SIZE) -> Mesh:
    """Mesh for warping a canonical crop: 68 points move src->dst, the border ring stays."""
    src68 = np.asarray(src68, np.float32)
    dst68 = np.asarray(dst68, np.float32)
    if src68.shape != (68, 2) or dst68.shape != (68, 2):
        raise ValueError(f"crop_mesh needs two [68,2] arrays, got {src68.shape} and {dst68.shape}")
    return Mesh(_mesh_points_crop(src68, size), _mesh_points_crop(dst68, size), triangles(size))


def image_mesh(src68: np.ndarray, dst68: np.ndarray, to_crop: np.ndarray, size: int = CROP_SIZE) -> Mesh:
    """Mesh in full-image pixels: the crop mesh mapped back with the crop->image affine ``to_crop^-1``.

    ``to_crop`` is the 2x3 image->crop matrix. The crop border ring becomes a fixed rectangle
    in the image, so the warp stays inside the face's aligned region.
    """
    Minv = cv2.invertAffineTransform(np.asarray(to_crop, np.float64))
    s68 = (src68.astype(np.float64) @ to_crop[:, :2].T + to_crop[:, 2]).astype(np.float32)
    d68 = (dst68.astype(np.float64) @ to_crop[:, :2].T + to_crop[:, 2]).astype(np.float32)
    cm = crop_mesh(s68, d68, size)
    back = lambda p: (p.astype(np.float64) @ Minv[:, :2].T + Minv[:, 2]).astype(np.float32)  # noqa: E731
    return Mesh(back(cm.src), back(cm.dst), cm.tris)


def warp_maps(mesh: Mesh, shape: tuple[int, int], offset: tuple[int, int] = (0, 0)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-pixel source coordinates for a piecewise-affine warp.

    shape: (height, width) of the output region; offset: (x, y) of that region in the
    destination image. Returns map_x, map_y (float32) and a coverage mask (uint8, 1 where a
    triangle covers the pixel).
    """
    h, w = shape
    ox, oy = offset
    n = len(mesh.tris)
    # triangle index map: draw each destination triangle with its id (+1; 0 = none)
    id_img = np.zeros((h, w), np.int32)
    for t, (a, b, c) in enumerate(mesh.tris):
        poly = np.round((mesh.dst[[a, b, c]] - (ox, oy)) * 16).astype(np.int32)
        cv2.fillConvexPoly(id_img, poly, t + 1, lineType=cv2.LINE_8, shift=4)
    index = id_img - 1
    covered = index >= 0
    tri_id = np.where(covered, index, 0)
    # affine dst->src per triangle
    A = np.zeros((n, 2, 3), np.float64)
    for t, (a, b, c) in enumerate(mesh.tris):
        d = mesh.dst[[a, b, c]].astype(np.float64) - (ox, oy)
        s = mesh.src[[a, b, c]].astype(np.float64)
        D = np.concatenate([d, np.ones((3, 1))], 1)  # [3,3]
        try:
            A[t] = np.linalg.solve(D, s).T
        except np.linalg.LinAlgError:
            A[t] = np.array([[1, 0, ox], [0, 1, oy]], np.float64)  # degenerate: identity
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    At = A[tri_id].astype(np.float32)  # [h,w,2,3]
    map_x = At[..., 0, 0] * xs + At[..., 0, 1] * ys + At[..., 0, 2]
    map_y = At[..., 1, 0] * xs + At[..., 1, 1] * ys + At[..., 1, 2]
    map_x = np.where(covered, map_x, xs + ox).astype(np.float32)
    map_y = np.where(covered, map_y, ys + oy).astype(np.float32)
    return map_x, map_y, covered.astype(np.uint8)


def warp_image(image: np.ndarray, mesh: Mesh, shape: tuple[int, int] | None = None, offset: tuple[int, int] = (0, 0),
               border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
    """Warp ``image`` so that pixels at mesh.src land on mesh.dst. Pixels outside the mesh are copied."""
    if shape is None:
        shape = image.shape[:2]
    map_x, map_y, _ = warp_maps(mesh, shape, offset)
    return cv2.remap(image, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=border)


def warp_crop(crop: np.ndarray, src68: np.ndarray, dst68: np.ndarray) -> np.ndarray:
    """Warp a canonical crop so its landmarks move from src68 to dst68."""
    size = crop.shape[0]
    return warp_image(crop, crop_mesh(src68, dst68, size))
