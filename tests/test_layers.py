"""The package's import structure: no import circles, and no import running up the declared layers.

Imports are read with ``ast`` (nothing is imported), including the ones inside functions (the
lazy imports of optional dependencies are dependencies too). A unit is ``reenact.X``: a
top-level module or subpackage. Each unit sits on one layer; a unit may import its own modules
and the units of LOWER layers only (units on one layer are peers and do not import each other).
A new unit must be placed here, in the README's architecture section's order.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "reenact"

#: Bottom to top. Why each sits where it does is in the README (Architecture).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors",),
    ("paths",),
    ("config",),
    ("face",),  # landmarks and geometry
    ("models", "inputs", "synthetic"),  # the torch networks; numpy network inputs; synthetic faces
    ("weights_io", "generate"),  # weights on disk (and atomic writes); Φ → Ω on one crop (live, eval and samples)
    ("outputs",),  # writing a user's files safely (uses weights_io's atomic writes)
    ("live", "data", "calibration"),  # capture, sinks, runner; datasets and pairs (no torch); J_s calibration
    ("bench",),  # the FPS benchmark (runs the live runner and sinks)
    ("inference",),  # backends, the Reenactor (one frame in, one frame out), export, engines
    ("session",),  # a live session: typed config, per-frame processor, targets, the pipeline built from the config
    ("eval",),  # `reenact eval` and its measures
    ("training",),  # the trainer (validates with eval's measures)
    ("commands",),
    ("cli",),
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The reenact modules ``name`` imports anywhere in its file (relative imports resolved)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            # `from pkg import submodule` depends on the submodule; `from mod import name` on the module
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name and t.startswith("reenact"):
                found.add(t)
    return found


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    return {name: _imports(name, path, known) for name, path in mods.items()}


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_reader_sees_real_imports():
    """The checks below rest on the parser: it must find imports we know are there, lazy ones included."""
    g = _graph()
    assert "reenact.face.align" in g["reenact.inference.reenactor"]
    assert "reenact.face.dlib_detector" in g["reenact.eval.evaluate"]  # imported inside a method
    assert "reenact.inference.tensorrt_backend" in g["reenact.inference.engines"]  # `from pkg import module as x`


def test_no_import_circles():
    assert _cycles(_graph()) == []


def test_the_cycle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_every_unit_has_a_layer():
    placed = {u for layer in LAYERS for u in layer}
    units = {_unit(m) for m in _modules()} - {""}
    assert units - placed == set(), "place the new unit in LAYERS (and the README's architecture section)"
    assert placed - units == set(), "a unit in LAYERS no longer exists"


def _upward(graph: dict[str, set[str]]) -> list[str]:
    rank = {u: i for i, layer in enumerate(LAYERS) for u in layer}
    bad = []
    for src, targets in sorted(graph.items()):
        a = _unit(src)
        if not a:  # reenact/__init__.py: the public API, above everything
            continue
        for dst in sorted(targets):
            b = _unit(dst)
            if not b or a == b:  # `from reenact import __version__`; inside one unit
                continue
            if rank[b] >= rank[a]:
                bad.append(f"{src} -> {dst} ({a} on layer {rank[a]}, {b} on layer {rank[b]})")
    return bad


def test_no_import_runs_against_the_layers():
    assert _upward(_graph()) == []


@pytest.mark.parametrize(("src", "dst"), [("reenact.face.align", "reenact.inference.backend"),
                                          ("reenact.eval.metrics", "reenact.training.trainer"),
                                          ("reenact.data.datasets", "reenact.live.capture")])
def test_an_upward_or_sideways_import_is_caught(src, dst):
    g = _graph()
    g[src] = g[src] | {dst}
    assert any(line.startswith(f"{src} -> {dst} ") for line in _upward(g))
