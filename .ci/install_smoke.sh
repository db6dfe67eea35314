#!/usr/bin/env bash
# CI: install reenact the way users do — a built wheel, `pip install` without -e, into a fresh
# virtualenv — on every Python from 3.11 up that this machine has, and run the CLI from a folder
# outside the checkout: --help, --version, doctor, landmarks on a photo, a short live run from a
# video file to a video file. An editable install and pytest both import importlib.util as a side
# effect, so they hid a crash on every command of a plain install (issue 22); this does not.
#   .ci/install_smoke.sh PYTHON_WITH_DEV_DEPS     (that Python writes the test photo and video)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEV_PY=${1:-python3}
WORK=$(mktemp -d /tmp/reenact-install-smoke.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export PIP_DISABLE_PIP_VERSION_CHECK=1

echo "== building the wheel"
"$DEV_PY" -m pip wheel -q --no-deps -w "$WORK/dist" "$ROOT"
WHEEL=$(ls "$WORK"/dist/reenact-*.whl)

echo "== test inputs (the public-domain astronaut; a 20-frame driving video of her)"
mkdir -p "$WORK/run"
"$DEV_PY" -c "import cv2, sys; from skimage import data
cv2.imwrite(sys.argv[1], cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))" "$WORK/run/face.png"
"$DEV_PY" "$ROOT/scripts/make_driver.py" "$WORK/run/driver.avi" --frames 20 >/dev/null

# python3.X on PATH, else the newest pyenv install of 3.X (pyenv's shims only answer for the active version)
find_python() {
  local c
  for c in "python$1" $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$1".*/bin/python"$1" 2>/dev/null | sort -V | tail -1); do
    if command -v "$c" >/dev/null && "$c" -c 'import sys' 2>/dev/null; then command -v "$c"; return; fi
  done
}

tested=()
for v in 3.11 3.12 3.13 3.14; do
  py=$(find_python "$v")
  if [ -z "$py" ]; then
    echo "== python$v: not on this machine, skipped"
    continue
  fi
  echo "== python$v: fresh virtualenv, pip install $(basename "$WHEEL")"
  venv="$WORK/venv$v"
  "$py" -m venv "$venv"
  "$venv/bin/pip" install -q "$WHEEL"
  (
    cd "$WORK/run"
    rm -f out.mp4 lm.png face_crop.png
    R="$venv/bin/reenact"
    "$R" --help >/dev/null
    "$R" --version
    "$R" live --help >/dev/null
    "$R" doctor --output null --source driver.avi >/dev/null
    "$R" landmarks face.png --out lm.png >/dev/null 2>&1
    test -s lm.png && test -s face_crop.png
    "$R" live --target face.png --source driver.avi --output out.mp4 --max-frames 10 >/dev/null 2>&1
    # the installed package (not the checkout) ran, and the file holds the 10 frames
    "$venv/bin/python" - <<'EOF'
import cv2, reenact, sys
assert "site-packages" in reenact.__file__, reenact.__file__
cap = cv2.VideoCapture("out.mp4")
n = 0
while cap.read()[0]:
    n += 1
assert n == 10, f"out.mp4 has {n} frames, expected 10"
print(f"   python {sys.version.split()[0]}: --help, doctor, landmarks and live ran from {reenact.__file__}")
EOF
  )
  tested+=("$v")
done
if [ ${#tested[@]} -eq 0 ]; then
  echo "no Python 3.11 or newer found" >&2
  exit 1
fi
echo "== installed from the wheel and ran on Python ${tested[*]}"
