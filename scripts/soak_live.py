"""Soak test: run the live pipeline from a looping video file to the null sink for a while and report
FPS, dropped frames, per-stage timing (capture, wait, process, handoff, output, latency) and
resident-memory growth over time (BENCHMARKS.md: 10 minutes, RSS growth < 50 MB).

    python scripts/soak_live.py --source driver.mp4 --target face.png --seconds 600 [--weights DIR] [--unpaced]
        [--size 1280x720] [--switch-interval MS] [--output-loop]

The pipeline (backend, detectors, target, per-frame processor) is the one `reenact live --output null
--size S` builds (reenact.session.open_pipeline); the source is paced at the file's fps unless --unpaced,
and stale frames are dropped, as from a camera.
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

import cv2


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--weights", default=None)
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--unpaced", action="store_true", help="read the file as fast as possible (default: at its own fps, like a camera)")
    ap.add_argument("--backend", default="onnx")
    ap.add_argument("--size", default="1280x720", help="output size the target is prepared for (as reenact live --size)")
    ap.add_argument("--switch-interval", type=float, default=None,
                    help="Python GIL switch interval in ms while running (default: the runner's own, 1 ms)")
    ap.add_argument("--output-loop", action="store_true",
                    help="send from the output loop even though the null sink allows any thread (the runner before 2026-11-30)")
    args = ap.parse_args()

    from reenact.live.capture import open_source
    from reenact.live.runner import LiveRunner, RunnerConfig
    from reenact.live.sinks import create_sink
    from reenact.live.timing import format_summary
    from reenact.paths import resolve_weights
    from reenact.session import SessionConfig, open_pipeline, parse_size

    # the pipeline `reenact live --output null --size S` builds (calibration, smoothing and threads as its defaults)
    config = SessionConfig(targets=(Path(args.target),), source=args.source, outputs=("null",), backend=args.backend,
                           weights=resolve_weights(args.weights), size=parse_size(args.size), loop=True)
    pipe = open_pipeline(config, say=print)
    r = pipe.reenactor
    src = open_source(args.source, paced=not args.unpaced, loop=True)
    cfg = RunnerConfig(drop_frames=True, direct_output=not args.output_loop)
    if args.switch_interval is not None:
        cfg = RunnerConfig(drop_frames=True, direct_output=not args.output_loop, switch_interval_s=args.switch_interval / 1000)
    runner = LiveRunner(src, pipe.processor, [create_sink("null")], config=cfg)
    samples = []

    def watch() -> None:
        t0 = time.monotonic()
        last_n, last_t = 0, t0
        while time.monotonic() - t0 < args.seconds:
            time.sleep(min(30.0, args.seconds / 10))
            st = runner.stats()
            now = time.monotonic()
            fps = (st.frames_processed - last_n) / (now - last_t)
            last_n, last_t = st.frames_processed, now
            samples.append((now - t0, fps, rss_mb()))
            print(f"t={now - t0:6.0f}s fps={fps:5.1f} rss={rss_mb():7.1f} MB processed={st.frames_processed} dropped={st.dropped}", flush=True)
        runner.stop()

    threading.Thread(target=watch, daemon=True).start()
    stats = runner.run()
    first, last = samples[0], samples[-1]
    print(f"\nframes processed {stats.frames_processed}, mean FPS {stats.frames_processed / stats.wall_s:.1f}, "
          f"FPS first/last window {first[1]:.1f}/{last[1]:.1f}, RSS {first[2]:.1f} -> {last[2]:.1f} MB "
          f"(growth {last[2] - first[2]:+.1f} MB), dropped {stats.dropped} "
          f"(capture {stats.dropped_capture}, output {stats.dropped_output}), target {r.target.photo_size[0]}x"
          f"{r.target.photo_size[1]} used at {r.target.size[0]}x{r.target.size[1]}")
    print(format_summary(stats.timings))
    cv2.destroyAllWindows()


if __name__ == "__main__":
    main()
