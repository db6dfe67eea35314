"""dlib's face-recognition ResNet in PyTorch, for the opt-in ``identity`` training loss.

The network is the one behind ``reenact eval``'s identity distance
(``dlib_face_recognition_resnet_model_v1.dat`` in ``face-recognition-models``): a 29-layer
ResNet from a 150² RGB face chip to a 128-d descriptor. Its weights are read straight from
dlib's own file (a plain binary format: length-prefixed layer names, packed integers, raw
little-endian float32 tensors; nothing is unpickled or executed) and each batch-norm-turned-affine
layer is folded into the convolution before it. The port matches dlib's
``compute_face_descriptor`` to ~1e-6 on the same chip (tests/test_identity.py).

Because the loss and the eval's identity measure use the same network, a model trained with it
scores an optimistic identity distance: judge it beside the images and the other measures.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reenact.errors import WeightsError

#: Face chip side and padding, as dlib's ``compute_face_descriptor`` extracts it.
CHIP_SIZE = 150
CHIP_PADDING = 0.25
#: Per-channel means (R, G, B) that dlib's ``input_rgb_image_sized`` subtracts; it then divides by 256.
_RGB_MEAN = (122.782, 117.001, 104.298)
#: Output channels of the 14 residual blocks after the stem (dlib's alevel4 ... alevel0).
_BLOCKS = (32, 32, 32, 64, 64, 64, 64, 128, 128, 128, 256, 256, 256, 256)
#: Blocks that halve the resolution (``ares_down``): the first of each level, and alevel0.
_DOWN = frozenset({3, 7, 10, 13})
_N_CONV = 1 + 2 * len(_BLOCKS)


class _Reader:
    """dlib's serialisation primitives over a bytes buffer."""

    def __init__(self, buf: bytes, pos: int) -> None:
        self.buf, self.pos = buf, pos

    def int(self) -> int:
        # one header byte (low nibble: byte count, bit 7: sign), then little-endian magnitude
        head = self.buf[self.pos]
        n = head & 0x0F
        if n > 8 or self.pos + 1 + n > len(self.buf):
            raise ValueError("bad packed integer")
        value = int.from_bytes(self.buf[self.pos + 1 : self.pos + 1 + n], "little")
        self.pos += 1 + n
        return -value if head & 0x80 else value

    def tensor(self) -> np.ndarray:
        if self.int() != 2:
            raise ValueError("unknown tensor version")
        shape = [self.int() for _ in range(4)]
        count = int(np.prod(shape))
        end = self.pos + 4 * count
        if count <= 0 or end > len(self.buf):
            raise ValueError("tensor runs past the end of the file")
        out = np.frombuffer(self.buf, "<f4", count, self.pos).reshape(shape).astype(np.float32)
        self.pos = end
        return out


def _after(buf: bytes, name: bytes) -> list[int]:
    """Offsets just after every serialised string ``name`` (dlib: packed length, then the bytes)."""
    return [m.end() for m in re.finditer(re.escape(bytes([1, len(name)]) + name), buf)]


def read_dlib_resnet(path: str | Path) -> tuple[list[tuple[np.ndarray, np.ndarray, int, int]], np.ndarray]:
    """(convs, fc) from dlib's file: per convolution (weight [O,I,k,k], bias [O], stride, padding)
    with its affine layer folded in, and the final fully connected matrix [256,128]."""
    path = Path(path)
    try:
        buf = path.read_bytes()
    except OSError as e:
        raise WeightsError(f"cannot read the dlib face-recognition model {path}: {e}",
                           hint="pip install --force-reinstall face-recognition-models") from e
    try:
        if not buf.startswith(b"\x01\x01\x01\x0dloss_metric_2"):
            raise ValueError("not a dlib metric-learning network")
        convs = []
        for at in _after(buf, b"con_4"):
            r = _Reader(buf, at)
            flat = r.tensor().ravel()
            n_out, kh, kw, sy, sx, py, px = (r.int() for _ in range(7))
            n_in = (flat.size - n_out) // (n_out * kh * kw)
            if n_in * n_out * kh * kw + n_out != flat.size or kh != kw or sy != sx or py != px:
                raise ValueError("unexpected convolution layout")
            w = flat[: n_out * n_in * kh * kw].reshape(n_out, n_in, kh, kw)
            convs.append((w, flat[n_out * n_in * kh * kw :], sy, py))
        affines = []
        for at in _after(buf, b"affine_"):
            t = _Reader(buf, at).tensor().ravel()
            affines.append((t[: t.size // 2], t[t.size // 2 :]))
        fcs = _after(buf, b"fc_2")
        if len(convs) != _N_CONV or len(affines) != _N_CONV or len(fcs) != 1:
            raise ValueError(f"{len(convs)} convolutions, {len(affines)} affine layers, {len(fcs)} fc layers")
        r = _Reader(buf, fcs[0])
        n_out, n_in = r.int(), r.int()
        fc = r.tensor().reshape(n_in, n_out)
    except (ValueError, IndexError) as e:
        raise WeightsError(f"{path} is not dlib's face-recognition ResNet as expected ({e})",
                           hint="pip install --force-reinstall face-recognition-models") from e
    folded = []
    for (w, b, stride, pad), (gamma, beta) in zip(convs, affines, strict=True):
        if gamma.size != w.shape[0]:
            raise WeightsError(f"{path}: an affine layer does not match its convolution")
        folded.append((w * gamma[:, None, None, None], b * gamma + beta, stride, pad))
    return folded, fc


def _add(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's add_prev: tensors of different channels/sizes add where they overlap, zero elsewhere."""
    shape = [max(x, y) for x, y in zip(a.shape, b.shape, strict=True)]

    def pad(t: torch.Tensor) -> torch.Tensor:
        return F.pad(t, (0, shape[3] - t.shape[3], 0, shape[2] - t.shape[2], 0, shape[1] - t.shape[1]))

    return pad(a) + pad(b)


class FaceIdNet(nn.Module):
    """[B,3,150,150] RGB chips in 0..255 -> [B,128] dlib face descriptors (frozen)."""

    def __init__(self, convs: list[tuple[np.ndarray, np.ndarray, int, int]], fc: np.ndarray) -> None:
        super().__init__()
        for i, (w, b, _, _) in enumerate(convs):
            self.register_buffer(f"w{i}", torch.from_numpy(np.ascontiguousarray(w)))
            self.register_buffer(f"b{i}", torch.from_numpy(np.ascontiguousarray(b)))
        self.register_buffer("fc", torch.from_numpy(np.ascontiguousarray(fc)))
        self.register_buffer("mean", torch.tensor(_RGB_MEAN).view(1, 3, 1, 1))
        self._geom = [(s, p) for _, _, s, p in convs]

    def _conv(self, x: torch.Tensor, i: int) -> torch.Tensor:
        stride, pad = self._geom[i]
        return F.conv2d(x, getattr(self, f"w{i}"), getattr(self, f"b{i}"), stride=stride, padding=pad)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        x = (rgb - self.mean) / 256.0
        x = F.max_pool2d(F.relu(self._conv(x, 0)), 3, 2)
        i = 1
        for n in range(len(_BLOCKS)):
            y = self._conv(F.relu(self._conv(x, i)), i + 1)
            i += 2
            x = F.relu(_add(y, F.avg_pool2d(x, 2, 2) if n in _DOWN else x))
        return x.mean((2, 3)) @ self.fc


def load_face_id_net(path: str | Path | None = None) -> FaceIdNet:
    """The frozen network, from ``face-recognition-models``' file unless ``path`` is given."""
    if path is None:
        from reenact.face.dlib_detector import model_file

        path = model_file("dlib_face_recognition_resnet_model_v1.dat")
    net = FaceIdNet(*read_dlib_resnet(path))
    return net.eval().requires_grad_(False)


def chip_affine(points: np.ndarray) -> np.ndarray:
    """[2,3] affine from chip pixels (x, y, 1) to image pixels: dlib's ``get_face_chip_details``
    for these 68 points (rounded, as dlib stores them) and its chip-to-rectangle mapping."""
    import dlib

    pts = np.asarray(points, np.float64)
    if pts.shape != (68, 2) or not np.all(np.isfinite(pts)):
        raise ValueError(f"chip_affine needs finite [68,2] landmarks, got {pts.shape}")
    x0, y0 = np.floor(pts.min(0)).astype(int)
    x1, y1 = np.ceil(pts.max(0)).astype(int)
    parts = [dlib.point(int(round(x)), int(round(y))) for x, y in pts]
    det = dlib.get_face_chip_details(dlib.full_object_detection(dlib.rectangle(x0, y0, x1, y1), parts),
                                     CHIP_SIZE, CHIP_PADDING)
    r = det.rect
    c = np.array([(r.left() + r.right()) / 2, (r.top() + r.bottom()) / 2])
    cos, sin = np.cos(det.angle), np.sin(det.angle)
    corners = np.array([[r.left(), r.top()], [r.right(), r.top()], [r.right(), r.bottom()]]) - c
    src = corners @ np.array([[cos, sin], [-sin, cos]]) + c  # the rectangle's corners, rotated by angle
    dst = np.array([[0, 0], [det.cols - 1, 0], [det.cols - 1, det.rows - 1]], np.float64)
    # solve [dst, 1] @ A.T = src for the 2x3 A
    return np.linalg.solve(np.c_[dst, np.ones(3)], src).T


def chip_grid(points: np.ndarray, size: int, jitter: np.ndarray | None = None) -> torch.Tensor:
    """[B,150,150,2] ``grid_sample`` grid (align_corners=True) that cuts each face's chip out of a
    ``size``² image. ``jitter`` [B,3] (dx, dy in chip pixels, log-scale) perturbs each chip."""
    pts = np.asarray(points, np.float64)
    if pts.ndim != 3 or pts.shape[1:] != (68, 2):
        raise ValueError(f"chip_grid needs [B,68,2] points, got {pts.shape}")
    ys, xs = np.mgrid[0:CHIP_SIZE, 0:CHIP_SIZE].astype(np.float64)
    half = (CHIP_SIZE - 1) / 2
    grids = []
    for k, p in enumerate(pts):
        cx, cy = xs, ys
        if jitter is not None:
            dx, dy, ls = jitter[k]
            cx, cy = (xs - half) * np.exp(ls) + half + dx, (ys - half) * np.exp(ls) + half + dy
        a = chip_affine(p)
        ix = a[0, 0] * cx + a[0, 1] * cy + a[0, 2]
        iy = a[1, 0] * cx + a[1, 1] * cy + a[1, 2]
        grids.append(np.stack([ix, iy], -1) * (2.0 / (size - 1)) - 1.0)
    return torch.from_numpy(np.stack(grids).astype(np.float32))


def descriptors(net: FaceIdNet, images: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """[B,128] descriptors of network-range BGR images [B,3,H,W] in [-1,1], cut by ``grid``."""
    rgb = (images.flip(1) + 1.0) * 127.5
    chips = F.grid_sample(rgb, grid.to(images.device), mode="bilinear", padding_mode="border", align_corners=True)
    return net(chips)
