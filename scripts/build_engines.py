#!/usr/bin/env python3
"""Build TensorRT FP16 engines for a weights folder: the same as `reenact build-engines`.

Usage: python scripts/build_engines.py [--weights DIR] [--out DIR] [--rebuild] [--replay replay.npz]
Works from a checkout with PYTHONPATH=. (no install needed).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reenact.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["build-engines", *sys.argv[1:]]))
