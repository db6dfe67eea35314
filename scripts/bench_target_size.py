#!/usr/bin/env python3
"""Speed against the target photo's size: `reenact bench` and `reenact live` side by side, same driver.

    PYTHONPATH=. python scripts/bench_target_size.py --source driver640.avi --target t720.jpg --target t12.jpg ...
        [--size 1280x720] [--frames 150] [--rounds 2] [--old CHECKOUT --old-frames 30 --old-max-mp 13]

Each round runs, for every target in turn, `reenact bench --source S --target T --size WxH` and
`reenact live --target T --source S --output null --size WxH --max-frames N` (unpaced) as
subprocesses of this checkout; with --old, also the same two commands from another checkout (the
code before the target was scaled to the output; its bench has no --size) for targets of at most
--old-max-mp megapixels. Prints one markdown row per target and code: the median over the rounds
of FPS and of each run's stage p50/p95, then each target's live FPS over the first target's, per
round (ratios within one round only: the machine is shared).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2

HERE = Path(__file__).resolve().parent.parent
STAGE = re.compile(r"^(\w+)\s+p50\s+([\d.]+) ms\s+p95\s+([\d.]+) ms")
STOPPED = re.compile(r"(\d+) frames processed, (\d+) dropped, ([\d.]+) FPS")


def run(code: Path, args: list[str]) -> str:
    env = dict(os.environ, PYTHONPATH=str(code))
    # cwd: `python -m` puts the working directory first on sys.path
    p = subprocess.run([sys.executable, "-m", "reenact.cli", *args], env=env, cwd=code, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"failed ({p.returncode}): reenact {' '.join(args)}\n{p.stderr[-2000:]}")
    return p.stdout


def live(code: Path, target: str, source: str, size: str, frames: int) -> dict:
    out = run(code, ["live", "--target", target, "--source", source, "--output", "null", "--size", size,
                     "--max-frames", str(frames)])
    m = STOPPED.search(out)
    stages = {}
    for line in out.splitlines():
        s = STAGE.match(line.strip())
        if s:
            stages[s.group(1)] = (float(s.group(2)), float(s.group(3)))
    return {"fps": float(m.group(3)), "dropped": int(m.group(2)), "stages": stages}


def bench(code: Path, target: str, source: str, size: str | None, frames: int) -> dict:
    with tempfile.TemporaryDirectory() as d:
        js = Path(d) / "b.json"
        extra = ["--size", size] if size else []
        run(code, ["bench", "--source", source, "--target", target, "--frames", str(frames), "--json", str(js), *extra])
        r = json.loads(js.read_text())["runs"][0]
    return {"fps": r["fps"], "stages": {k: (v["p50_ms"], v["p95_ms"]) for k, v in r["stages"].items()},
            "latency": (r["latency_ms"]["p50"], r["latency_ms"]["p95"]), "used": r.get("used_size")}


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", required=True)
    ap.add_argument("--target", action="append", required=True)
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--old", type=Path, default=None, help="another checkout to compare with")
    ap.add_argument("--old-frames", type=int, default=30)
    ap.add_argument("--old-max-mp", type=float, default=13.0)
    args = ap.parse_args()
    args.source = str(Path(args.source).resolve())
    args.target = [str(Path(t).resolve()) for t in args.target]
    sizes = {}
    for t in args.target:
        img = cv2.imread(t)
        if img is None:
            raise SystemExit(f"cannot read {t}")
        sizes[t] = (img.shape[1], img.shape[0])
    codes = [("now", HERE, args.frames)] + ([("before", args.old.resolve(), args.old_frames)] if args.old else [])
    results: dict[tuple[str, str], dict[str, list]] = {}
    start = datetime.datetime.now(datetime.UTC)
    load0 = os.getloadavg()[0]
    for rnd in range(args.rounds):
        for t in args.target:
            mp = sizes[t][0] * sizes[t][1] / 1e6
            for name, code, frames in codes:
                if name == "before" and mp > args.old_max_mp:
                    continue
                b = bench(code, t, args.source, args.size if name == "now" else None, frames)
                lv = live(code, t, args.source, args.size, frames)
                rec = results.setdefault((t, name), {"bench": [], "live": []})
                rec["bench"].append(b)
                rec["live"].append(lv)
                print(f"round {rnd + 1} {Path(t).name} {name}: bench {b['fps']:.1f} FPS, live {lv['fps']:.1f} FPS",
                      file=sys.stderr, flush=True)
    load1 = os.getloadavg()[0]
    print(f"{start:%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, load average {load0:.1f} at the start, {load1:.1f} at "
          f"the end; output {args.size}, driver {Path(args.source).name}, {args.frames} frames a run "
          f"({args.old_frames} for 'before'), median of {args.rounds} rounds\n")
    print("| target | MP | code | bench FPS | bench paste p50 ms | bench output p50 ms | bench total p50 / p95 ms "
          "| live FPS | live wait p50 / p95 | live process p50 / p95 | live output p50 | live latency p50 / p95 |")
    print("|:--|--:|:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for t in args.target:
        for name, _, _ in codes:
            rec = results.get((t, name))
            if rec is None:
                continue
            b, lv = rec["bench"], rec["live"]

            def bs(stage: str, i: int, b=b) -> float:
                return med([r["stages"].get(stage, (float("nan"),) * 2)[i] for r in b])

            def ls(stage: str, i: int, lv=lv) -> float:
                return med([r["stages"].get(stage, (float("nan"),) * 2)[i] for r in lv])

            w, h = sizes[t]
            print(f"| {Path(t).name} {w}x{h} | {w * h / 1e6:.1f} | {name} | {med([r['fps'] for r in b]):.1f} | "
                  f"{bs('paste', 0):.1f} | {bs('output', 0):.1f} | {bs('total', 0):.1f} / {bs('total', 1):.1f} | "
                  f"{med([r['fps'] for r in lv]):.1f} | {ls('wait', 0):.0f} / {ls('wait', 1):.0f} | "
                  f"{ls('process', 0):.1f} / {ls('process', 1):.1f} | {ls('output', 0):.1f} | "
                  f"{ls('latency', 0):.0f} / {ls('latency', 1):.0f} |")
    first = args.target[0]
    print(f"\nlive FPS over {Path(first).name}'s, per round (code 'now'):")
    for t in args.target[1:]:
        ratios = [a["fps"] / r0["fps"] for a, r0 in zip(results[(t, "now")]["live"], results[(first, "now")]["live"], strict=True)]
        bench_r = [a["fps"] / r0["fps"] for a, r0 in zip(results[(t, "now")]["bench"], results[(first, "now")]["bench"], strict=True)]
        print(f"- {Path(t).name}: live {', '.join(f'{x:.2f}' for x in ratios)}; bench {', '.join(f'{x:.2f}' for x in bench_r)}")


if __name__ == "__main__":
    main()
