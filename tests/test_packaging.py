"""The shipped weights travel in the wheel: `reenact live` and `reenact eval` find them when
reenact is installed from a wheel, not only from a checkout (issue 5)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    pytest.importorskip("setuptools")
    # built from a copy of the tracked layout, so the test leaves no build/ folder in the checkout
    src = tmp_path_factory.mktemp("src") / "reenact-src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", ".venv*", "venv", "build", "dist", "runs", "*.egg-info",
                                                            "__pycache__", ".pytest_cache", ".ruff_cache", "engines", "calibration"))
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
                        "-q", "-w", str(out)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    (whl,) = out.glob("reenact-*.whl")
    return whl


def test_the_wheel_carries_every_shipped_weights_file(wheel):
    """Every file of every shipped weights folder (the default and, in weights/paper, the paper's system)."""
    names = set(zipfile.ZipFile(wheel).namelist())
    weights = ROOT / "reenact" / "weights"
    shipped = {p.relative_to(weights).as_posix() for p in weights.rglob("*")
               if p.is_file() and p.suffix in {".json", ".jsonl", ".safetensors", ".onnx", ".md"}}
    net_files = {"config.json", "phi.safetensors", "omega.safetensors", "phi.onnx", "omega.onnx"}
    assert net_files | {"MODEL_CARD.md"} <= shipped
    assert {f"paper/{n}" for n in net_files} <= shipped
    assert {f"reenact/weights/{n}" for n in shipped} <= names


@pytest.mark.parametrize("name, variant", [("default", "guided"), ("paper", "paper")])
def test_the_shipped_weights_load_from_the_unpacked_wheel(wheel, tmp_path, name, variant):
    """Unpacked outside the checkout and first on the path, the wheel's own copy is what loads:
    the default weights, and the paper's system by its short name (`--weights paper`)."""
    zipfile.ZipFile(wheel).extractall(tmp_path / "site")
    code = (
        "import json, reenact\n"
        "from reenact.paths import resolve_weights\n"
        "from reenact.eval.evaluate import load_model\n"
        f"folder = resolve_weights({name!r})\n"
        f"m = load_model(folder, {name!r}, 'onnx', 1)\n"
        "print(json.dumps({'module': reenact.__file__, 'weights': str(folder), 'variant': m.cfg.variant}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout.strip().splitlines()[-1])
    site = str(tmp_path / "site")
    assert got["module"].startswith(site) and got["weights"].startswith(site)
    assert got["variant"] == variant
