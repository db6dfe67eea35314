"""reenact doctor: each check as a function, and the exit code for the output asked for."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reenact.cli import main
from reenact.commands import doctor as d

no_loopback = pytest.mark.skipif(
    d.v4l2loopback_state()["loaded"] is True, reason="this machine has a real v4l2loopback virtual camera"
)


def _weights(tmp_path: Path) -> Path:
    w = tmp_path / "weights"
    w.mkdir()
    (w / "omega.onnx").write_bytes(b"onnx")
    (w / "config.json").write_text("{}")
    return w


@no_loopback
def test_vcam_fails_here_with_the_modprobe_fix() -> None:
    r = d.check_vcam()
    assert r.status == d.FAIL
    assert "sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label=Reenact" in r.fix
    assert "v4l2" in r.summary  # pyvirtualcam's own per-backend failure text


@no_loopback
def test_doctor_exits_non_zero_without_a_virtual_camera(capsys) -> None:
    rc = main(["doctor"])
    out = capsys.readouterr()
    assert rc != 0
    assert "sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label=Reenact" in out.out
    assert "vcam" in out.err


def _clip(folder: Path) -> str:
    """A real (tiny) video file for --source."""
    import cv2
    import numpy as np

    path = folder / "clip.avi"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    for i in range(3):
        w.write(np.full((48, 64, 3), 60 * i, np.uint8))
    w.release()
    return str(path)


def test_doctor_null_output_from_a_video_relaxes_vcam_and_camera(tmp_path: Path, capsys) -> None:
    rc = main(["doctor", "--output", "null", "--source", _clip(tmp_path), "--weights", str(_weights(tmp_path))])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "not needed for this output/source" in out  # vcam FAIL shown, not blocking


def test_doctor_missing_weights_blocks(tmp_path: Path) -> None:
    rc = main(["doctor", "--output", "null", "--source", _clip(tmp_path), "--weights", str(tmp_path)])
    assert rc != 0


def test_doctor_checks_a_video_source_as_live_would(tmp_path: Path, capsys) -> None:
    """A folder or a missing file as --source: live would refuse it, so doctor must not say it can run."""
    weights = _weights(tmp_path)
    for source in (str(tmp_path), str(tmp_path / "missing.mp4")):
        rc = main(["doctor", "--output", "null", "--source", source, "--weights", str(weights)])
        out = capsys.readouterr().out
        assert rc != 0 and "[ FAIL] source" in out, out


def _sys_tree(root: Path, loaded: bool, exclusive: str, devices: dict[str, str]) -> Path:
    if loaded:
        p = root / "module" / "v4l2loopback" / "parameters"
        p.mkdir(parents=True)
        (p / "exclusive_caps").write_text(exclusive + "\n")
    for dev, name in devices.items():
        q = root / "class" / "video4linux" / dev
        q.mkdir(parents=True)
        (q / "name").write_text(name + "\n")
    return root


def test_vcam_ok_and_exclusive_caps_warning(tmp_path: Path) -> None:
    closed = []
    opener = lambda: ("/dev/video9", lambda: closed.append(1))  # noqa: E731
    good = _sys_tree(tmp_path / "a", True, "Y", {"video9": "Reenact"})
    r = d.check_vcam(platform="linux", sys_root=good, open_camera=opener)
    assert r.status == d.OK and "/dev/video9 (Reenact)" in r.summary and closed
    bad = _sys_tree(tmp_path / "b", True, "N", {"video9": "Dummy video device"})
    r = d.check_vcam(platform="linux", sys_root=bad, open_camera=opener)
    assert r.status == d.WARN and "exclusive_caps=1" in r.fix and "modprobe -r" in r.fix


def test_vcam_on_windows_and_macos_points_to_obs(tmp_path: Path) -> None:
    def fail():
        raise RuntimeError("'obs' backend: OBS Virtual Camera is not installed")

    r = d.check_vcam(platform="win32", open_camera=fail)
    assert r.status == d.FAIL and "OBS" in r.fix and "not installed" in r.summary


def test_camera_check_with_fake_captures() -> None:
    class Cap:
        def __init__(self, opened: bool, frame) -> None:
            self.opened, self.frame, self.released = opened, frame, False

        def isOpened(self):  # noqa: N802
            return self.opened

        def read(self):
            return (self.frame is not None), self.frame

        def release(self):
            self.released = True

    cap = Cap(True, np.zeros((480, 640, 3), np.uint8))
    r = d.check_camera(0, opener=lambda i: cap)
    assert r.status == d.OK and "640x480" in r.summary and cap.released
    assert d.check_camera(0, opener=lambda i: Cap(False, None)).status == d.FAIL
    assert d.check_camera(0, opener=lambda i: Cap(True, None)).status == d.FAIL


def test_other_checks_return_results(tmp_path: Path) -> None:
    assert d.check_onnxruntime().status == d.OK
    assert d.check_dlib().status == d.OK
    assert d.check_tensorrt().status in (d.OK, d.WARN)
    assert d.check_weights(_weights(tmp_path)).status == d.OK
    assert d.check_weights(tmp_path / "nothing").status == d.FAIL
    r = d.check_gpu()
    assert r.status in (d.OK, d.WARN)


def test_gpu_check_with_fake_nvidia_smi(monkeypatch) -> None:
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else object())
    r = d.check_gpu(run=lambda cmd: "NVIDIA H200, 570.1\n")
    assert r.status == d.WARN and "H200" in r.summary and "reenact[tensorrt]" in r.fix


@pytest.mark.parametrize(
    ("output", "source", "expect"),
    [("vcam", "0", {"vcam", "camera"}), ("null", "x.mp4", {"source"}), ("window", "1", {"display", "camera"})],
)
def test_required_checks(output: str, source: str, expect: set[str]) -> None:
    assert d.required_checks(output, source) - {"onnxruntime", "weights", "dlib"} == expect
