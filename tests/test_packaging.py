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


def _submodule_uses() -> dict[tuple[str, str], list[str]]:
    """(package, submodule) -> files that use ``package.submodule`` after a plain ``import package``
    without importing the submodule themselves."""
    import ast
    import importlib.util

    uses: dict[tuple[str, str], list[str]] = {}
    for path in sorted((ROOT / "reenact").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        bound: dict[str, str] = {}  # local name -> package, for plain `import package [as name]`
        imported: set[str] = set()  # every dotted module this file imports, with its parents
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    parts = a.name.split(".")
                    imported.update(".".join(parts[:i + 1]) for i in range(len(parts)))
                    if a.asname:
                        if "." not in a.name:
                            bound[a.asname] = a.name
                    else:
                        bound[parts[0]] = parts[0]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.update(f"{node.module}.{a.name}" for a in node.names)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in bound:
                full = f"{bound[node.value.id]}.{node.attr}"
                if full in imported:
                    continue
                try:
                    is_module = importlib.util.find_spec(full) is not None
                except (ImportError, ValueError, AttributeError):
                    is_module = False
                if is_module:
                    uses.setdefault((bound[node.value.id], node.attr), []).append(str(path.relative_to(ROOT)))
    return uses


def test_every_submodule_used_is_imported_where_it_is_used():
    """`import importlib` then `importlib.util.find_spec` crashed every command of a plain
    `pip install .` (issue 22): the editable install's path hook, pytest and Python 3.11's site
    import importlib.util first and hid it. A submodule reached as an attribute must either be
    imported by the file or be reachable after importing its package alone in a bare interpreter
    (loaded by it, or lazily through the package's ``__getattr__`` as numpy.random and torch.onnx are)."""
    uses = _submodule_uses()
    missing = []
    for pkg in sorted({p for p, _ in uses}):
        subs = sorted(s for p, s in uses if p == pkg)
        stdlib = pkg in sys.stdlib_module_names
        # -S: no site (which imports importlib.util on 3.11); third-party packages need site-packages
        flags = ["-I", "-S"] if stdlib else ["-I"]
        probe = f"import {pkg}; print(' '.join(s for s in {subs!r} if hasattr({pkg}, s)))"
        r = subprocess.run([sys.executable, *flags, "-c", probe], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        loaded = set(r.stdout.split())
        missing += [f"{pkg}.{s} in {', '.join(uses[pkg, s])}" for s in subs if s not in loaded]
    assert not missing, "used without being imported: " + "; ".join(missing)
