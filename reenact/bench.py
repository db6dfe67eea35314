"""The FPS benchmark: the full per-frame pipeline with no camera and no window.

Sources: a video file (landmarks tracked with dlib, as live), ``synthetic`` (the target's
own face, letterboxed to a 640x480 camera frame, opening and closing its mouth), or a
``replay.npz`` of landmarks recorded earlier (no dlib needed: a GPU machine can bench without
the 100 MB model). `reenact bench` builds the pipeline as `reenact live` does
(``reenact.session.open_pipeline``) and :func:`run_one` sends each frame through live's per-frame
processor; a replay's landmarks go to the reenactor directly (no detection, no auto-calibration).

Unpaced, every frame is processed back to back. Paced at F fps, frame i "arrives" at i/F;
the newest frame that has arrived is processed (latest-frame-wins, as the live runner) and
the ones it skipped are counted as dropped. Latency is output time minus arrival time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from reenact.errors import InputError
from reenact.live.capture import Frame
from reenact.live.sinks import letterbox

log = logging.getLogger(__name__)


@dataclass
class Replay:
    """What a benchmark needs without a detector: target image + landmarks, source landmarks per frame."""

    target: np.ndarray  # BGR uint8
    target_points: np.ndarray  # [68,2]
    source_points: np.ndarray  # [N,68,2], NaN rows where no face was found
    frame_size: tuple[int, int]  # (width, height) of the source frames

    def save(self, path: str | Path) -> None:
        ok, png = cv2.imencode(".png", self.target)
        if not ok:
            raise InputError("could not encode the target image")
        import io

        from reenact.weights_io import atomic_write_bytes

        buf = io.BytesIO()
        np.savez_compressed(buf, target_png=png, target_points=self.target_points, source_points=self.source_points,
                            frame_size=np.array(self.frame_size))
        path = Path(path)
        if path.suffix != ".npz":  # what np.savez does to a path
            path = path.with_name(path.name + ".npz")
        atomic_write_bytes(path, buf.getvalue())

    @staticmethod
    def load(path: str | Path) -> Replay:
        try:
            z = np.load(path, allow_pickle=False)
            target = cv2.imdecode(z["target_png"], cv2.IMREAD_COLOR)
            return Replay(target, z["target_points"].astype(np.float32), z["source_points"].astype(np.float32),
                          tuple(int(v) for v in z["frame_size"]))
        except (OSError, KeyError, ValueError) as exc:
            raise InputError(f"{path} is not a reenact replay file: {exc}", hint="make one with `reenact bench --record replay.npz`") from exc


@dataclass(frozen=True)
class StageStats:
    """One stage's time per frame over a run, in ms: median, 95th percentile and worst."""

    p50_ms: float
    p95_ms: float
    max_ms: float

    @staticmethod
    def of(values_ms: Sequence[float]) -> StageStats:
        a = np.asarray(values_ms, np.float64)
        return StageStats(float(np.percentile(a, 50)), float(np.percentile(a, 95)), float(a.max()))

    def to_dict(self) -> dict[str, float]:
        return {"p50_ms": self.p50_ms, "p95_ms": self.p95_ms, "max_ms": self.max_ms}


@dataclass(frozen=True)
class Latency:
    """Output time minus arrival time over a run, in ms: median and 95th percentile."""

    p50: float
    p95: float

    @staticmethod
    def of(values_ms: Sequence[float]) -> Latency:
        a = np.asarray(list(values_ms) or [0.0])  # no frame: 0, as the JSON has always said
        return Latency(float(np.percentile(a, 50)), float(np.percentile(a, 95)))

    def to_dict(self) -> dict[str, float]:
        return {"p50": self.p50, "p95": self.p95}


@dataclass(frozen=True)
class BenchRun:
    """One backend's benchmark run: what `reenact bench` prints a row of and writes into its JSON."""

    backend: str  # backend registry name as asked (onnx, torch, tensorrt, auto)
    preset: str
    variant: str
    frames: int  # frames measured (paced: the ones processed)
    wall_s: float
    latency_ms: Latency
    stages: Mapping[str, StageStats]  # landmarks, smooth, phi, warp, omega, paste, output, total (ms a frame)
    dropped_frames: int = 0  # paced: frames skipped because a newer one had arrived
    face_frames: int = 0  # measured frames in which a face was found (the others time landmark detection alone)
    target_size: tuple[int, int] | None = None  # (width, height) of the target photo as loaded
    used_size: tuple[int, int] | None = None  # (width, height) it is composed at (scaled to the output once)
    output_size: tuple[int, int] | None = None  # (width, height) of the output frames (letterboxed)

    @property
    def fps(self) -> float:
        return self.frames / self.wall_s if self.wall_s > 0 else 0.0

    def to_dict(self) -> dict:
        """The run as `reenact bench --json` writes it (keys documented in BENCHMARKS.md)."""
        def size(v):
            return list(v) if v else None

        return {
            "backend": self.backend,
            "preset": self.preset,
            "variant": self.variant,
            "frames": self.frames,
            "wall_s": self.wall_s,
            "fps": self.fps,
            "latency_ms": self.latency_ms.to_dict(),
            "dropped_frames": self.dropped_frames,
            "face_frames": self.face_frames,
            "target_size": size(self.target_size),
            "used_size": size(self.used_size),
            "output_size": size(self.output_size),
            "stages": {k: v.to_dict() for k, v in self.stages.items()},
        }


@dataclass
class _Samples:
    """What a run collects frame by frame, before it is summed up into a :class:`BenchRun`."""

    latencies_ms: list[float] = field(default_factory=list)
    stages: dict[str, list[float]] = field(default_factory=dict)
    dropped_frames: int = 0
    face_frames: int = 0

    def result(self, backend: str, cfg, frames: int, wall_s: float, sizes: tuple) -> BenchRun:
        stages = {k: StageStats.of(v) for k, v in self.stages.items() if v}
        return BenchRun(backend, cfg.preset, cfg.variant, frames, wall_s, Latency.of(self.latencies_ms), stages,
                        self.dropped_frames, self.face_frames, *sizes)


def record_replay(target: np.ndarray, frames: list[np.ndarray], detector) -> Replay:
    """Detect the target and track the source frames once; the result replays without dlib."""
    t = detector.detect(target)
    if not t.found:
        raise InputError("no face in the target image")
    pts = []
    detector.reset()
    for f in frames:
        lm = detector.track(f)
        pts.append(lm.points if lm.found else np.full((68, 2), np.nan, np.float32))
    h, w = frames[0].shape[:2]
    return Replay(target, t.points, np.stack(pts).astype(np.float32), (w, h))


def run_one(reenactor, frames: list[np.ndarray] | None, points: np.ndarray | None, n: int, warmup: int,
            paced: float | None, backend_name: str, clock=time.perf_counter, sleep=time.sleep,
            output_size: tuple[int, int] | None = None, process=None, fps: float = 30.0) -> BenchRun:
    """Benchmark one configured reenactor over ``n`` frames (after ``warmup``), frames or replayed points.

    ``process``: what each frame goes through (the live session's processor: the reenactor plus
    calibration), default the reenactor itself; a frame comes as the live capture makes it, at
    ``fps`` into its stream. Replayed points go to the reenactor. ``output_size`` (width, height):
    each result is also letterboxed to it, as the virtual camera does (stage ``output``, part of
    ``total`` and of the latency).
    """
    total = len(frames) if frames is not None else len(points)
    if total == 0:
        raise InputError("the benchmark source has no frames")
    process = process or reenactor

    def one(i: int, t_arrival: float):
        k = i % total
        if frames is not None:
            return process(Frame(frames[k], i, t_arrival, t_media=k / fps, new_segment=(k == 0)))
        p = points[k]
        if np.isnan(p).any():
            out = reenactor.face_lost(t_arrival)
            reenactor.timings = {}
            return out
        return reenactor.from_landmarks(p, t_arrival)

    samples = _Samples()

    def timed(i: int, arrival: float) -> None:
        """Process frame i and record its stage times and its latency from ``arrival``."""
        ts = clock()
        out = one(i, arrival)
        if output_size is not None:
            tp = clock()
            letterbox(out, output_size)
            reenactor.timings["output"] = (clock() - tp) * 1000
        te = clock()
        samples.face_frames += bool(reenactor.face_found)
        samples.latencies_ms.append((te - arrival) * 1000)
        for k, v in reenactor.timings.items():
            samples.stages.setdefault(k, []).append(v)
        samples.stages.setdefault("total", []).append((te - ts) * 1000)

    for i in range(warmup):
        one(i, clock())
    tg = getattr(reenactor, "target", None)
    sizes = (tuple(tg.photo_size), tuple(tg.size), output_size) if tg is not None else (None, None, output_size)
    t0 = clock()
    if not paced:
        for i in range(n):
            timed(warmup + i, clock())
        return samples.result(backend_name, reenactor.cfg, n, clock() - t0, sizes)
    interval = 1.0 / paced
    last = -1
    processed = 0
    while True:
        now = clock()
        newest = int((now - t0) / interval)
        if newest >= n:
            break
        if newest == last:
            sleep(max(0.0, t0 + (newest + 1) * interval - now))
            continue
        samples.dropped_frames += max(0, newest - last - 1)
        timed(warmup + newest, t0 + newest * interval)
        processed += 1
        last = newest
    samples.dropped_frames += max(0, n - 1 - last)
    return samples.result(backend_name, reenactor.cfg, processed, clock() - t0, sizes)


def format_table(runs: Sequence[BenchRun]) -> str:
    """A markdown table: one row per run, then per-stage p50/p95/max."""
    def size(v) -> str:
        return f"{v[0]}x{v[1]}" if v else "-"

    lines = ["| backend | variant | preset | target | used at | output | frames | FPS | latency p50 ms | latency p95 ms "
             "| dropped |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {r.backend} | {r.variant} | {r.preset} | {size(r.target_size)} | {size(r.used_size)} | "
                     f"{size(r.output_size)} | {r.frames} | {r.fps:.1f} | {r.latency_ms.p50:.1f} | "
                     f"{r.latency_ms.p95:.1f} | {r.dropped_frames} |")
    lines += ["", "| backend | stage | p50 ms | p95 ms | max ms |", "|---|---|---|---|---|"]
    for r in runs:
        for k, s in r.stages.items():
            lines.append(f"| {r.backend} | {k} | {s.p50_ms:.2f} | {s.p95_ms:.2f} | {s.max_ms:.2f} |")
    return "\n".join(lines)


def write_json(path: str | Path, runs: Sequence[BenchRun]) -> None:
    """``{"runs": [run.to_dict(), ...]}``, written atomically."""
    from reenact.weights_io import atomic_write_json

    atomic_write_json(Path(path), {"runs": [r.to_dict() for r in runs]})


__all__ = ["BenchRun", "Latency", "Replay", "StageStats", "format_table", "record_replay", "run_one", "write_json"]
