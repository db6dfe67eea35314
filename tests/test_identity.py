"""The torch port of dlib's face-recognition ResNet (the ``identity`` training loss) against dlib itself."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from reenact.errors import WeightsError
from reenact.face.dlib_detector import face_descriptor, model_file
from reenact.inputs import to_net
from reenact.training import losses
from reenact.training.identity import chip_affine, chip_grid, descriptors, load_face_id_net, read_dlib_resnet


@pytest.fixture(scope="module")
def net():
    return load_face_id_net()


def test_port_matches_dlib_on_dlibs_own_chip(net, astronaut, astronaut_points):
    import dlib

    rgb = cv2.cvtColor(astronaut, cv2.COLOR_BGR2RGB)
    parts = [dlib.point(int(round(x)), int(round(y))) for x, y in astronaut_points]
    shape = dlib.full_object_detection(dlib.rectangle(0, 0, 1, 1), parts)
    chip = dlib.get_face_chip(rgb, shape, 150, 0.25)
    want = np.asarray(dlib.face_recognition_model_v1(str(model_file("dlib_face_recognition_resnet_model_v1.dat")))
                      .compute_face_descriptor(chip))
    with torch.no_grad():
        got = net(torch.from_numpy(chip.astype(np.float32)).permute(2, 0, 1)[None])[0].numpy()
    assert np.abs(got - want).max() < 1e-4
    assert np.linalg.norm(want) > 1.0  # a real descriptor, not zeros


def test_chip_affine_cuts_dlibs_chip(astronaut, astronaut_points):
    import dlib

    rgb = cv2.cvtColor(astronaut, cv2.COLOR_BGR2RGB)
    a = chip_affine(astronaut_points)
    mine = cv2.warpAffine(rgb, a, (150, 150), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    parts = [dlib.point(int(round(x)), int(round(y))) for x, y in astronaut_points]
    ref = dlib.get_face_chip(rgb, dlib.full_object_detection(dlib.rectangle(0, 0, 1, 1), parts), 150, 0.25)
    diff = np.abs(mine.astype(np.float64) - ref).mean()
    assert diff < 2.0  # grey levels: the same chip up to interpolation (a 1-px shift costs ~10)
    shifted = cv2.warpAffine(rgb, a @ np.array([[1, 0, 3], [0, 1, 0], [0, 0, 1.0]]), (150, 150),
                             flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    assert np.abs(shifted.astype(np.float64) - ref).mean() > 3 * diff


def test_descriptors_on_crops_match_dlib_and_tell_people_apart(net, shared_data):
    from reenact.face.align import align_points
    from reenact.face.dlib_detector import DlibDetector

    det = DlibDetector()
    crops, pts = [], []
    for path in sorted((shared_data / "london" / "neutral").glob("*.jpg"))[:3]:
        img = cv2.imread(str(path))
        lm = det.detect(img)
        assert lm.found
        al = align_points(lm.points)
        crops.append(al.crop(img))
        pts.append(al.to_crop(lm.points))
    ref = np.stack([face_descriptor(c, p) for c, p in zip(crops, pts, strict=True)])
    with torch.no_grad():
        got = descriptors(net, torch.from_numpy(np.stack([to_net(c) for c in crops])), chip_grid(np.stack(pts), 256)).numpy()
    same = np.linalg.norm(got - ref, axis=1)
    other = np.linalg.norm(got - ref[[1, 2, 0]], axis=1)
    assert same.max() < 0.02  # grid_sample's chip vs dlib's: interpolation only
    assert other.min() > 0.3  # different people (dlib: < 0.6 is the same person)


def test_identity_loss_is_zero_on_the_real_face_and_has_gradients(net, tiny_bank):
    real = torch.from_numpy(np.stack([to_net(c) for c in tiny_bank.crops[:2]]))
    pts = tiny_bank.points[:2]
    rng = np.random.default_rng(0)
    assert losses.identity_loss(net, real, real, pts, rng).item() < 1e-5
    fake = torch.from_numpy(np.stack([to_net(cv2.GaussianBlur(c, (0, 0), 3)) for c in tiny_bank.crops[:2]]))
    fake.requires_grad_(True)
    loss = losses.identity_loss(net, fake, real, pts, rng)
    loss.backward()
    assert loss.item() > 0.02
    assert fake.grad.abs().sum() > 0
    # the chip covers the face only: the crop's corners get no gradient
    assert fake.grad[:, :, :8, :8].abs().sum() == 0


def test_chip_grid_jitter_moves_the_chip(tiny_bank):
    pts = tiny_bank.points[:1]
    g0 = chip_grid(pts, 256)
    g1 = chip_grid(pts, 256, np.array([[2.0, 0.0, 0.0]]))
    step = (g1 - g0)[0, :, :, 0].mean().item() * 255 / 2  # image pixels
    assert 1.0 < abs(step) < 4.0
    with pytest.raises(ValueError, match="68,2"):
        chip_grid(np.zeros((2, 5, 2)), 256)


def test_a_corrupt_or_foreign_file_is_a_clear_error(tmp_path):
    good = model_file("dlib_face_recognition_resnet_model_v1.dat").read_bytes()
    cut = tmp_path / "cut.dat"
    cut.write_bytes(good[: len(good) // 2])
    with pytest.raises(WeightsError, match="not dlib's face-recognition ResNet"):
        read_dlib_resnet(cut)
    junk = tmp_path / "junk.dat"
    junk.write_bytes(b"\x80\x04" + bytes(1000))  # e.g. a pickle: never unpickled, just refused
    with pytest.raises(WeightsError, match="not dlib's face-recognition ResNet"):
        read_dlib_resnet(junk)
    with pytest.raises(WeightsError, match="cannot read"):
        read_dlib_resnet(tmp_path / "missing.dat")
