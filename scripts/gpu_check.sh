#!/usr/bin/env bash
# One prepared check for an NVIDIA GPU machine with its own python3 + CUDA torch and no network.
# Runs from a checkout with PYTHONPATH=. (no pip install; never imports dlib). Under 8 minutes:
#   1. torch CUDA FP32 vs FP16 parity for Φ and Ω (lite and paper, both variants) and the Φ+Ω
#      frame time in FP16 with CUDA graphs (median of N runs)             [scripts/gpu_check.py torch]
#   2. pytest -m gpu (backend and engine tests)
#   3. TensorRT FP16 build + parity + frame time, when torch_tensorrt imports  [gpu_check.py tensorrt]
#   4. reenact bench --backend torch (fp16) on the recorded replay, when the bench command exists
#   5. a short table, printed last.
# Each step reports and the rest go on: a failed or timed-out step (or one case of a step) is
# printed as such, and the summary shows what every step measured or why it did not.
# Usage: bash scripts/gpu_check.sh   (env: PYTHON=python3, RUNS=200, OUT=/tmp/reenact-gpu-check)
set -u -o pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}
RUNS=${RUNS:-200}
OUT=${OUT:-/tmp/reenact-gpu-check}
REPLAY=tests/data/replay_astronaut.npz
mkdir -p "$OUT"
START=$(date +%s)
status_pytest="not run"; status_trt="not run"; status_bench="not run"

echo "== machine"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "nvidia-smi not found"
$PY -c "import torch, sys; print('python', sys.version.split()[0], '| torch', torch.__version__, '| CUDA', torch.version.cuda, '| GPU', torch.cuda.is_available() and torch.cuda.get_device_name(0))"

echo "== 1. torch CUDA: FP16 vs FP32 parity and Φ+Ω frame time (FP16 + CUDA graphs, median of $RUNS)"
timeout 240 $PY scripts/gpu_check.py torch --json "$OUT/torch.json" --replay "$REPLAY" --runs "$RUNS" \
  || echo "!! torch check failed or timed out (rc=$?)"

echo "== 2. pytest -m gpu"
if timeout 150 $PY -m pytest -m gpu tests/test_backends.py tests/test_engines.py -q -p no:cacheprovider -rs 2>&1 | tail -15; then
  status_pytest="passed"
else
  status_pytest="FAILED (see above)"
fi

echo "== 3. TensorRT"
if $PY -c "import torch_tensorrt" >/dev/null 2>&1; then
  timeout 240 $PY scripts/gpu_check.py tensorrt --json "$OUT/tensorrt.json" --replay "$REPLAY" --runs "$RUNS" \
    && status_trt="ran" || status_trt="FAILED or timed out (rc=$?)"
else
  status_trt="torch_tensorrt is NOT importable here: TensorRT build and bench not run (tested only up to the GPU boundary)"
  echo "$status_trt"
fi

echo "== 4. reenact bench --backend torch (fp16, CUDA graphs) on replayed landmarks"
if [ -f reenact/commands/bench.py ]; then
  status_bench=""
  for preset in lite paper; do
    timeout 90 $PY -c "import sys; sys.modules['dlib'] = None; from reenact.cli import main; sys.exit(main(sys.argv[1:]))" \
      bench --source "$REPLAY" --backend torch --device cuda --precision fp16 --untrained --preset "$preset" \
      --frames 300 --json "$OUT/bench_$preset.json" 2>&1 | tail -12 && r="ran" || r="FAILED (rc=$?)"
    status_bench="$status_bench $preset: $r;"
  done
else
  status_bench="reenact bench does not exist in this checkout"
fi

echo
echo "== summary ($(( $(date +%s) - START )) s)"
$PY - "$OUT" "$status_pytest" "$status_trt" "$status_bench" <<'EOF'
import json, sys
from pathlib import Path
out, st_pytest, st_trt, st_bench = Path(sys.argv[1]), *sys.argv[2:]
def load(name):
    p = out / name
    return json.loads(p.read_text()) if p.is_file() else None
def errors(r):
    out = [f"{k}: {v}" for k, v in r.get("errors", {}).items()]
    out += [f"{k} skipped ({v})" for k, v in r.get("skipped", {}).items()]
    return "; ".join(out)
def timing(g):
    return f"{g['median_ms']}, {g['p95_ms']}" if g else "–"
def psnr_cell(p, net):
    return f"{p[net]['psnr_db']} / {p[net]['max_abs']:.2g}" if p else "–"
t = load("torch.json")
if t:
    print(f"GPU {t['info']['gpu']} (SM {t['info']['sm']}), torch {t['info']['torch']}, CUDA {t['info']['cuda']}")
    print("| variant | preset | Φ FP16 PSNR dB / max abs | Ω FP16 PSNR dB / max abs | FP16+graphs Φ+Ω ms (median, p95) | device-only ms | FP32 (IEEE, TF32 off) eager ms |")
    print("|---|---|---|---|---|---|---|")
    for r in t["rows"]:
        p, g, f = r.get("parity_fp16_vs_fp32"), r.get("fp16_graphs"), r.get("fp32_eager")
        print(f"| {r['variant']} | {r['preset']} | {psnr_cell(p, 'phi')} | {psnr_cell(p, 'omega')} | "
              f"{timing(g)} | {r.get('fp16_graphs_device_ms') or '–'} | {f['median_ms'] if f else '–'} |")
        if errors(r):
            print(f"  {r['variant']}/{r['preset']}: {errors(r)}")
else:
    print("torch check: no results")
trt = load("tensorrt.json")
if trt:
    for r in trt["rows"]:
        p, g = r.get("parity_fp16_vs_fp32"), r.get("trt_fp16_graphs")
        print(f"TensorRT {r['variant']}/{r['preset']}: build {r.get('build_s', '–')} s, Φ {psnr_cell(p, 'phi')} dB, "
              f"Ω {psnr_cell(p, 'omega')} dB, Φ+Ω {g['median_ms'] if g else '–'} ms median")
        if errors(r):
            print(f"  {errors(r)}")
print(f"TensorRT: {st_trt}")
for preset in ("lite", "paper"):
    b = load(f"bench_{preset}.json")
    for run in (b or {}).get("runs", []):
        lat = run.get("latency_ms") or {}
        print(f"bench {run.get('backend')} {preset}: {run.get('fps', 0):.1f} FPS, latency p50 {lat.get('p50', float('nan')):.2f} ms, "
              f"p95 {lat.get('p95', float('nan')):.2f} ms")
print(f"bench: {st_bench}")
print(f"pytest -m gpu: {st_pytest}")
EOF
