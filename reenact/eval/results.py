"""Typed evaluation results: frozen dataclasses that write (``to_dict``) and read (``from_dict``)
the eval.json format of :mod:`reenact.eval.report` (issue 20: no nested dicts read by string keys).

A measure that could not be taken (no face re-detected, a constant series) is ``nan`` here and
``null`` in JSON; a measure a set does not have (driver following on photo pairs) is ``None``
and left out of the JSON. Keys this version does not know (a newer or older eval wrote them)
are kept in ``extra`` and written back, so an old eval.json (the model card's) reads and writes
back to the same JSON.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

#: The sets scored on pairs of bank pictures (SSIM/PSNR against a real face) and those scored by
#: running the live per-frame path on expressive drivers (re-detected following, no ground truth).
PAIR_SETS: tuple[str, ...] = ("photo", "video")
EXPRESSIVE_SETS: tuple[str, ...] = ("cremad", "scripted")
#: Every set `reenact eval` knows, in report order.
ALL_SETS: tuple[str, ...] = PAIR_SETS + EXPRESSIVE_SETS
#: Target photos per expressive set by default: each runs a whole driver through the live path per method.
EXPRESSIVE_CASES = 2


def _num(v: Any) -> float:
    """A JSON number or null as a float (null -> nan: measured, but undefined)."""
    return math.nan if v is None else float(v)


class _Record:
    """``to_dict``/``from_dict`` for a flat dataclass of measures: ``REQUIRED`` fields are always
    written (nan as it is; ``report.write_json`` makes it null), ``OPTIONAL`` ones only when not
    None, then ``extra``. Field order is the JSON key order."""

    REQUIRED: ClassVar[tuple[str, ...]] = ()
    INTS: ClassVar[tuple[str, ...]] = ()  # counts, read as int

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):  # type: ignore[arg-type]
            if f.name == "extra":
                continue
            v = getattr(self, f.name)
            if f.name in self.REQUIRED or v is not None:
                out[f.name] = v
        out.update(self.extra)  # type: ignore[attr-defined]
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]):
        names = [f.name for f in fields(cls) if f.name != "extra"]  # type: ignore[arg-type]
        kw: dict[str, Any] = {}
        for n in names:
            if n not in d:
                continue
            v = d[n]
            if n in cls.INTS:
                kw[n] = None if v is None else int(v)
            else:
                kw[n] = _num(v)  # present as null: measured but undefined (nan); absent: not this set's (None)
        return cls(**kw, extra={k: v for k, v in d.items() if k not in names})


@dataclass(frozen=True)
class PairScores(_Record):
    """One method on one pair set (``photo``, ``video``): means over the set's pairs."""

    REQUIRED: ClassVar[tuple[str, ...]] = ("ssim", "psnr", "lower_ssim", "lower_psnr", "expression_error",
                                           "identity_distance")
    INTS: ClassVar[tuple[str, ...]] = ("redetect_failures", "driver_following_clips", "teeth_pairs")

    ssim: float = math.nan  # whole 256² crop against the real face I_o
    psnr: float = math.nan  # dB
    lower_ssim: float = math.nan  # lower face (mouth and chin) only
    lower_psnr: float = math.nan
    expression_error: float = math.nan  # px, landmarks re-detected on the output against J_o
    identity_distance: float = math.nan  # dlib descriptors, output against I_o
    redetect_failures: int | None = None  # pairs whose output dlib could not find a face in
    teeth_ratio: float | None = None  # photo: output's visible teeth over the real smiling photo's
    teeth_pairs: int | None = None  # photo: pairs whose real face shows teeth (what teeth_ratio sums over)
    driver_following: float | None = None  # video: mouth-opening correlation with the source, per clip
    driver_following_clips: int | None = None  # video: clips where driver following was defined
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExpressiveScores(_Record):
    """One method (or the driver itself) on one expressive set: means over the set's cases
    (a driver driving a target photo through the live per-frame path), output re-detected."""

    REQUIRED: ClassVar[tuple[str, ...]] = ("brow_following", "eye_following", "mouth_open_following",
                                           "mouth_width_following", "blink_depth", "brow_hold_retention",
                                           "teeth_ratio", "identity_distance", "jitter_ratio", "face_found")

    brow_following: float = math.nan  # Pearson r of brow height, driver vs output
    eye_following: float = math.nan  # ... of eye opening
    mouth_open_following: float = math.nan  # ... of the inner-lip gap
    mouth_width_following: float = math.nan  # ... of the mouth's width
    blink_depth: float = math.nan  # output eye opening on the driver's blink frames over its median (↓)
    brow_hold_retention: float = math.nan  # scripted: brow raise at the end of a 10 s hold over its start
    teeth_ratio: float = math.nan  # output teeth area over the driver's, where the driver shows teeth
    identity_distance: float = math.nan  # dlib descriptors, output frames against the target photo
    jitter_ratio: float = math.nan  # output landmark jitter over the driver's
    face_found: float = math.nan  # share of output frames dlib finds a face in
    extra: Mapping[str, Any] = field(default_factory=dict)


Scores = PairScores | ExpressiveScores


@dataclass(frozen=True)
class SetResult:
    """One set: its size and every method's scores (``methods`` in table order)."""

    name: str  # photo, video, cremad or scripted
    n: int  # pairs (photo, video) or cases (cremad, scripted)
    methods: Mapping[str, Scores]
    n_clips: int | None = None  # video: clips the pairs come from
    driver: ExpressiveScores | None = None  # expressive sets: the drivers' own figures (reference)
    extra: Mapping[str, Any] = field(default_factory=dict)  # expressive sets: drivers, targets, frames

    @property
    def expressive(self) -> bool:
        return self.name in EXPRESSIVE_SETS

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {("n_cases" if self.expressive else "n_pairs"): self.n,
                               "methods": {k: v.to_dict() for k, v in self.methods.items()}}
        if self.n_clips is not None:
            out["n_clips"] = self.n_clips
        if self.driver is not None:
            out["driver"] = self.driver.to_dict()
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, name: str, d: Mapping[str, Any]) -> SetResult:
        kind = ExpressiveScores if name in EXPRESSIVE_SETS else PairScores
        count = "n_cases" if name in EXPRESSIVE_SETS else "n_pairs"
        known = (count, "methods", "n_clips", "driver")
        return cls(name, int(d[count]), {k: kind.from_dict(v) for k, v in d["methods"].items()},
                   None if d.get("n_clips") is None else int(d["n_clips"]),
                   ExpressiveScores.from_dict(d["driver"]) if d.get("driver") is not None else None,
                   {k: v for k, v in d.items() if k not in known})


@dataclass(frozen=True)
class EvalResults:
    """What `reenact eval` measured: every set's scores and what was run to get them."""

    split: str  # val or test
    default: str  # the default method's name (its variant)
    sets: Mapping[str, SetResult]  # in the order they were run
    weights: Mapping[str, str] = field(default_factory=dict)  # role -> weights folder
    backend: Mapping[str, str] = field(default_factory=dict)  # role -> backend description
    skipped: Mapping[str, str] = field(default_factory=dict)  # method or set -> why it was not run
    max_pairs: int | None = None  # per-set pair cap (None: every pair)
    seed: int = 0  # identity split and subsample seed
    note: str = ""  # said beside the tables
    trained_on_identity: tuple[str, ...] = ()  # roles trained with the identity loss (optimistic identity)
    extra: Mapping[str, Any] = field(default_factory=dict)

    _KEYS: ClassVar[tuple[str, ...]] = ("split", "sets", "default", "weights", "backend", "skipped", "max_pairs",
                                        "seed", "note", "trained_on_identity")

    def to_dict(self) -> dict[str, Any]:
        """The eval.json object (key order as eval has always written it)."""
        out = {"split": self.split, "sets": {k: s.to_dict() for k, s in self.sets.items()}, "default": self.default,
               "weights": dict(self.weights), "backend": dict(self.backend), "skipped": dict(self.skipped),
               "max_pairs": self.max_pairs, "seed": self.seed, "note": self.note,
               "trained_on_identity": list(self.trained_on_identity)}
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EvalResults:
        """Read an eval.json object (validate it first: ``report.validate``); missing run details get defaults."""
        return cls(str(d["split"]), str(d["default"]), {k: SetResult.from_dict(k, v) for k, v in d["sets"].items()},
                   dict(d.get("weights") or {}), dict(d.get("backend") or {}), dict(d.get("skipped") or {}),
                   d.get("max_pairs"), int(d.get("seed") or 0), str(d.get("note") or ""),
                   tuple(d.get("trained_on_identity") or ()), {k: v for k, v in d.items() if k not in cls._KEYS})
