"""Never destroy a user's file, never drop a frame of a file, stop cleanly on SIGTERM/SIGHUP (issue 19).

Real video files through OpenCV, real dlib, the shipped ONNX weights; `reenact live` in a subprocess
for the signals.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from reenact.cli import main
from reenact.live.capture import ListSource
from reenact.live.runner import LiveRunner
from reenact.live.sinks import FileSink

REPO = Path(__file__).resolve().parents[1]


def _count(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def _video(path: Path, frames: list[np.ndarray], fps: float) -> Path:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    for f in frames:
        writer.write(f)
    writer.release()
    return path


@pytest.fixture(scope="module")
def face(tmp_path_factory, astronaut) -> Path:
    path = tmp_path_factory.mktemp("face") / "face.png"
    cv2.imwrite(str(path), cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA))
    return path


@pytest.fixture(scope="module")
def talking(astronaut, astronaut_points) -> list[np.ndarray]:
    from reenact.synthetic import talking_frames

    frames, _ = talking_frames(astronaut, astronaut_points, 12, period=6)
    return [cv2.resize(f, (256, 256), interpolation=cv2.INTER_AREA) for f in frames]


def _partials(folder: Path) -> list[Path]:
    return list(folder.glob(".*partial*"))


def test_pending_file_in_a_with_block_replaces_the_output_by_one_rename_when_the_block_ends(tmp_path):
    from reenact.outputs import PendingFile

    out = tmp_path / "engine.pt2"
    out.write_bytes(b"the old engine")
    with PendingFile(out) as temp:
        assert temp.parent == out.parent and temp.suffix == ".pt2" and temp != out
        temp.write_bytes(b"the new engine")
        inode = temp.stat().st_ino
        assert out.read_bytes() == b"the old engine"  # untouched until the block ends
    assert out.read_bytes() == b"the new engine" and not _partials(tmp_path)
    assert out.stat().st_ino == inode  # renamed into place, not copied: no moment with half a file


@pytest.mark.parametrize("error", [RuntimeError("the build failed"), KeyboardInterrupt()])
@pytest.mark.parametrize("existing", [False, True])
def test_pending_file_in_a_with_block_that_raises_leaves_no_file_and_no_temp(tmp_path, error, existing):
    from reenact.outputs import PendingFile

    out = tmp_path / "clip.avi"
    if existing:
        out.write_bytes(b"the user's earlier video")
    with pytest.raises(type(error)):
        with PendingFile(out) as temp:
            temp.write_bytes(b"half a vid")
            raise error
    assert not _partials(tmp_path) and list(tmp_path.iterdir()) == ([out] if existing else [])
    if existing:
        assert out.read_bytes() == b"the user's earlier video"


def test_a_video_file_is_replaced_only_when_the_new_one_is_complete(tmp_path):
    out = tmp_path / "out.avi"
    out.write_bytes(b"the user's earlier video")
    frame = np.full((48, 64, 3), 120, np.uint8)
    sink = FileSink(out, fps=10)
    sink.open()
    for _ in range(3):
        sink.send(frame)
    assert out.read_bytes() == b"the user's earlier video", "written in place while running"
    sink.close()
    assert _count(out) == 3 and not _partials(tmp_path)

    again = FileSink(out, fps=10)
    again.open()
    again.send(frame)
    again.abort()  # a failed run
    assert _count(out) == 3 and not _partials(tmp_path)


def test_a_run_that_fails_keeps_the_earlier_file(tmp_path):
    out = tmp_path / "out.avi"
    out.write_bytes(b"the user's earlier video")
    images = [np.full((48, 64, 3), 10 * i, np.uint8) for i in range(6)]

    def process(frame):
        if frame.index == 3:
            raise RuntimeError("a bug half way")
        return frame.image

    src = ListSource(images)
    src.open()
    with pytest.raises(RuntimeError, match="half way"):
        LiveRunner(src, process, [FileSink(out, fps=10)]).run()
    assert out.read_bytes() == b"the user's earlier video" and not _partials(tmp_path)


def test_a_file_driving_a_file_keeps_every_frame(face, talking, tmp_path, capsys):
    """Paced like a camera, a 500 fps file lost most of its frames (the README's own example lost 1-3 of 30)."""
    drive = _video(tmp_path / "fast.avi", talking, fps=500)
    out = tmp_path / "out.avi"
    rc = main(["live", "--target", str(face), "--source", str(drive), "--output", str(out), "--backend", "onnx"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert _count(out) == len(talking) == 12
    assert ", 0 dropped" in captured.out


def test_a_huge_target_is_warned_about(astronaut, talking, tmp_path, capsys):
    """An 8000x6000 photo made an 8000x6000 video file without a word: a file without --size is now
    capped at a long side of 1920 and live says so (issue 18 made the per-frame cost independent of
    the photo); `reenact landmarks` notes the photo's size."""
    big = cv2.resize(astronaut, (3000, 3000), interpolation=cv2.INTER_CUBIC)  # 9 MP
    target = tmp_path / "big.png"
    cv2.imwrite(str(target), big)
    drive = _video(tmp_path / "drive.avi", talking[:2], fps=25)
    out = tmp_path / "out.avi"
    rc = main(["live", "--target", str(target), "--source", str(drive), "--output", str(out),
               "--backend", "onnx", "--max-frames", "1"])
    text = capsys.readouterr().out
    assert rc == 0
    assert "3000x3000" in text and "capped at 1920" in text and "--size" in text, text
    cap = cv2.VideoCapture(str(out))
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (1920, 1920)
    rc = main(["live", "--target", str(target), "--source", str(drive), "--output", str(tmp_path / "small.avi"),
               "--backend", "onnx", "--max-frames", "1", "--size", "640x480"])
    assert rc == 0
    assert "capped" not in capsys.readouterr().out  # the file has the size asked for
    rc = main(["landmarks", str(target), "--json", "--out", str(tmp_path / "check.png")])
    assert rc == 0
    assert any("3000x3000 (9 MP)" in w for w in json.loads(capsys.readouterr().out)["warnings"])


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGHUP"])
def test_sigterm_and_sighup_stop_live_like_ctrl_c(sig, face, talking, tmp_path):
    """Killed with SIGTERM, the mp4 had no index ('moov atom not found') and the exit status was 143."""
    drive = _video(tmp_path / "drive.avi", talking, fps=25)
    out = tmp_path / "out.mp4"
    out.write_bytes(b"the user's earlier video")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "reenact.cli", "live", "--target", str(face), "--source", str(drive),
                             "--loop", "--output", str(out), "--backend", "onnx"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        while not _partials(tmp_path) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _partials(tmp_path), "the run never started writing"
        time.sleep(1.0)
        assert out.read_bytes() == b"the user's earlier video", "replaced before the run ended"
        t0 = time.monotonic()
        proc.send_signal(getattr(signal, sig))
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert time.monotonic() - t0 < 5
    assert "stopped (interrupt)" in stdout
    assert _count(out) > 5 and not _partials(tmp_path)


def test_the_landmark_cache_is_never_half_written(tmp_path, monkeypatch):
    """The cache used a fixed '.tmp' name, no fsync: a crash at the rename left the temporary file behind."""
    from reenact.data.datasets import LandmarkCache

    (tmp_path / "data").mkdir()
    cache = LandmarkCache(tmp_path / "data", cache_dir=tmp_path / "cache")
    cache.entries = {"a.jpg": {"status": "ok"}}
    cache.save()
    good = cache.path.read_bytes()
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])

    def crash(*_a):
        raise OSError("power cut")

    monkeypatch.setattr(os, "replace", crash)
    cache.entries["b.jpg"] = {"status": "no_face"}
    with pytest.raises(OSError):
        cache.save()
    assert synced, "the data must reach the disk before the rename"
    assert cache.path.read_bytes() == good
    assert sorted(p.name for p in cache.dir.iterdir()) == [cache.path.name], "no temporary file left behind"


def test_landmarks_pictures_replace_old_ones_only_when_complete(face, tmp_path, monkeypatch, capsys):
    """The annotated picture was written in place: a failure while writing left half a picture."""
    photo = tmp_path / "face.png"
    photo.write_bytes(face.read_bytes())
    annotated = tmp_path / "face_landmarks.png"
    annotated.write_bytes(b"the user's earlier picture")

    def crash(*_a):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    rc = main(["landmarks", str(photo)])
    err = capsys.readouterr().err
    assert rc == 2 and "No space left" in err and "Traceback" not in err, err
    assert annotated.read_bytes() == b"the user's earlier picture"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["face.png", "face_landmarks.png"]
