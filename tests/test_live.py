"""`reenact live` end to end (real dlib, real ONNX Runtime, real video files) and its bad inputs."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from reenact.cli import main
from reenact.face.dlib_detector import DlibDetector
from reenact.face.topology import mouth_opening

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def warp_weights(tmp_path_factory) -> Path:
    """Guided lite weights whose Ω paints nothing (zero residual): the output is the pure landmark warp.

    The pipeline's mechanics are tested on it; the trained weights are tested in test_weights.py.
    """
    import torch

    from reenact.config import model_config
    from reenact.inference.export import export_onnx
    from reenact.models import build_omega, build_phi
    from reenact.weights_io import save_state, write_config

    folder = tmp_path_factory.mktemp("warp_weights")
    cfg = model_config("guided", "lite")
    torch.manual_seed(0)
    omega = build_omega(cfg)
    torch.nn.init.zeros_(omega.unet.out[1].weight)
    torch.nn.init.zeros_(omega.unet.out[1].bias)
    save_state(folder / "phi.safetensors", build_phi(cfg).state_dict(), "phi", cfg)
    save_state(folder / "omega.safetensors", omega.state_dict(), "omega", cfg)
    write_config(folder, cfg)
    export_onnx(folder)
    return folder


@pytest.fixture(scope="session")
def driver(tmp_path_factory, astronaut, astronaut_points):
    """A driving video: the astronaut opening and closing her mouth (30 frames, 25 fps), and the amounts."""
    from reenact.synthetic import talking_frames

    frames, amounts = talking_frames(astronaut, astronaut_points, 30, period=15)
    path = tmp_path_factory.mktemp("driver") / "drive.avi"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (astronaut.shape[1], astronaut.shape[0]))
    for f in frames:
        w.write(f)
    w.release()
    return path, amounts


@pytest.fixture(scope="session")
def target(tmp_path_factory, astronaut):
    """A target photo: the astronaut mirrored and recoloured (another 'photo' with one face)."""
    img = cv2.convertScaleAbs(astronaut[:, ::-1], alpha=0.9, beta=15)
    path = tmp_path_factory.mktemp("target") / "target.png"
    cv2.imwrite(str(path), img)
    return path


def _read(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        out.append(f)
    return out


def test_live_end_to_end_from_a_driving_video(warp_weights, driver, target, tmp_path, capsys):
    drive, amounts = driver
    out = tmp_path / "out.avi"
    rc = main(["live", "--target", str(target), "--source", str(drive), "--output", str(out), "--weights", str(warp_weights),
               "--backend", "onnx", "--max-frames", "30", "--no-smoothing"])
    assert rc == 0, capsys.readouterr().err
    frames = _read(out)
    assert len(frames) == 30
    det = DlibDetector()
    openings = []
    for f in frames:
        lm = det.detect(f)
        assert lm.found, "the target's face must be in every output frame"
        openings.append(mouth_opening(lm.points))
    # No profile and never still: the driver's own frames stand in for the neutral face; her lips
    # are apart in every frame, so the mouth is the mean face's (measured r = 0.89 over all 30
    # frames; 0.70 when the stand-in was a plain median of the frames)
    r = np.corrcoef(np.asarray(openings), amounts)[0, 1]
    assert r > 0.85, (r, openings)
    assert max(openings) - min(openings) > 0.1
    # the rest of the target photo is untouched (the warp stays in the face region)
    tgt = cv2.imread(str(target))
    assert np.abs(frames[5][:40].astype(int) - tgt[:40]).mean() < 3.0


def test_live_file_output_keeps_the_target_size_unless_size_is_given(warp_weights, driver, target, tmp_path, capsys):
    drive, _ = driver
    h, w = cv2.imread(str(target)).shape[:2]
    for extra, want in (([], (h, w)), (["--size", "320x240"], (240, 320))):
        out = tmp_path / f"out{len(extra)}.avi"
        rc = main(["live", "--target", str(target), "--source", str(drive), "--output", str(out), "--weights",
                   str(warp_weights), "--backend", "onnx", "--max-frames", "3", *extra])
        assert rc == 0, capsys.readouterr().err
        frames = _read(out)
        assert len(frames) == 3 and frames[0].shape[:2] == want


def test_a_session_from_the_library_makes_what_reenact_live_makes(warp_weights, driver, target, tmp_path, capsys):
    """open_session(SessionConfig) is the pipeline `reenact live` runs: the same frames, the same lines said.

    Smoothing is off in both: One Euro steps by capture (wall-clock) time, so with it two runs of one
    file differ a little (measured: up to 63 grey levels on a frame)."""
    import dataclasses

    from reenact.session import SessionConfig, open_session

    drive, _ = driver
    cli_out, lib_out = tmp_path / "cli.avi", tmp_path / "lib.avi"
    rc = main(["live", "--target", str(target), "--source", str(drive), "--output", str(cli_out), "--weights",
               str(warp_weights), "--backend", "onnx", "--max-frames", "5", "--no-smoothing"])
    assert rc == 0, capsys.readouterr().err
    printed = capsys.readouterr().out.splitlines()
    said: list[str] = []
    config = SessionConfig(targets=(target,), source=str(drive), outputs=(str(lib_out),), backend="onnx",
                           weights=warp_weights, max_frames=5, smoothing=False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.fps = 10.0  # type: ignore[misc]
    session = open_session(config, say=said.append)
    stats = session.run()
    assert stats.frames_processed == 5 and session.processor.frames_with_face == 5
    assert [line.replace("lib.avi", "cli.avi") for line in said] == printed[: len(said)] and said[0].startswith("model: ") and any(s.startswith("source: ") for s in said)
    cli_frames, lib_frames = _read(cli_out), _read(lib_out)
    assert len(cli_frames) == len(lib_frames) == 5
    assert all(np.array_equal(a, b) for a, b in zip(cli_frames, lib_frames, strict=True))


def test_paste_back_keeps_the_targets_fine_detail(warp_weights, astronaut, astronaut_points):
    """A 3 % sideways stretch of the source (no similarity removes it) moves every face pixel by a
    fraction of a pixel; the bicubic full-resolution warp keeps most of the photo's fine detail
    where the bilinear one keeps under half of it."""
    from reenact.eval.metrics import fine_detail
    from reenact.face.align import align_points
    from reenact.face.landmarks import FaceLandmarks
    from reenact.inference.backend import create_backend
    from reenact.inference.reenactor import Reenactor, ReenactorOptions

    pts = astronaut_points
    neutral = align_points(pts).to_crop(pts)
    src = pts.copy()
    src[:, 0] = pts[:, 0].mean() + (pts[:, 0] - pts[:, 0].mean()) * 1.03
    x0, y0 = (pts.min(0) + 10).astype(int)
    x1, y1 = (pts.max(0) - 10).astype(int)
    box = (x0, y0, x1, y1)
    backend = create_backend("onnx", warp_weights)
    kept = {}
    for interp in ("cubic", "linear"):
        r = Reenactor(backend, None, neutral=neutral, options=ReenactorOptions(smoothing=False, paste_interpolation=interp))
        r.add_target(astronaut, FaceLandmarks(points=pts, found=True, n_faces=1))
        same = r.from_landmarks(pts, 0.0)  # the neutral face: the photo itself, to float round-off
        assert np.abs(same.astype(int) - astronaut).max() <= 1
        out = r.from_landmarks(src, 0.1)
        assert np.abs(out.astype(int) - astronaut).mean() > 0.1  # the face did move
        kept[interp] = fine_detail(out, box) / fine_detail(astronaut, box)
    assert ReenactorOptions().paste_interpolation == "cubic"
    assert kept["cubic"] > 0.7 and kept["linear"] < 0.6, kept
    with pytest.raises(ValueError, match="paste_interpolation"):
        ReenactorOptions(paste_interpolation="nearest")


def _still_frames(image: np.ndarray, n: int = 45) -> list:
    from reenact.live.capture import Frame

    return [Frame(image=image, index=i, t_capture=i / 30.0, t_media=i / 30.0) for i in range(n)]  # 1.5 s at 30 fps


def _processor(warp_weights, target, cal, auto: bool):
    from reenact.face.dlib_detector import DlibDetector
    from reenact.inference.backend import create_backend
    from reenact.inference.reenactor import Reenactor, ReenactorOptions
    from reenact.session import LiveProcessor

    r = Reenactor(create_backend("onnx", warp_weights), DlibDetector(), options=ReenactorOptions(smoothing=False))
    r.add_target(cv2.imread(str(target)))
    return r, LiveProcessor(r, "default", str(cal), auto_calibrate=auto)


def test_live_calibration_without_a_profile(warp_weights, astronaut, target, tmp_path):
    """No saved profile: the actor's own frames stand in for the neutral face; a still grin is not
    taken as the neutral face (the automatic capture waits for a face at rest); the c hotkey takes
    it anyway, saves it and says what is wrong with it; --no-auto-calibrate keeps the mean face."""
    from reenact.calibration import list_profiles
    from reenact.face.align import align_points

    frames = _still_frames(astronaut)
    cal = tmp_path / "cal"

    r, proc = _processor(warp_weights, target, cal, auto=True)
    mean_face = r.neutral.copy()
    for f in frames[:5]:
        proc(f)
    own = align_points(r.last_points).to_crop(r.last_points)
    assert not r.calibrated and proc.running is not None
    # dlib's points move a little between frames even on a still picture: near, not equal
    upper = list(range(17, 48))
    assert np.abs(r.neutral[upper] - own[upper]).mean() < 0.25 * np.abs(mean_face[upper] - own[upper]).mean()
    assert np.array_equal(r.neutral[48:68], mean_face[48:68])  # her lips are apart: the mean face's mouth
    for f in frames[5:]:
        proc(f)
    assert not r.calibrated and proc.running is not None  # 1.5 s still, but grinning: not her neutral face
    assert "relax your face" in proc.message and list_profiles(cal) == []

    r, proc = _processor(warp_weights, target, cal, auto=False)
    for f in frames:
        proc(f)
    assert not r.calibrated and proc.message == "" and np.array_equal(r.neutral, mean_face)

    r, proc = _processor(warp_weights, target, cal, auto=True)
    proc.calibrate()  # the c hotkey
    for f in frames:
        proc(f)
    assert r.calibrated and "saved" in proc.message and "press c again" in proc.message
    assert list_profiles(cal) == ["default"] and proc.running is None


def test_live_calibrates_itself_from_a_still_relaxed_face(warp_weights, target, tmp_path, shared_data):
    """A relaxed, still face (a London neutral photo) becomes the neutral face after a second; nothing is saved."""
    from reenact.calibration import list_profiles
    from reenact.commands.landmarks import expression_warning
    from reenact.face.dlib_detector import DlibDetector

    det = DlibDetector(detect_width=1000)
    photo = next(img for img in (cv2.imread(str(f)) for f in sorted((shared_data / "london" / "neutral").glob("*.jpg")))
                 if expression_warning(det.detect(img).points) is None)
    cal = tmp_path / "cal"
    r, proc = _processor(warp_weights, target, cal, auto=True)
    mean_face = r.neutral.copy()
    for f in _still_frames(photo):
        proc(f)
    assert r.calibrated and "not saved" in proc.message and proc.running is None
    assert np.abs(r.neutral - mean_face).mean() > 0.5  # the person's own face, not the template
    assert list_profiles(cal) == []


def test_live_runs_with_torch_unimportable(warp_weights, driver, target, tmp_path):
    drive, _ = driver
    out = tmp_path / "out.avi"
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from reenact.cli import main\n"
        f"rc = main(['live', '--target', {str(target)!r}, '--source', {str(drive)!r}, '--output', {str(out)!r}, "
        f"'--weights', {str(warp_weights)!r}, '--max-frames', '5'])\n"
        "assert 'torch' not in sys.modules or sys.modules['torch'] is None\n"
        "sys.exit(rc)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert len(_read(out)) == 5


def test_face_lost_holds_then_eases_back_to_the_target(warp_weights, driver, target):
    from reenact.inference.backend import create_backend
    from reenact.inference.reenactor import Reenactor, ReenactorOptions
    from reenact.live.capture import Frame

    drive, _ = driver
    src = _read(drive)
    # `generated`: the held frame is the last output itself (with `driver` it is made again without the
    # driver's mouth interior: tests/test_mouth_guide.py)
    r = Reenactor(create_backend("onnx", warp_weights), DlibDetector(),
                  options=ReenactorOptions(hold_s=0.5, ease_s=0.5, mouth_interior="generated"))
    tgt = cv2.imread(str(target))
    r.add_target(tgt)
    moving = r(Frame(src[7], 0, 0.0))
    assert r.face_found
    blank = np.full_like(src[0], 127)
    held = r(Frame(blank, 1, 0.2))
    assert not r.face_found and np.array_equal(held, moving)
    halfway = r(Frame(blank, 2, 1.0))  # 0.8 s after loss: 60 % of the way back
    expect = cv2.addWeighted(moving, 0.4, tgt, 0.6, 0)
    assert np.abs(halfway.astype(int) - expect).max() <= 1
    back = r(Frame(blank, 3, 1.5))
    assert np.array_equal(back, tgt)  # the target's own face, no source pixels
    again = r(Frame(src[7], 4, 1.6))  # re-detected
    assert r.face_found and np.abs(again.astype(int) - moving).mean() < 2


def _two_faces(astronaut):
    return np.concatenate([astronaut, astronaut], 1)


@pytest.mark.parametrize("case", ["missing_target", "no_face", "two_faces", "bad_video", "bad_backend"])
def test_live_bad_input_is_a_clear_error(case, warp_weights, driver, target, astronaut, tmp_path, capsys):
    drive, _ = driver
    tgt, src, backend = str(target), str(drive), "onnx"
    expect = {"missing_target": "not found", "no_face": "no face", "two_faces": "2 faces", "bad_video": "video",
              "bad_backend": "unknown backend"}[case]
    if case == "missing_target":
        tgt = str(tmp_path / "nope.png")
    elif case == "no_face":
        tgt = str(tmp_path / "blank.png")
        cv2.imwrite(tgt, np.full((300, 300, 3), 200, np.uint8))
    elif case == "two_faces":
        tgt = str(tmp_path / "two.png")
        cv2.imwrite(tgt, _two_faces(astronaut))
    elif case == "bad_video":
        src = str(tmp_path / "broken.mp4")
        Path(src).write_bytes(b"this is not a video")
    elif case == "bad_backend":
        backend = "warp-drive"
    rc = main(["live", "--target", tgt, "--source", src, "--output", "null", "--weights", str(warp_weights),
               "--backend", backend, "--max-frames", "2"])
    err = capsys.readouterr().err
    assert rc != 0
    assert expect in err.lower(), err
    assert "Traceback" not in err


def test_bench_json_has_the_documented_keys_and_fps_is_frames_over_wall_time(warp_weights, target, tmp_path, capsys):
    out = tmp_path / "bench.json"
    rc = main(["bench", "--weights", str(warp_weights), "--target", str(target), "--frames", "8", "--warmup", "2",
               "--backend", "onnx", "--json", str(out)])
    assert rc == 0, capsys.readouterr().err
    data = json.loads(out.read_text())
    run = data["runs"][0]
    for key in ("backend", "preset", "variant", "fps", "latency_ms", "dropped_frames", "stages"):
        assert key in run
    assert set(run["latency_ms"]) == {"p50", "p95"}
    assert run["fps"] == pytest.approx(run["frames"] / run["wall_s"])
    for stage in ("landmarks", "phi", "warp", "omega", "paste", "total"):
        assert set(run["stages"][stage]) == {"p50_ms", "p95_ms", "max_ms"}
    # every key BENCHMARKS.md documents is written, and nothing it does not document
    import re

    text = (REPO / "BENCHMARKS.md").read_text()
    para = text[text.index("The JSON's keys are unchanged:"):]
    documented = set(re.findall(r"`([a-z0-9_]+)`", para[: para.index("\n\n")]))
    written = {*data, *run, *run["latency_ms"], *(k for s in run["stages"].values() for k in s)}
    assert documented == written, (documented ^ written)


def test_bench_times_the_pipeline_live_runs_with_the_same_options(warp_weights, driver, target, tmp_path, capsys, monkeypatch):
    """`reenact bench` and `reenact live` with the same options build the same session config (but for
    the outputs and the frame count), the same reenactor options and target, and their processors
    make the same frames from the same video, bit for bit. A spy on LiveProcessor.__call__ keeps
    each processor's outputs (it calls the real one). Smoothing is off: One Euro steps by wall-clock
    capture time, which two runs cannot share."""
    import dataclasses

    from reenact import session

    built, outputs = [], {}
    real_open, real_call = session.open_pipeline, session.LiveProcessor.__call__

    def open_pipeline(config, *args, **kwargs):
        pipe = real_open(config, *args, **kwargs)
        built.append((config, pipe))
        return pipe

    def call(self, frame):
        out = real_call(self, frame)
        outputs.setdefault(id(self), []).append(out.copy())
        return out

    monkeypatch.setattr(session, "open_pipeline", open_pipeline)
    monkeypatch.setattr(session.LiveProcessor, "__call__", call)
    drive, _ = driver
    shared = ["--target", str(target), "--source", str(drive), "--weights", str(warp_weights), "--backend", "onnx",
              "--size", "640x360", "--no-smoothing", "--calibration-dir", str(tmp_path / "profiles"), "--threads", "1"]
    rc = main(["live", *shared, "--output", str(tmp_path / "out.avi"), "--max-frames", "6"])
    assert rc == 0, capsys.readouterr().err
    rc = main(["bench", *shared, "--frames", "6", "--warmup", "0", "--json", str(tmp_path / "bench.json")])
    assert rc == 0, capsys.readouterr().err
    (live_cfg, live), (bench_cfg, bench) = built
    assert live_cfg.outputs == (str(tmp_path / "out.avi"),) and bench_cfg.outputs == ("null",)
    assert dataclasses.replace(live_cfg, outputs=(), max_frames=None) == dataclasses.replace(bench_cfg, outputs=(), max_frames=None)
    assert live.reenactor.options == bench.reenactor.options and live.reenactor.options.output_size == (640, 360)
    assert [(t.photo_size, t.size) for t in live.reenactor.targets] == [(t.photo_size, t.size) for t in bench.reenactor.targets]
    assert live.backend.describe() == bench.backend.describe()
    assert type(live.reenactor.detector) is type(bench.reenactor.detector)
    live_frames, bench_frames = outputs[id(live.processor)], outputs[id(bench.processor)]
    assert len(live_frames) == len(bench_frames) == 6
    assert all(np.array_equal(a, b) for a, b in zip(live_frames, bench_frames, strict=True))
    assert not np.array_equal(bench_frames[0], bench_frames[3])  # the mouth moved: the frames are worth comparing
    run = json.loads((tmp_path / "bench.json").read_text())["runs"][0]
    assert run["frames"] == run["face_frames"] == 6 and run["output_size"] == [640, 360]


def test_bench_json_is_what_the_dict_based_runs_wrote():
    """The typed runs write the JSON the old dict-building BenchRun.to_dict wrote (copied here, before
    issue 20), key for key, value for value, in the same order; a stage with no samples is left out."""
    from reenact import bench as B

    def old_to_dict(backend, preset, variant, frames, wall_s, latencies_ms, stages, dropped, faces, target, used, output):
        def stats(v):
            a = np.asarray(v, np.float64)
            return {"p50_ms": float(np.percentile(a, 50)), "p95_ms": float(np.percentile(a, 95)), "max_ms": float(a.max())}

        lat = np.asarray(latencies_ms or [0.0])
        return {"backend": backend, "preset": preset, "variant": variant, "frames": frames, "wall_s": wall_s,
                "fps": frames / wall_s if wall_s > 0 else 0.0,
                "latency_ms": {"p50": float(np.percentile(lat, 50)), "p95": float(np.percentile(lat, 95))},
                "dropped_frames": dropped, "face_frames": faces,
                "target_size": list(target) if target else None, "used_size": list(used) if used else None,
                "output_size": list(output) if output else None,
                "stages": {k: stats(v) for k, v in stages.items() if v}}

    rng = np.random.default_rng(3)
    cfg = type("C", (), {"preset": "lite", "variant": "guided"})()
    for latencies, sizes in (([float(x) for x in rng.gamma(4, 6, 37)], ((2400, 2400), (360, 360), (640, 360))),
                             ([], (None, None, None))):
        stages = {"landmarks": [float(x) for x in rng.gamma(2, 2, 37)], "phi": [0.25, 0.31, 0.27], "smooth": [],
                  "total": [float(x) for x in rng.gamma(5, 5, 37)]}
        samples = B._Samples(list(latencies), {k: list(v) for k, v in stages.items()}, dropped_frames=4, face_frames=33)
        run = samples.result("onnx", cfg, 37, 1.2345, sizes)
        want = old_to_dict("onnx", "lite", "guided", 37, 1.2345, latencies, stages, 4, 33, *sizes)
        assert json.dumps(run.to_dict()) == json.dumps(want)
        with pytest.raises(dataclasses.FrozenInstanceError):
            run.frames = 1  # type: ignore[misc]
        with pytest.raises(dataclasses.FrozenInstanceError):
            run.stages["total"].p50_ms = 0.0  # type: ignore[misc]
    table = B.format_table([run])
    assert "| onnx | guided | lite | - | - | - | 37 | 30.0 | 0.0 | 0.0 | 4 |" in table


def test_bench_paced_drops_frames_when_processing_is_slow():
    """Latest-frame-wins pacing, driven by a fake clock: a 100 ms frame at 30 fps skips 2 frames each time."""
    from reenact import bench as B

    class FakeClock:
        t = 0.0

        def __call__(self):
            return self.t

        def sleep(self, dt):
            self.t += dt

    clock = FakeClock()

    class SlowReenactor:
        cfg = type("C", (), {"preset": "lite", "variant": "guided"})()
        timings: dict = {}
        face_found = True  # as the real Reenactor after from_landmarks

        def from_landmarks(self, p, t):
            clock.t += 0.1

    pts = np.zeros((10, 68, 2), np.float32)
    run = B.run_one(SlowReenactor(), None, pts, 30, 0, 30.0, "fake", clock=clock, sleep=clock.sleep)
    assert run.frames + run.dropped_frames == 30
    assert run.dropped_frames >= 18
    assert run.to_dict()["latency_ms"]["p50"] >= 100.0


def test_replay_round_trip(tmp_path, astronaut, astronaut_points):
    from reenact import bench as B

    rep = B.Replay(astronaut, astronaut_points, np.stack([astronaut_points, np.full((68, 2), np.nan, np.float32)]), (512, 512))
    rep.save(tmp_path / "r.npz")
    back = B.Replay.load(tmp_path / "r.npz")
    assert np.array_equal(back.target, astronaut) and np.allclose(back.target_points, astronaut_points)
    assert np.isnan(back.source_points[1]).all()


def test_a_smiling_target_is_warned_about_when_loaded(warp_weights, astronaut, tmp_path, caplog):
    """load_target tells the user that a grinning target keeps grinning (same check as `reenact landmarks`)."""
    import logging

    from reenact.face.dlib_detector import DlibDetector
    from reenact.inference.backend import create_backend
    from reenact.inference.reenactor import Reenactor
    from reenact.session import load_target

    path = tmp_path / "astronaut.png"
    cv2.imwrite(str(path), astronaut)
    r = Reenactor(create_backend("onnx", warp_weights), DlibDetector())
    with caplog.at_level(logging.WARNING, logger="reenact.session"):
        load_target(path, DlibDetector(detect_width=1000), r)
    assert len(r.targets) == 1
    assert any("astronaut.png" in rec.getMessage() and "smiling" in rec.getMessage() for rec in caplog.records)


@pytest.fixture(scope="module")
def big_target(astronaut):
    """A large target photo: the astronaut upscaled to 2400x2400 (5.8 MP, larger than any output)."""
    return cv2.resize(astronaut, (2400, 2400), interpolation=cv2.INTER_CUBIC)


def _face_psnr(a: np.ndarray, b: np.ndarray, roi) -> float:
    x0, y0, x1, y1 = roi
    d = a[y0:y1, x0:x1].astype(np.float64) - b[y0:y1, x0:x1].astype(np.float64)
    return 10 * np.log10(255.0**2 / max(float(np.mean(d**2)), 1e-12))


def test_a_large_target_is_scaled_once_and_each_frame_is_output_sized(warp_weights, big_target, astronaut_points, monkeypatch):
    """The photo is resized once, at load (counted); frames are composed at the output's size; the face
    region matches composing at full resolution and then letterboxing (what was done before) to >= 40 dB."""
    from reenact.face.dlib_detector import DlibDetector
    from reenact.inference.backend import create_backend
    from reenact.inference.reenactor import Reenactor, ReenactorOptions
    from reenact.live.sinks import letterbox

    lm = DlibDetector(detect_width=1000).detect(big_target)
    assert lm.found
    backend = create_backend("onnx", warp_weights)
    full = Reenactor(backend, None, options=ReenactorOptions(smoothing=False))
    full.add_target(big_target, lm)
    resized = []
    real_resize = cv2.resize

    def counting_resize(src, *a, **k):
        if src.shape[:2] == big_target.shape[:2]:
            resized.append(src.shape)
        return real_resize(src, *a, **k)

    monkeypatch.setattr(cv2, "resize", counting_resize)
    scaled = Reenactor(backend, None, options=ReenactorOptions(smoothing=False, output_size=(640, 360)))
    tg = scaled.add_target(big_target, lm)
    assert len(resized) == 1, "the photo is scaled exactly once, when it is loaded"
    assert tg.photo_size == (2400, 2400) and tg.size == (360, 360) and tg.image.shape == (360, 360, 3)
    assert np.array_equal(tg.crop, full.target.crop), "the networks' crop is still cut from the full-resolution photo"
    x0, y0, x1, y1 = tg.roi
    assert 0 <= x0 < x1 <= 360 and 0 <= y0 < y1 <= 360
    src = astronaut_points * (2400 / 512)
    for i, amount in enumerate((0.0, 0.15, 0.3)):
        p = src.copy()
        p[[56, 57, 58, 65, 66, 67], 1] += amount * 100
        n = len(resized)
        out = scaled.from_landmarks(p, i / 30)
        assert len(resized) == n, "no frame resizes the photo"
        assert out.shape == (360, 360, 3)
        boxed = letterbox(out, (640, 360))
        assert boxed.shape == (360, 640, 3)
        ref = letterbox(full.from_landmarks(p, i / 30), (640, 360))
        assert _face_psnr(boxed[:, 140:500], ref[:, 140:500], tg.roi) >= 40.0
    assert scaled.face_lost(10.0).shape == (360, 360, 3)


def test_a_video_file_output_without_size_is_capped_and_says_so_once(warp_weights, driver, big_target, tmp_path, capsys):
    from reenact.commands.live import FILE_LONG_SIDE

    drive, _ = driver
    path = tmp_path / "big.png"
    cv2.imwrite(str(path), cv2.copyMakeBorder(big_target, 300, 300, 0, 0, cv2.BORDER_REPLICATE))  # 2400x3000 portrait
    out = tmp_path / "out.avi"
    rc = main(["live", "--target", str(path), "--source", str(drive), "--output", str(out), "--output", "null",
               "--weights", str(warp_weights), "--backend", "onnx", "--max-frames", "2"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    frames = _read(out)
    assert len(frames) == 2 and frames[0].shape[:2] == (FILE_LONG_SIDE, 1536)
    said = (captured.out + captured.err).count(f"capped at {FILE_LONG_SIDE}")
    assert said == 1, captured.out


def test_bench_json_carries_the_target_and_output_sizes(warp_weights, tmp_path, big_target, capsys):
    path = tmp_path / "big.png"
    cv2.imwrite(str(path), big_target)
    out = tmp_path / "bench.json"
    rc = main(["bench", "--weights", str(warp_weights), "--target", str(path), "--size", "640x360", "--frames", "4",
               "--warmup", "1", "--backend", "onnx", "--json", str(out)])
    assert rc == 0, capsys.readouterr().err
    run = json.loads(out.read_text())["runs"][0]
    assert run["target_size"] == [2400, 2400]
    assert run["used_size"] == [360, 360]
    assert run["output_size"] == [640, 360]
    assert set(run["stages"]["output"]) == {"p50_ms", "p95_ms", "max_ms"}


def test_scale_matrix_round_trips_and_matches_cv2_resize() -> None:
    from reenact.face.align import apply
    from reenact.inference.reenactor import fit_size, scale_matrix

    S, back = scale_matrix((3024, 4032), (540, 720)), scale_matrix((540, 720), (3024, 4032))
    p = np.array([[0.0, 0.0], [1511.5, 2015.5], [3023.0, 4031.0]], np.float32)
    assert np.allclose(apply(back, apply(S, p)), p, atol=1e-3)
    # a 4x4 block averaged by INTER_AREA lands on the pixel its centre maps to
    img = np.zeros((40, 40), np.float32)
    img[12:16, 20:24] = 1.0
    small = cv2.resize(img, (10, 10), interpolation=cv2.INTER_AREA)
    x, y = apply(scale_matrix((40, 40), (10, 10)), np.array([[21.5, 13.5]], np.float32))[0]
    assert (x, y) == (5.0, 3.0) and small[3, 5] == 1.0
    assert fit_size((3024, 4032), (1280, 720)) == (540, 720)
    assert fit_size((500, 400), (1280, 720)) == (500, 400)  # never scaled up
    assert fit_size((4000, 1000), (1920, 1920)) == (1920, 480)


def test_smoothing_reads_the_stream_clock_so_a_file_gives_the_same_frames_at_any_speed(warp_weights, astronaut):
    """The smoother's dt comes from the frame's stream time (a file's position), not from when the
    frame happened to be read: the same file read fast or slow writes the same frames. Frames
    that carry no stream time fall back to the capture clock (so the check below can fail)."""
    from reenact.inference.backend import create_backend
    from reenact.inference.reenactor import Reenactor
    from reenact.live.capture import Frame

    h, w = astronaut.shape[:2]
    shifts = [0, 6, 14, 9, 2, -5, -12, -4]  # the face moves sideways: the smoother has work to do
    images = [cv2.warpAffine(astronaut, np.float32([[1, 0, dx], [0, 1, 0]]), (w, h), borderMode=cv2.BORDER_REPLICATE)
              for dx in shifts]
    backend = create_backend("onnx", warp_weights)

    def run(t_capture: list[float], t_media: list[float | None]) -> list[np.ndarray]:
        r = Reenactor(backend, DlibDetector())
        r.add_target(astronaut)
        return [r(Frame(im, i, tc, tm, new_segment=i == 0)) for i, (im, tc, tm) in enumerate(zip(images, t_capture, t_media, strict=True))]

    media = [i / 30.0 for i in range(len(images))]
    steady = [100 + i / 30.0 for i in range(len(images))]
    uneven = [200 + i / 30.0 + (0.09 if i % 2 else 0.0) for i in range(len(images))]  # a busy machine's reads
    a, b = run(steady, media), run(uneven, media)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    c = run(uneven, [None] * len(images))  # no stream time: the capture clock, and the smoothing differs
    assert any(np.abs(x.astype(int) - y.astype(int)).max() > 2 for x, y in zip(a, c, strict=True))
