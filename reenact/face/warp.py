"""Piecewise-affine warping over a Delaunay triangulation of the 68 points plus a border ring.

One implementation for the ``warp`` baseline, the ``guided`` variant's Ω input and the live
paste-back (at crop and at full resolution). The triangulation is computed once on the
canonical template, so every face uses the same triangles and no triangle flips between
frames. A warp is two triangle-index maps (``fillConvexPoly``; see :func:`_maps_at` for why two)
plus one ``cv2.remap``; every pixel is read with the triangle that contains its centre.
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


#: How far below the crop the full-resolution paste-back's mesh reaches, in crop pixels (of 256).
#: Inside the crop the band between the chin (y ~ 214) and the mesh's fixed ring (250) is ~36 px,
#: and a mouth opened wide drops the chin by up to ~27 px (CREMA-D), so the neck was squeezed into
#: a few pixels: a visible seam under the chin. Ω's input warp stays inside the crop.
PASTE_EXTEND = 40


def _mesh_points_crop(points: np.ndarray, size: int, extend: float = 0.0) -> np.ndarray:
    """68 points + an inner ring (which follows the face's similarity, fixed here) + crop border.

    ``extend`` > 0: the mesh reaches that far below the crop (the ring's lower half and the border's
    bottom moved down), for the paste-back at full resolution."""
    s = size / CROP_SIZE
    # around the face, inside the crop: the band between ring and border absorbs the motion
    inner = ring_points(np.array([128.0, 128.0]) * s, 118 * s, 122 * s, n=16)
    if extend <= 0:
        return np.concatenate([points.astype(np.float32), inner, crop_border(size)])
    c, ry = 128.0 * s, 122.0 * s
    below = inner[:, 1] > c
    inner[below, 1] = c + (inner[below, 1] - c) * (ry + extend) / ry
    border = crop_border(size)
    border[:, 1] *= (size - 1 + extend) / (size - 1)  # the rectangle stretched down, corners kept at the top
    return np.concatenate([points.astype(np.float32), inner, border])


@lru_cache(maxsize=8)
def triangles(size: int = CROP_SIZE, extend: float = 0.0) -> np.ndarray:
    """Delaunay triangles (indices into the mesh points) on the canonical template. [T,3] int32."""
    pts = _mesh_points_crop(TEMPLATE_256 * (size / CROP_SIZE), size, extend)
    sub = cv2.Subdiv2D((-1, -1, size + 2, int(np.ceil(size + extend)) + 2))
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


def crop_mesh(src68: np.ndarray, dst68: np.ndarray, size: int = CROP_SIZE, extend: float = 0.0) -> Mesh:
    """Mesh for warping a canonical crop: 68 points move src->dst, the border ring stays
    (``extend``: the mesh reaches that far below the crop, see ``_mesh_points_crop``)."""
    src68 = np.asarray(src68, np.float32)
    dst68 = np.asarray(dst68, np.float32)
    if src68.shape != (68, 2) or dst68.shape != (68, 2):
        raise ValueError(f"crop_mesh needs two [68,2] arrays, got {src68.shape} and {dst68.shape}")
    extend = float(extend)
    return Mesh(_mesh_points_crop(src68, size, extend), _mesh_points_crop(dst68, size, extend), triangles(size, extend))


def image_mesh(src68: np.ndarray, dst68: np.ndarray, to_crop: np.ndarray, size: int = CROP_SIZE,
               extend: float = 0.0) -> Mesh:
    """Mesh in full-image pixels: the crop mesh mapped back with the crop->image affine ``to_crop^-1``.

    ``to_crop`` is the 2x3 image->crop matrix. The crop border ring becomes a fixed rectangle
    in the image, so the warp stays inside the face's aligned region; ``extend`` (crop pixels, the
    paste-back's ``PASTE_EXTEND``) lets that region reach below the crop.
    """
    Minv = cv2.invertAffineTransform(np.asarray(to_crop, np.float64))
    s68 = (src68.astype(np.float64) @ to_crop[:, :2].T + to_crop[:, 2]).astype(np.float32)
    d68 = (dst68.astype(np.float64) @ to_crop[:, :2].T + to_crop[:, 2]).astype(np.float32)
    cm = crop_mesh(s68, d68, size, extend)
    back = lambda p: (p.astype(np.float64) @ Minv[:, :2].T + Minv[:, 2]).astype(np.float32)  # noqa: E731
    return Mesh(back(cm.src), back(cm.dst), cm.tris)


def warp_maps(mesh: Mesh, shape: tuple[int, int], offset: tuple[int, int] = (0, 0),
              step: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-pixel source coordinates for a piecewise-affine warp.

    shape: (height, width) of the output region; offset: (x, y) of that region in the
    destination image. ``step`` > 1 computes the maps on a grid ``step`` times coarser and
    resizes them (bilinear): much faster for large regions, exact inside triangles and off by
    a fraction of a pixel only within ``step`` pixels of a triangle edge. Returns map_x, map_y
    (float32, source pixel coordinates) and a coverage mask (uint8, 1 where a triangle covers).
    """
    h, w = shape
    ox, oy = offset
    if step > 1:
        # One extra grid sample beyond each edge: cv2.resize clamps at its border instead of
        # extrapolating, which read the region's outermost pixels up to half a pixel off.
        gh, gw = -(-h // step) + 2, -(-w // step) + 2
        # grid sample j sits at full-res coordinate (j - 0.5) * step - 0.5, which is where
        # cv2.resize (pixel-centre convention) reads it back from once `step` pixels are cut off
        gx = (np.arange(gw, dtype=np.float32) - 0.5) * step - 0.5
        gy = (np.arange(gh, dtype=np.float32) - 0.5) * step - 0.5
        coarse_dst = (mesh.dst - (ox, oy) + 0.5) / step + 0.5
        mx, my, cov = _maps_at(mesh, coarse_dst, gx, gy, ox, oy)
        size = (gw * step, gh * step)
        cut = (slice(step, step + h), slice(step, step + w))
        mx = cv2.resize(mx, size, interpolation=cv2.INTER_LINEAR)[cut]
        my = cv2.resize(my, size, interpolation=cv2.INTER_LINEAR)[cut]
        cov = cv2.resize(cov, size, interpolation=cv2.INTER_NEAREST)[cut]
        return mx, my, cov
    return _maps_at(mesh, mesh.dst - (ox, oy), np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32), ox, oy)


def _fold_and_squeeze(mesh: Mesh) -> tuple[np.ndarray, np.ndarray]:
    """Per triangle: folded (dst orientation differs from src) and squeeze (src area / dst area)."""
    s, d = _signed_areas(mesh.src, mesh.tris), _signed_areas(mesh.dst, mesh.tris)
    folded = np.sign(s) != np.sign(d)
    return folded, np.where(folded, np.inf, np.abs(s) / np.maximum(np.abs(d), 1e-9))


def draw_order(mesh: Mesh, squeezed_last: bool = False) -> np.ndarray:
    """Triangle ids in the order they are rasterised: folded ones first (their well-shaped
    neighbours then own the pixels they overlap), the rest by squeeze, least squeezed last
    (or, with ``squeezed_last``, most squeezed last)."""
    return _order(*_fold_and_squeeze(mesh), squeezed_last)


def _order(folded: np.ndarray, squeeze: np.ndarray, squeezed_last: bool) -> np.ndarray:
    key = np.where(folded, -np.inf, squeeze if squeezed_last else -squeeze)
    return np.argsort(key, kind="stable")


def _signed_areas(v: np.ndarray, tris: np.ndarray) -> np.ndarray:
    a, b, c = (v[tris[:, k]].astype(np.float64) for k in range(3))
    return 0.5 * ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))


def _id_map(polys: np.ndarray, h: int, w: int, order: np.ndarray) -> np.ndarray:
    """Triangle id per pixel (-1: none), the triangle drawn last winning shared pixels.
    ``polys``: [T,3,2] int32 destination corners in 1/16 pixel."""
    id_img = np.zeros((h, w), np.int32)
    for t in order.tolist():
        cv2.fillConvexPoly(id_img, polys[t], t + 1, lineType=cv2.LINE_8, shift=4)
    return id_img - 1


def _min3(x: np.ndarray) -> np.ndarray:
    """x.min(-1) for a last axis of 3 (numpy reduces so short an axis ~20x slower: 204 vs 9 µs on [5800,3])."""
    return np.minimum(np.minimum(x[..., 0], x[..., 1]), x[..., 2])


def _maps_at(mesh: Mesh, grid_dst: np.ndarray, xs1: np.ndarray, ys1: np.ndarray, ox: int, oy: int):
    """Maps sampled at region coordinates xs1 x ys1; ``grid_dst`` is mesh.dst in grid pixels.

    Rasterising the triangle ids marks every pixel an edge touches, so an edge pixel can get
    a triangle its centre lies outside. A triangle squeezed thin (an open mouth pulls the lip
    corner towards the nose) maps half a pixel to many source pixels, so reading a pixel that
    lies in it with a neighbour's affine map drew a seam. So the ids are drawn twice, tamest
    triangle last and most squeezed last; where they disagree and the squeezed one contains
    the pixel's centre, it reads the pixel (near a vertex, where neither does, every triangle
    is searched). Where both orders agree, one triangle touched the pixel (or several that are
    equally squeezed, e.g. unmoved), so its centre lies in it or the maps agree.
    """
    h, w = len(ys1), len(xs1)
    polys = np.round(grid_dst[mesh.tris] * 16).astype(np.int32)
    folded, squeeze = _fold_and_squeeze(mesh)
    id_a = _id_map(polys, h, w, _order(folded, squeeze, squeezed_last=False))
    id_b = _id_map(polys, h, w, _order(folded, squeeze, squeezed_last=True))
    covered = id_a >= 0
    tri_a = np.where(covered, id_a, 0)
    n = len(mesh.tris)
    # per triangle: barycentric weights as an affine function of (x, y, 1) in region coordinates
    d = mesh.dst[mesh.tris].astype(np.float64) - (ox, oy)  # [T,3,2]
    D = np.concatenate([d, np.ones((n, 3, 1))], 2)  # [T,3,3], rows (x, y, 1) of the vertices
    ok = np.abs(np.linalg.det(D)) > 1e-9
    B = np.zeros((n, 3, 3))
    B[ok] = np.linalg.inv(D[ok]).transpose(0, 2, 1)  # lam = B @ (x, y, 1)
    B[~ok] = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])  # degenerate: vertex 0
    S = mesh.src[mesh.tris].astype(np.float64)  # [T,3,2]
    A = np.einsum("tkc,tkj->tcj", S, B).astype(np.float32)  # [T,2,3]: (x, y, 1) -> source
    ys, xs = np.meshgrid(ys1, xs1, indexing="ij")
    # six 1-D gathers are ~2x faster than gathering A[tri_a] as one [h,w,2,3] array
    c = [np.take(A[:, i, j], tri_a) for i in (0, 1) for j in (0, 1, 2)]
    map_x = c[0] * xs + c[1] * ys + c[2]
    map_y = c[3] * xs + c[4] * ys + c[5]
    # where the two orders disagree, the pixel's centre may lie in the most squeezed triangle
    # that touches it (id_b) rather than the tamest (id_a): then read it with id_b's map
    redo = covered & (id_a != id_b)
    if redo.any():
        ry, rx = np.nonzero(redo)
        tb = id_b[ry, rx]
        p = np.stack([xs[ry, rx], ys[ry, rx], np.ones(len(ry), np.float32)], 1).astype(np.float64)  # [k,3]
        usable = ok & ~folded

        def contains(t: np.ndarray, q: np.ndarray) -> np.ndarray:
            return (_min3(np.einsum("kij,kj->ki", B[t], q)) >= -1e-6) & usable[t]

        in_b = contains(tb, p)
        # near a vertex the centre can lie in a third triangle: search all of them (few pixels)
        lost = ~in_b & ~contains(id_a[ry, rx], p)
        if lost.any():
            lam = np.einsum("tij,kj->kti", B, p[lost])  # [k,T,3]
            score = np.where(usable[None], _min3(lam), -np.inf)
            best = score.argmax(1)
            found = score[np.arange(len(best)), best] >= -1e-6
            at = np.flatnonzero(lost)[found]
            tb[at] = best[found]
            in_b[at] = True
        ry, rx, tb, p = ry[in_b], rx[in_b], tb[in_b], p[in_b].astype(np.float32)
        map_x[ry, rx] = (A[tb, 0] * p).sum(-1)
        map_y[ry, rx] = (A[tb, 1] * p).sum(-1)
    map_x = np.where(covered, map_x, xs + ox).astype(np.float32)
    map_y = np.where(covered, map_y, ys + oy).astype(np.float32)
    return map_x, map_y, covered.astype(np.uint8)


def warp_image(image: np.ndarray, mesh: Mesh, shape: tuple[int, int] | None = None, offset: tuple[int, int] = (0, 0),
               border: int = cv2.BORDER_REPLICATE, step: int = 1, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """Warp ``image`` so that pixels at mesh.src land on mesh.dst. Pixels outside the mesh are copied.

    ``shape``/``offset`` select the output region (default: the whole image); see warp_maps for ``step``.
    ``interpolation`` is OpenCV's; bilinear (the default, what the networks were trained on) halves
    fine detail wherever pixels land between grid points, bicubic keeps most of it.
    """
    if shape is None:
        shape = image.shape[:2]
    map_x, map_y, _ = warp_maps(mesh, shape, offset, step)
    return cv2.remap(image, map_x, map_y, interpolation=interpolation, borderMode=border)


def warp_crop(crop: np.ndarray, src68: np.ndarray, dst68: np.ndarray, step: int = 1) -> np.ndarray:
    """Warp a canonical crop so its landmarks move from src68 to dst68."""
    size = crop.shape[0]
    return warp_image(crop, crop_mesh(src68, dst68, size), step=step)
