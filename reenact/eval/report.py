"""The evaluation results: their JSON format (issue 5), a validator, and a markdown table.

Format::

    {"split": "test",
     "sets": {"photo": {"n_pairs": N, "methods": {"<name>": {"ssim": .., "psnr": .., "lower_ssim": ..,
                                                              "lower_psnr": .., "expression_error": ..,
                                                              "identity_distance": ..}}},
              "video": {... the same, plus "driver_following" per method}},
     "default": "<name>"}

A value that could not be measured (no usable pair, a constant clip for driver following)
is ``null`` in JSON: ``write_json`` turns nan/inf into ``null`` so the file stays strict JSON.
Extra keys (notes, versions, extra measures) are allowed; missing or mistyped ones are not.
The ``copy`` baseline's ``identity_distance`` is the distance between P_t and I_o, the
price of the expression change alone, which issue 5 asks to report beside each method's.

The expressive sets (``cremad``, ``scripted``; issue 17) count ``n_cases`` instead of pairs and
carry :data:`EXPRESSIVE_KEYS` per method, plus ``driver``: the drivers' own figures. In code the
results are the typed :class:`reenact.eval.results.EvalResults`; this module validates and writes
its JSON form (``to_dict``) and draws the tables from the typed form.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from reenact.errors import InputError
from reenact.eval.results import EXPRESSIVE_SETS, EvalResults
from reenact.weights_io import atomic_write_bytes

log = logging.getLogger(__name__)

#: Measures every method carries in every set; video pairs add driver following.
METRIC_KEYS: tuple[str, ...] = ("ssim", "psnr", "lower_ssim", "lower_psnr", "expression_error", "identity_distance")
#: Measures of the expressive sets (the live path on expressive drivers, output re-detected).
EXPRESSIVE_KEYS: tuple[str, ...] = ("brow_following", "eye_following", "mouth_open_following", "mouth_width_following",
                                    "blink_depth", "brow_hold_retention", "teeth_ratio", "identity_distance",
                                    "jitter_ratio", "face_found")
SET_KEYS: dict[str, tuple[str, ...]] = {
    "photo": METRIC_KEYS,
    "video": METRIC_KEYS + ("driver_following",),
    **{name: EXPRESSIVE_KEYS for name in EXPRESSIVE_SETS},
}
#: Allowed ranges of each measure (closed), to catch swapped or unscaled values.
RANGES: dict[str, tuple[float, float]] = {
    "ssim": (-1.0, 1.0),
    "lower_ssim": (-1.0, 1.0),
    "psnr": (0.0, 200.0),
    "lower_psnr": (0.0, 200.0),
    "expression_error": (0.0, math.inf),
    "identity_distance": (0.0, math.inf),
    "driver_following": (-1.0, 1.0),
    "brow_following": (-1.0, 1.0),
    "eye_following": (-1.0, 1.0),
    "mouth_open_following": (-1.0, 1.0),
    "mouth_width_following": (-1.0, 1.0),
    "blink_depth": (0.0, math.inf),
    "brow_hold_retention": (-math.inf, math.inf),
    "teeth_ratio": (0.0, math.inf),
    "jitter_ratio": (0.0, math.inf),
    "face_found": (0.0, 1.0),
}
#: Table columns: key, header (with the better direction), format.
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("ssim", "SSIM ↑", "{:.3f}"),
    ("psnr", "PSNR dB ↑", "{:.2f}"),
    ("lower_ssim", "lower SSIM ↑", "{:.3f}"),
    ("lower_psnr", "lower PSNR dB ↑", "{:.2f}"),
    ("expression_error", "expr. error px ↓", "{:.2f}"),
    ("identity_distance", "identity dist. ↓", "{:.3f}"),
    ("driver_following", "driver following ↑", "{:.3f}"),
)
#: Table columns of the expressive sets.
EXPRESSIVE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("brow_following", "brow ↑", "{:.2f}"),
    ("eye_following", "eye ↑", "{:.2f}"),
    ("mouth_open_following", "mouth open ↑", "{:.2f}"),
    ("mouth_width_following", "mouth width ↑", "{:.2f}"),
    ("blink_depth", "blink depth ↓", "{:.2f}"),
    ("brow_hold_retention", "10 s brow hold ↑", "{:.2f}"),
    ("teeth_ratio", "teeth / driver ↑", "{:.2f}"),
    ("identity_distance", "identity dist. ↓", "{:.3f}"),
    ("jitter_ratio", "jitter / driver ↓", "{:.2f}"),
    ("face_found", "face found", "{:.2f}"),
)
#: What each set is, for the table headings.
SET_TITLES: dict[str, str] = {
    "photo": "cross-identity photo pairs",
    "video": "self-reenactment video pairs",
    "cremad": "CREMA-D expressive clips through the live path",
    "scripted": "scripted held expressions through the live path",
}


def _is_number(v: Any) -> bool:
    """A real number (Python or numpy scalar), not a bool."""
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def problems(results: Any) -> list[str]:
    """Everything wrong with a results object, one line each (empty: valid)."""
    out: list[str] = []
    if not isinstance(results, dict):
        return [f"results must be a dict, got {type(results).__name__}"]
    if not isinstance(results.get("split"), str) or not results.get("split"):
        out.append(f"'split' must be a non-empty string, got {results.get('split')!r}")
    sets = results.get("sets")
    if not isinstance(sets, dict) or not sets:
        out.append(f"'sets' must be a non-empty dict of {sorted(SET_KEYS)}, got {type(sets).__name__}")
        sets = {}
    default = results.get("default")
    if not isinstance(default, str) or not default:
        out.append(f"'default' must be a method name, got {default!r}")
    for set_name, body in sets.items():
        where = f"sets.{set_name}"
        if set_name not in SET_KEYS:
            out.append(f"{where}: unknown set, expected one of {sorted(SET_KEYS)}")
            continue
        if not isinstance(body, dict):
            out.append(f"{where}: must be a dict, got {type(body).__name__}")
            continue
        count = "n_cases" if set_name in EXPRESSIVE_SETS else "n_pairs"
        n = body.get(count)
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
            out.append(f"{where}.{count} must be an int >= 0, got {n!r}")
        methods = body.get("methods")
        if not isinstance(methods, dict) or not methods:
            out.append(f"{where}.methods must be a non-empty dict of method -> measures, got {methods!r}")
            continue
        if isinstance(default, str) and default and default not in methods:
            out.append(f"{where}: the default method {default!r} is missing (methods: {', '.join(methods)})")
        for name, vals in methods.items():
            mwhere = f"{where}.methods.{name}"
            if not isinstance(vals, dict):
                out.append(f"{mwhere}: must be a dict of measures, got {type(vals).__name__}")
                continue
            for key in SET_KEYS[set_name]:
                if key not in vals:
                    out.append(f"{mwhere}: missing {key!r}")
                    continue
                v = vals[key]
                if v is None:
                    continue  # not measurable (e.g. no usable pair); shown as "–"
                if not _is_number(v):
                    out.append(f"{mwhere}.{key} must be a number or null, got {type(v).__name__} {v!r}")
                    continue
                if math.isnan(v):
                    continue  # in memory; written as null
                lo, hi = RANGES[key]
                if not lo <= v <= hi:
                    out.append(f"{mwhere}.{key} = {v} is outside [{lo}, {hi}]")
    return out


def validate(results: Any) -> None:
    """Raise ``ValueError`` listing every problem if ``results`` is not in the eval format."""
    found = problems(results)
    if found:
        raise ValueError("eval results are not in the expected format:\n  " + "\n  ".join(found))


def _finite_or_none(obj: Any) -> Any:
    """A copy with nan/inf floats replaced by None (strict JSON has neither)."""
    if isinstance(obj, dict):
        return {k: _finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_or_none(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return _finite_or_none(obj.item())
    return obj


def write_json(path: str | os.PathLike, results: EvalResults | dict) -> Path:
    """Validate, then write the results (typed, or their JSON form) atomically (temp file in the
    same folder + os.replace).

    nan/inf become ``null``; numpy scalars become plain numbers. Returns the path.
    """
    if isinstance(results, EvalResults):
        results = results.to_dict()
    validate(results)
    text = json.dumps(_finite_or_none(results), indent=2, allow_nan=False, ensure_ascii=False) + "\n"
    path = Path(path)
    atomic_write_bytes(path, text.encode("utf-8"))
    log.info("wrote %s", path)
    return path


def write_pairs_csv(path: str | os.PathLike, rows: list[dict]) -> Path:
    """Every pair's measures, one row per (set, method, pair), atomically; undefined values
    (a face dlib could not find again) are empty cells. Returns the path."""
    import csv
    import io

    buf = io.StringIO()
    names = list(dict.fromkeys(k for r in rows for k in r))  # photo rows add teeth columns; others leave them empty
    writer = csv.DictWriter(buf, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if isinstance(v, float) and not math.isfinite(v) else
                             f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    path = Path(path)
    atomic_write_bytes(path, buf.getvalue().encode("utf-8"))
    log.info("wrote %s", path)
    return path


def read_json(path: str | os.PathLike) -> dict:
    """Load and validate a results file (e.g. the model card's figures)."""
    path = Path(path)
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(f"eval results not found: {path}") from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"eval results are not JSON: {path}: {exc}") from exc
    try:
        validate(results)
    except ValueError as exc:
        raise InputError(f"{path}: {exc}") from exc
    return results


def _cell(v: Any, fmt: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return fmt.format(v)


def typed(results: EvalResults | dict) -> EvalResults:
    """The typed form of results given either way (a dict is validated first: ValueError when bad)."""
    if isinstance(results, EvalResults):
        return results
    validate(results)
    return EvalResults.from_dict(results)


def markdown_table(results: EvalResults | dict) -> str:
    """One markdown table per set (photo, video, then the expressive sets), the default method in bold.

    ↑/↓ in the headers say which direction is better; "–" is a value that could not be measured.
    The expressive sets add a row with the drivers' own figures (what a perfect copy would score).
    """
    res = typed(results)
    default = res.default
    lines = [f"Split: **{res.split}** · default method: **{default}**", ""]
    for set_name in [s for s in SET_KEYS if s in res.sets]:
        body = res.sets[set_name]
        what = "cases" if body.expressive else "pairs"
        lines.append(f"### {set_name}: {SET_TITLES[set_name]} (n = {body.n}{'' if what == 'pairs' else ' cases'})")
        lines.append("")
        cols = EXPRESSIVE_COLUMNS if body.expressive else [c for c in COLUMNS if c[0] in SET_KEYS[set_name]]
        lines.append("| method | " + " | ".join(h for _, h, _ in cols) + " |")
        lines.append("|:--|" + "--:|" * len(cols))
        for name, scores in body.methods.items():
            cells = [_cell(getattr(scores, k), f) for k, _, f in cols]
            label = name
            if name == default:
                label = f"**{name}** (default)"
                cells = [f"**{c}**" if c != "–" else c for c in cells]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        if body.driver is not None:
            lines.append("| *driver (reference)* | " + " | ".join(_cell(getattr(body.driver, k), f) for k, _, f in cols) + " |")
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"
