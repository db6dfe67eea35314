"""Round-trip tests of the pure face geometry: alignment, piecewise-affine warp, flip, rasters.

No detector and no data files: the faces are the canonical template moved by known transforms.
Tolerances are stated per test.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from reenact.face import align, flip, rasterize, warp
from reenact.face.topology import ANCHORS, CROP_SIZE, MIRROR, PARTS, TEMPLATE_256


def _similarity_matrix(scale: float, angle_deg: float, tx: float, ty: float) -> np.ndarray:
    a = np.radians(angle_deg)
    c, s = scale * np.cos(a), scale * np.sin(a)
    return np.array([[c, -s, tx], [s, c, ty]], np.float64)


def _dot_image(shape: tuple[int, int], centre: tuple[float, float], sigma: float = 2.0) -> np.ndarray:
    """A float32 Gaussian dot at a sub-pixel centre (x, y)."""
    h, w = shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.exp(-((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2) / (2 * sigma**2)).astype(np.float32)


def _centroid(img: np.ndarray, near: np.ndarray, radius: int = 12) -> np.ndarray:
    """Intensity-weighted centroid (x, y) of a dot in a window around ``near``."""
    x, y = int(round(near[0])), int(round(near[1]))
    win = img[y - radius : y + radius + 1, x - radius : x + radius + 1].astype(np.float64)
    win = np.clip(win - 0.02 * win.max(), 0, None)  # ignore the faint tails cut by the window
    ys, xs = np.mgrid[y - radius : y + radius + 1, x - radius : x + radius + 1]
    return np.array([(win * xs).sum() / win.sum(), (win * ys).sum() / win.sum()])


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def _textured(size: int, seed: int = 0) -> np.ndarray:
    """A smooth random texture (uint8 BGR): warps of it show errors, and it has no flat areas."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (size // 8, size // 8, 3), dtype=np.uint8)
    return cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)


# -- similarity / alignment --------------------------------------------------------------
def test_similarity_recovers_a_known_transform() -> None:
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 300, (20, 2))
    M = _similarity_matrix(1.7, 23.0, 40.0, -12.5)
    dst = src @ M[:, :2].T + M[:, 2]
    np.testing.assert_allclose(align.similarity(src, dst), M, atol=1e-9)
    # with 0.5 px noise on the destination the fit stays close
    noisy = dst + rng.normal(0, 0.5, dst.shape)
    np.testing.assert_allclose(align.similarity(src, noisy), M, atol=0.05 * np.abs(M).max())


def test_similarity_never_reflects_and_checks_shapes() -> None:
    src = np.array([[0, 0], [10, 0], [0, 10], [7, 3]], np.float64)
    mirrored = src * [-1, 1]
    M = align.similarity(src, mirrored)
    assert np.linalg.det(M[:, :2]) > 0  # best proper rotation, not a mirror
    with pytest.raises(ValueError, match="K,2"):
        align.similarity(src, src[:3])
    with pytest.raises(ValueError, match="same"):
        align.similarity(np.ones((4, 2)), src)


def test_align_points_inverts_a_known_placement() -> None:
    M_face = _similarity_matrix(1.4, -12.0, 150.0, 60.0)  # template (crop) -> image
    pts = align.apply(M_face, TEMPLATE_256)
    al = align.align_points(pts)
    np.testing.assert_allclose(al.to_crop(pts), TEMPLATE_256, atol=1e-3)
    np.testing.assert_allclose(al.to_image(TEMPLATE_256), pts, atol=1e-3)
    assert al.scale == pytest.approx(1 / 1.4, rel=1e-5)
    assert al.angle_deg == pytest.approx(12.0, abs=1e-4)  # the image is turned back by +12 deg
    with pytest.raises(ValueError, match=r"\[68,2\]"):
        align.align_points(pts[:60])


def test_alignment_ignores_the_mouth() -> None:
    """Anchors are eyes and nose: moving the mouth and jaw must not move the crop."""
    pts = align.apply(_similarity_matrix(1.2, 5.0, 30.0, 20.0), TEMPLATE_256)
    smiling = pts.copy()
    smiling[48:68] += np.float32([0.0, 9.0])
    smiling[5:12] += np.float32([0.0, 6.0])
    assert not set(ANCHORS) & set(range(48, 68))
    np.testing.assert_allclose(align.align_points(smiling).M, align.align_points(pts).M, atol=1e-9)


@pytest.mark.parametrize("scale,angle", [(1.3, 0.0), (2.0, 17.0), (0.9, -30.0)])
def test_dot_returns_through_alignment_and_its_inverse(scale: float, angle: float) -> None:
    """A dot drawn in the image, warped into the crop and back (warpAffine both ways), returns within 0.5 px."""
    h, w = 480, 640
    pts = align.apply(_similarity_matrix(scale, angle, 200.0, 80.0), TEMPLATE_256 - 0.0)
    al = align.align_points(pts)
    dot = pts[30] + np.float32([7.3, 4.6])  # near the nose, a sub-pixel position
    img = (_dot_image((h, w), dot, sigma=2.5) * 255).astype(np.float32)
    crop = al.crop(img, border=cv2.BORDER_CONSTANT)
    assert crop.shape == (CROP_SIZE, CROP_SIZE)
    in_crop = _centroid(crop, al.to_crop(dot[None])[0])
    assert np.linalg.norm(in_crop - al.to_crop(dot[None])[0]) < 0.5
    back = al.uncrop(crop, (w, h))
    assert np.linalg.norm(_centroid(back, dot) - dot) < 0.5


# -- piecewise-affine warp ---------------------------------------------------------------
def test_triangulation_covers_the_crop() -> None:
    tris = warp.triangles(CROP_SIZE)
    assert tris.ndim == 2 and tris.shape[1] == 3 and len(tris) > 100
    mesh = warp.crop_mesh(TEMPLATE_256, TEMPLATE_256)
    _, _, covered = warp.warp_maps(mesh, (CROP_SIZE, CROP_SIZE))
    assert covered.mean() > 0.99


def test_warp_with_identical_points_returns_the_image() -> None:
    crop = _textured(CROP_SIZE)
    out = warp.warp_crop(crop, TEMPLATE_256, TEMPLATE_256)
    assert out.shape == crop.shape and out.dtype == crop.dtype
    assert _psnr(out, crop) > 40


def test_full_resolution_warp_with_identical_points_returns_the_image() -> None:
    img = cv2.resize(_textured(256, seed=3), (1280, 720), interpolation=cv2.INTER_CUBIC)
    pts = align.apply(_similarity_matrix(1.6, 8.0, 500.0, 150.0), TEMPLATE_256)
    al = align.align_points(pts)
    mesh = warp.image_mesh(pts, pts, al.M)
    assert _psnr(warp.warp_image(img, mesh), img) > 40


def test_warp_moves_a_marked_point_with_its_landmark() -> None:
    """A pixel at a landmark is read from where that landmark was (exactly), and a dot follows it (crop).

    The dot test allows 1 px: the mesh is only piecewise affine, so a blob sitting on a moved
    vertex is stretched on one side and squeezed on the other and its centroid shifts a little.
    """
    src = TEMPLATE_256.copy()
    dst = src.copy()
    dst[48] = np.round(src[48] + np.float32([-5.0, -4.0]))  # a smile pulls the corner out and up
    dst[54] = np.round(src[54] + np.float32([5.0, -4.0]))
    map_x, map_y, _ = warp.warp_maps(warp.crop_mesh(src, dst), (CROP_SIZE, CROP_SIZE))
    for i in (48, 54):
        x, y = dst[i].astype(int)
        np.testing.assert_allclose([map_x[y, x], map_y[y, x]], src[i], atol=0.01)
    img = (_dot_image((CROP_SIZE, CROP_SIZE), src[48], sigma=1.0) * 255).astype(np.uint8)
    out = warp.warp_crop(img, src, dst)
    assert np.linalg.norm(_centroid(out, dst[48], radius=5) - dst[48]) < 1.0
    # and a point that did not move stays put
    img2 = (_dot_image((CROP_SIZE, CROP_SIZE), src[33], sigma=1.5) * 255).astype(np.uint8)
    assert np.linalg.norm(_centroid(warp.warp_crop(img2, src, dst), src[33], radius=6) - src[33]) < 0.5


def test_full_resolution_warp_moves_a_marked_point() -> None:
    """The same at 1280x720, through image_mesh (the live paste-back path): the mouth opens."""
    h, w = 720, 1280
    src = align.apply(_similarity_matrix(1.8, -6.0, 420.0, 120.0), TEMPLATE_256)
    al = align.align_points(src)
    dst = src.copy()
    dst[[56, 57, 58, 65, 66, 67]] += np.float32([0.0, 10.0])  # the lower lip drops
    dst[57] = np.round(dst[57])
    mesh = warp.image_mesh(src, dst, al.M)
    map_x, map_y, _ = warp.warp_maps(mesh, (h, w))
    x, y = dst[57].astype(int)
    np.testing.assert_allclose([map_x[y, x], map_y[y, x]], src[57], atol=0.02)
    img = (_dot_image((h, w), src[57], sigma=1.0) * 255).astype(np.uint8)
    out = warp.warp_image(img, mesh)
    assert np.linalg.norm(_centroid(out, dst[57], radius=5) - dst[57]) < 1.0


def test_the_extended_paste_mesh_tiles_the_crop_and_the_band_below() -> None:
    ext = warp.PASTE_EXTEND
    tris = warp.triangles(CROP_SIZE, float(ext))
    pts = warp._mesh_points_crop(TEMPLATE_256, CROP_SIZE, ext)
    area = warp._signed_areas(pts, tris)
    assert (area > 0).all()
    assert area.sum() == pytest.approx((CROP_SIZE - 1) * (CROP_SIZE - 1 + ext), rel=1e-5)
    np.testing.assert_array_equal(warp._mesh_points_crop(TEMPLATE_256, CROP_SIZE, 0.0),
                                  warp._mesh_points_crop(TEMPLATE_256, CROP_SIZE))


def test_a_dropped_chin_is_not_cut_off_by_the_paste_back() -> None:
    """A mouth opened wide drops the chin by 27 crop px (CREMA-D's largest). Inside the crop the
    neck under it was squeezed ~3x and the region's edge cut through it; the paste-back's mesh
    reaches PASTE_EXTEND below the crop, so the squeeze stays under 2x and the warp meets the
    untouched image smoothly."""
    h, w = 720, 1280
    src = align.apply(_similarity_matrix(1.8, 0.0, 420.0, 60.0), TEMPLATE_256)
    al = align.align_points(src)
    dst = src.copy()
    drop = np.float32([0.0, 27.0 * 1.8])
    dst[5:12] += drop * np.float32([0.5, 0.8, 0.95, 1.0, 0.95, 0.8, 0.5])[:, None]  # the jaw around the chin
    dst[[56, 57, 58, 65, 66, 67]] += drop
    x = int(round(dst[8, 0]))
    chin_y = float(dst[8, 1])

    def squeeze(extend):
        _, map_y, cov = warp.warp_maps(warp.image_mesh(src, dst, al.M, extend=extend), (h, w))
        col, covered = map_y[:, x].astype(np.float64), cov[:, x] > 0
        rows = np.arange(int(chin_y) + 2, h - 1)
        rows = rows[covered[rows] & covered[rows + 1]]
        return float(np.max(col[rows + 1] - col[rows])), int(rows.max())

    inside, last_inside = squeeze(0.0)
    extended, last_extended = squeeze(warp.PASTE_EXTEND)
    assert inside > 2.5  # the case this guards against
    assert extended < 2.0
    assert last_extended - last_inside == pytest.approx(warp.PASTE_EXTEND * 1.8, abs=3)


@pytest.mark.parametrize("step", [2, 3])
def test_coarse_warp_maps_are_exact_for_an_affine_mesh_up_to_the_region_border(step: int) -> None:
    """Where one affine map covers everything (an unmoved face, or every vertex scaled and shifted
    alike), the coarse grid interpolates it exactly at every pixel, the region's outermost rows and
    columns included (odd sizes, an offset): they used to be read up to half a pixel off."""
    src = align.apply(_similarity_matrix(1.3, 0.0, 300.0, 90.0), TEMPLATE_256)  # upright: the mesh's outer rectangle is its bounding box
    base = warp.image_mesh(src, src, align.align_points(src).M)
    for scale, shift in ((1.0, 0.0), (1.02, 0.7)):
        mesh = warp.Mesh(base.src, (base.src * scale + shift).astype(np.float32), base.tris)
        # a region inside the mesh's outer rectangle (outside it pixels are copied), odd-sized
        x0, y0 = np.ceil(mesh.dst.min(0)).astype(int) + 2
        x1, y1 = np.floor(mesh.dst.max(0)).astype(int) - 2
        w, h = (x1 - x0) | 1, (y1 - y0) | 1
        offset = (int(x0), int(y0))
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        want_x, want_y = (xs + offset[0] - shift) / scale, (ys + offset[1] - shift) / scale
        mx, my, _ = warp.warp_maps(mesh, (h, w), offset, step=step)
        assert mx.shape == (h, w)
        err = np.maximum(np.abs(mx - want_x), np.abs(my - want_y))
        assert err.max() < 0.01, (float(err.max()), np.unravel_index(err.argmax(), err.shape))


def test_warp_maps_region_offset_matches_full_frame() -> None:
    """Warping only a face region (offset) gives the same pixels as warping the whole frame."""
    img = cv2.resize(_textured(128, seed=5), (640, 480), interpolation=cv2.INTER_CUBIC)
    src = align.apply(_similarity_matrix(1.0, 0.0, 200.0, 100.0), TEMPLATE_256)
    dst = src.copy()
    dst[48:60] += np.float32([0.0, 3.0])
    mesh = warp.image_mesh(src, dst, align.align_points(src).M)
    full = warp.warp_image(img, mesh)
    x0, y0, x1, y1 = 150, 60, 500, 420
    part = warp.warp_image(img, mesh, shape=(y1 - y0, x1 - x0), offset=(x0, y0))
    assert np.abs(part.astype(int) - full[y0:y1, x0:x1].astype(int)).max() <= 1


def _open_mouth(points: np.ndarray) -> np.ndarray:
    """The template with a wide-open mouth: lower lip and chin drop, corners pulled in and down."""
    dst = points.astype(np.float32).copy()
    dst[[55, 56, 57, 58, 59, 65, 66, 67]] += np.float32([0.0, 18.0])
    dst[[5, 6, 7, 8, 9, 10, 11]] += np.float32([0.0, 9.0])
    dst[[48, 60]] += np.float32([5.0, 5.0])
    dst[[54, 64]] += np.float32([-5.0, 5.0])
    return dst


def _exact_maps(mesh: warp.Mesh, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The piecewise-affine map evaluated exactly at every pixel centre that lies in exactly one
    unfolded triangle (point-in-triangle by barycentric weights, no rasterisation): x, y, mask."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    mx, my = np.zeros((size, size)), np.zeros((size, size))
    hits = np.zeros((size, size), int)
    unfolded = np.zeros((size, size), bool)
    for t in mesh.tris:
        d, s = mesh.dst[t].astype(np.float64), mesh.src[t].astype(np.float64)
        E = np.stack([d[1] - d[0], d[2] - d[0]], 1)
        if abs(np.linalg.det(E)) < 1e-6:
            continue
        l1, l2 = np.einsum("ij,jhw->ihw", np.linalg.inv(E), np.stack([xs - d[0, 0], ys - d[0, 1]]))
        lam = np.stack([1 - l1 - l2, l1, l2])
        m = (lam > 1e-6).all(0)  # strictly inside: a centre on a shared edge is skipped
        mx[m] = np.einsum("khw,k->hw", lam, s[:, 0])[m]
        my[m] = np.einsum("khw,k->hw", lam, s[:, 1])[m]
        hits += m
        S = np.stack([s[1] - s[0], s[2] - s[0]], 1)
        unfolded |= m & (np.sign(np.linalg.det(S)) == np.sign(np.linalg.det(E)))
    return mx, my, (hits == 1) & unfolded


def test_triangulation_tiles_the_crop() -> None:
    """Every triangle keeps one orientation and together they cover the crop exactly once."""
    tris = warp.triangles(CROP_SIZE)
    area = warp._signed_areas(warp.crop_mesh(TEMPLATE_256, TEMPLATE_256).src, tris)
    assert (area > 0).all()
    assert area.sum() == pytest.approx((CROP_SIZE - 1) ** 2, rel=1e-5)


def test_open_mouth_warp_is_exactly_piecewise_affine_at_every_pixel() -> None:
    """A wide-open mouth squeezes triangles between nostril and lip corner to slivers. Every
    pixel inside one unfolded triangle reads from exactly where that triangle's affine map
    says, edge pixels of the slivers included: no seam. (The rasteriser alone marks a pixel
    an edge merely touches, and reading it with the wrong, extrapolated map drew the seam.)"""
    mesh = warp.crop_mesh(TEMPLATE_256, _open_mouth(TEMPLATE_256))
    s = warp._signed_areas(mesh.src, mesh.tris)
    d = warp._signed_areas(mesh.dst, mesh.tris)
    same = np.sign(s) == np.sign(d)
    assert (np.abs(s) / np.abs(d))[same].max() > 2.5  # the deformation squeezes some triangle hard
    map_x, map_y, covered = warp.warp_maps(mesh, (CROP_SIZE, CROP_SIZE))
    ex, ey, checked = _exact_maps(mesh, CROP_SIZE)
    assert checked.mean() > 0.95 and covered[checked].all()
    err = np.hypot(map_x - ex, map_y - ey)[checked]
    assert err.max() < 0.01


def test_draw_order_puts_folded_and_squeezed_triangles_first() -> None:
    tris = np.array([[0, 1, 2], [0, 1, 2], [0, 1, 2]], np.int32)
    src = np.float32([[0, 0], [10, 0], [0, 10]])
    # the same source triangle drawn as: kept (ratio 1), folded, squeezed 10x
    meshes = [np.float32([[0, 0], [10, 0], [0, 10]]), np.float32([[0, 0], [0, 10], [10, 0]]),
              np.float32([[0, 0], [10, 0], [0, 1]])]
    order = [warp.draw_order(warp.Mesh(src, m, tris[:1]))[0] for m in meshes]
    assert order == [0, 0, 0]
    # three triangles in one mesh (vertices duplicated): folded, then squeezed, then kept
    v_src = np.concatenate([src, src, src])
    v_dst = np.concatenate(meshes)
    m = warp.Mesh(v_src, v_dst, np.array([[0, 1, 2], [3, 4, 5], [6, 7, 8]], np.int32))
    assert warp.draw_order(m).tolist() == [1, 2, 0]


# -- flip --------------------------------------------------------------------------------
def test_mirror_is_an_involution() -> None:
    m = np.array(MIRROR)
    assert sorted(m) == list(range(68))
    np.testing.assert_array_equal(m[m], np.arange(68))


def test_flip_twice_is_the_identity() -> None:
    img = _textured(96)
    pts = align.apply(_similarity_matrix(0.3, 4.0, 10.0, 5.0), TEMPLATE_256)
    np.testing.assert_array_equal(flip.flip_image(flip.flip_image(img)), img)
    np.testing.assert_allclose(flip.flip_points(flip.flip_points(pts, 96), 96), pts, atol=1e-5)


def test_flip_puts_the_left_eye_on_the_right_eye() -> None:
    w = 256
    pts = align.apply(_similarity_matrix(1.0, 9.0, 3.0, -2.0), TEMPLATE_256)
    f = flip.flip_points(pts, w)
    for a, b in (("left_eye", "right_eye"), ("left_brow", "right_brow")):
        (a0, a1), (b0, b1) = PARTS[a], PARTS[b]
        mirrored_a = pts[a0:a1].copy()
        mirrored_a[:, 0] = (w - 1) - mirrored_a[:, 0]
        # as sets: the mirrored left part is exactly the flipped face's right part
        got = {tuple(np.round(p, 3)) for p in f[b0:b1]}
        assert got == {tuple(np.round(p, 3)) for p in mirrored_a}
    # the flipped face is still a face in the template's order: right eye on the image left
    assert f[36:42, 0].mean() < f[42:48, 0].mean()
    # a symmetric face (the template) flipped in its own crop is itself
    np.testing.assert_allclose(flip.flip_points(TEMPLATE_256, CROP_SIZE + 1), TEMPLATE_256, atol=0.02)


def test_flip_moves_image_and_points_together() -> None:
    img = np.zeros((64, 80), np.uint8)
    pts = np.zeros((68, 2), np.float32)
    pts[36] = (12, 20)
    img[20, 12] = 255
    fi, fp = flip.flip_image(img), flip.flip_points(pts, 80)
    x, y = fp[MIRROR[36]]
    assert fi[int(y), int(x)] == 255


# -- landmark images ---------------------------------------------------------------------
def test_gaussian_raster_range_shape_and_peaks() -> None:
    g = rasterize.gaussian_image(TEMPLATE_256, 256, sigma=1.5)
    assert g.shape == (256, 256) and g.dtype == np.float32
    assert g.min() == pytest.approx(-1.0) and g.max() <= 1.0
    for i in (8, 30, 36, 48):
        x, y = np.round(TEMPLATE_256[i]).astype(int)
        assert g[y, x] > 0.5  # near the top of its dot


def test_polyline_raster_range_and_shape() -> None:
    p = rasterize.polyline_image(TEMPLATE_256, 256)
    assert p.shape == (3, 256, 256) and p.dtype == np.float32
    assert p.min() >= -1.0 and p.max() <= 1.0 and p.max() > 0.9
    lips = p[2]
    assert (lips[:140] == -1).all()  # only the lips channel has the lips, and only at the mouth


def test_landmark_image_styles_and_bad_input() -> None:
    assert rasterize.landmark_image(TEMPLATE_256, "gaussian", 128).shape == (1, 128, 128)
    assert rasterize.landmark_image(TEMPLATE_256 / 2, "polylines", 128).shape == (3, 128, 128)
    with pytest.raises(ValueError, match="style"):
        rasterize.landmark_image(TEMPLATE_256, "dots")
    with pytest.raises(ValueError, match="68,2"):
        rasterize.gaussian_image(TEMPLATE_256[:10])
