"""Evaluation the way the paper does it, plus what a video call needs, against the baselines.

Every method makes a 256² crop for a pair in the pair's own canonical crop (the target's),
and is scored against the real target face with the source's expression (I_o, J_o):

- ``copy``: P_t unchanged; ``mean``: P_t warped by the mean training expression displacement
  (ignores the source); ``warp``: P_t warped by the source's displacement L_s − J_s (no learning);
- ``pix2pix``: the paper's baseline, Ω fed the source's landmark image; ``oracle``: the default
  model's Ω fed the real J_o (how good Φ could be at most); ``paper`` / ``guided``: the variants.

Measures: SSIM and PSNR (whole crop and lower face), expression error (landmarks re-detected
on the output vs J_o), identity distance (dlib descriptors, output vs I_o), and on video pairs
driver following (per clip: correlation of the source's and the output's mouth opening).

Two sets, reported separately: ``photo`` (cross-identity pairs: target B neutral, source A ≠ B
with an expression, truth B with that expression; also teeth agreement, the output's visible
teeth over the real smiling photo's) and ``video`` (self-reenactment: per clip one calm target
frame driven by the clip's frames in order, truth the source frame). Two expressive sets,
``cremad`` and ``scripted``, run the live per-frame path itself on expressive drivers and score
the whole face by re-detecting the output (:mod:`reenact.eval.expressive_sets`).

Results are typed (:class:`reenact.eval.results.EvalResults`); ``to_dict`` is the eval.json form.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from reenact.config import MOUTH_INTERIORS
from reenact.data.datasets import FaceBank, Pair, build_bank, make_pairs
from reenact.errors import InputError, WeightsError
from reenact.eval.results import ALL_SETS, EXPRESSIVE_CASES, EXPRESSIVE_SETS, EvalResults, PairScores, SetResult
from reenact.face.topology import mouth_opening
from reenact.face.warp import warp_crop
from reenact.generate import generate_crop

log = logging.getLogger(__name__)

BASELINES = ("copy", "mean", "warp")
LEARNED = ("pix2pix", "oracle", "paper", "guided")
#: A video clip is kept with at least this many frames when ``max_pairs`` subsamples clips.
MIN_CLIP_FRAMES = 15
#: Figures of the paper that ours cannot be compared with (said beside our table).
PAPER_NOTE = ("The paper's 0.805 SSIM / 25.6 dB (Tables 3–4) are CK+ figures on its own crops: "
              "not comparable with these.")

Generator = Callable[[FaceBank, Pair], np.ndarray]  # -> generated crop, 256x256x3 uint8 BGR


# --------------------------------------------------------------------------- models


@dataclass
class Model:
    """A weights folder's Φ and Ω as numpy functions (an inference backend), making crops for pairs."""

    cfg: object  # ModelConfig
    phi: Callable[..., np.ndarray] | None  # batch-1 numpy in -> out; None for pix2pix
    omega: Callable[[np.ndarray], np.ndarray]  # [1,C,256,256] -> [1,C',256,256]
    folder: Path
    pix2pix: bool = False
    description: str = ""
    backend: object | None = None  # the Backend itself (the expressive sets run it live); None for pix2pix
    mouth_interior: str = "driver"  # guided: the driver's interior laid in J_gen's mouth, or Ω's own ("generated")

    def generate(self, bank: FaceBank, p: Pair, jgen_override: np.ndarray | None = None) -> np.ndarray:
        """The generated crop for a pair; ``jgen_override`` replaces Φ's J_gen (the oracle)."""
        return generate_crop(self.cfg, self.phi, self.omega, bank.crops[p.target], bank.points[p.target],
                             bank.points[p.source], bank.points[p.source_neutral],
                             jgen=jgen_override, pix2pix=self.pix2pix,
                             driver=bank.crops[p.source] if self.mouth_interior == "driver" else None).crop()


def _folder_config(folder: Path) -> tuple[object, bool]:
    """The ModelConfig of a weights folder and whether it holds the pix2pix baseline (WeightsError
    when missing/corrupt)."""
    from reenact.weights_io import CONFIG_NAME, PIX2PIX, baseline_of, read_config

    cfg = read_config(folder)
    return cfg, baseline_of(json.loads((folder / CONFIG_NAME).read_text())) == PIX2PIX


def load_model(folder: str | os.PathLike, role: str = "default", backend: str = "torch", threads: int = 2,
               mouth_interior: str = "driver") -> Model:
    """Load a weights folder for one role: ``default``, ``paper`` (must be the paper variant) or
    ``pix2pix`` (a folder written by ``reenact train omega --pix2pix``).

    Φ and Ω run through :func:`reenact.inference.backend.create_backend` (``torch`` or ``onnx``);
    a pix2pix folder holds only Ω's safetensors and always runs on torch. Weights of the wrong
    kind or a corrupt file raise :class:`WeightsError` (safetensors only, never unpickled).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise WeightsError(f"weights folder {folder} does not exist", hint="pass a folder written by `reenact train`")
    cfg, p2p = _folder_config(folder)
    flag = {"default": "--weights", "paper": "--paper-weights", "pix2pix": "--pix2pix-weights"}[role]
    if role == "pix2pix":
        if not p2p:
            raise WeightsError(f"{folder} is not a pix2pix baseline ({flag}); train one with `reenact train omega --pix2pix`")
        return _torch_omega_only(folder, cfg, threads)
    if p2p:
        raise WeightsError(f"{folder} is a pix2pix baseline; pass it with --pix2pix-weights, not {flag}")
    if role == "paper" and cfg.variant != "paper":
        raise WeightsError(f"{folder} holds the {cfg.variant!r} variant ({cfg.describe()}), expected 'paper' for {flag}")
    from reenact.inference.backend import create_backend

    be = create_backend(backend, folder, device="cpu", threads=threads)
    desc = be.describe() + (f"; mouth interior: {mouth_interior}" if be.cfg.variant == "guided" else "")
    return Model(be.cfg, be.phi, be.omega, folder, False, desc, be, mouth_interior)


def _torch_omega_only(folder: Path, cfg: object, threads: int) -> Model:
    """Ω alone on torch (pix2pix folders have no Φ, so no backend fits them)."""
    import torch

    from reenact.weights_io import load_networks

    if threads:
        torch.set_num_threads(threads)
    _, nets = load_networks(folder, ("omega",))
    omega = nets["omega"].eval()

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return omega(torch.from_numpy(np.ascontiguousarray(x, np.float32))).numpy()

    return Model(cfg, None, run, folder, True, f"torch (cpu fp32; pix2pix {cfg.describe()})")


# --------------------------------------------------------------------------- methods


def mean_displacement(bank: FaceBank) -> np.ndarray:
    """Mean (L_s − J_s) over the train split's expression pairs: the `mean` baseline's expression."""
    pairs = [p for p in make_pairs(bank, "train", neutral_share=0.0) if p.source != p.source_neutral]
    if not pairs:
        raise InputError("no training pairs to average an expression from (the `mean` baseline needs the train split)")
    return np.mean([bank.points[p.source] - bank.points[p.source_neutral] for p in pairs], axis=0).astype(np.float32)


def methods(default: Model, paper: Model | None, pix2pix: Model | None, mean_disp: np.ndarray) -> dict[str, Generator]:
    """Every method's generator, baselines first, the default model last."""
    out: dict[str, Generator] = {
        "copy": lambda b, p: b.crops[p.target],
        "mean": lambda b, p: warp_crop(b.crops[p.target], b.points[p.target], b.points[p.target] + mean_disp),
        "warp": lambda b, p: warp_crop(b.crops[p.target], b.points[p.target],
                                       b.points[p.target] + b.points[p.source] - b.points[p.source_neutral]),
    }
    if pix2pix is not None:
        out["pix2pix"] = pix2pix.generate
    out["oracle"] = lambda b, p: default.generate(b, p, jgen_override=b.points[p.truth])
    if paper is not None and default.cfg.variant != "paper":
        out["paper"] = paper.generate
    out[default.cfg.variant] = default.generate
    return out


# --------------------------------------------------------------------------- scoring


class _Scorer:
    """Re-detection (dlib) and face descriptors on crops, with the real faces' results cached."""

    def __init__(self) -> None:
        from reenact.face.dlib_detector import DlibDetector

        self.det = DlibDetector(detect_width=256)
        self._truth: dict[int, tuple] = {}
        self._full = None

    @property
    def det_full(self):
        """A detector for whole frames (driver videos, live outputs), made when first needed."""
        if self._full is None:
            from reenact.face.dlib_detector import DlibDetector

            self._full = DlibDetector()
        return self._full

    def detect(self, img: np.ndarray):
        lm = self.det.detect(img)
        return lm if lm.found else None

    def descriptor(self, img: np.ndarray, lm) -> np.ndarray:
        from reenact.face.dlib_detector import face_descriptor

        return face_descriptor(img, lm).astype(np.float64)

    def truth(self, bank: FaceBank, k: int) -> tuple:
        """(landmarks, descriptor) of a real crop, each None when dlib finds no face there."""
        if k not in self._truth:
            lm = self.detect(bank.crops[k])
            self._truth[k] = (lm, self.descriptor(bank.crops[k], lm) if lm is not None else None)
        return self._truth[k]


def score_pairs(bank: FaceBank, pairs: list[Pair], gen: Generator, scorer: _Scorer, video: bool,
                on_pair: Callable[[], None] | None = None, per_pair: list[dict] | None = None,
                teeth: bool = False) -> PairScores:
    """All measures of one method on one set of pairs.

    SSIM/PSNR need no detection and use every pair. Expression error, identity distance and
    mouth opening need the face re-detected on the output: pairs where that fails are counted
    in ``redetect_failures`` (and are a nan in their clip's driver-following series).
    ``teeth`` (photo pairs): the output's visible-teeth area against the real face's, summed over
    the pairs whose real face shows teeth (``expressive.teeth_ratio``).
    ``per_pair``, when given, receives the row of measures of every pair (nan where undefined), so
    the worst pairs can be found and looked at; the set's figures are the means of those rows.
    """
    from reenact.eval.expressive import TEETH_SHOWN, teeth_area, teeth_ratio
    from reenact.eval.metrics import expression_error, lower_face_mask, psnr, ssim

    keys = ("ssim", "psnr", "lower_ssim", "lower_psnr", "expression_error", "identity_distance")
    rows: list[dict] = []
    failed = 0
    for p in pairs:
        g = gen(bank, p)
        real = bank.crops[p.truth]
        mask = lower_face_mask(bank.points[p.truth])  # one mask per pair (J_o), the same for every method
        row = {"target": bank.records[p.target].key, "source": bank.records[p.source].key, "truth": bank.records[p.truth].key,
               "ssim": ssim(g, real), "psnr": psnr(g, real),
               "lower_ssim": ssim(g, real, mask=mask), "lower_psnr": psnr(g, real, mask=mask),
               "expression_error": float("nan"), "identity_distance": float("nan"),
               "source_mouth_opening": mouth_opening(bank.points[p.source]), "output_mouth_opening": float("nan")}
        lm = scorer.detect(g)
        if lm is None:
            failed += 1
        else:
            row["expression_error"] = expression_error(lm.points, bank.points[p.truth])
            _, t_desc = scorer.truth(bank, p.truth)
            if t_desc is not None:
                row["identity_distance"] = float(np.linalg.norm(scorer.descriptor(g, lm) - t_desc))
            row["output_mouth_opening"] = mouth_opening(lm.points)
        if teeth:
            t_lm, _ = scorer.truth(bank, p.truth)
            row["truth_teeth"] = teeth_area(real, t_lm.points) if t_lm is not None else float("nan")
            row["output_teeth"] = teeth_area(g, lm.points) if lm is not None else float("nan")
        rows.append(row)
        if on_pair is not None:
            on_pair()
    if per_pair is not None:
        per_pair.extend(rows)
    defined = {k: [r[k] for r in rows if r[k] == r[k]] for k in keys}  # nan != nan: undefined for that pair
    out: dict = {k: (float(np.mean(v)) if v else float("nan")) for k, v in defined.items()}
    out["redetect_failures"] = failed
    if teeth:
        truth_t = np.array([r["truth_teeth"] for r in rows], np.float64)
        out["teeth_ratio"] = teeth_ratio(truth_t, np.array([r["output_teeth"] for r in rows], np.float64))
        out["teeth_pairs"] = int(np.sum(truth_t > TEETH_SHOWN))
    if video:
        from reenact.eval.metrics import driver_following

        openings: dict[str, list[tuple[float, float]]] = {}  # target -> (source opening, output opening)
        for r in rows:
            openings.setdefault(r["target"], []).append((r["source_mouth_opening"], r["output_mouth_opening"]))
        corr = [driver_following(np.array([a for a, _ in s]), np.array([b for _, b in s])) for s in openings.values()]
        ok = [c for c in corr if np.isfinite(c)]
        out["driver_following"] = float(np.mean(ok)) if ok else float("nan")
        out["driver_following_clips"] = len(ok)  # clips where following was defined (of len(corr))
    return PairScores.from_dict(out)


# --------------------------------------------------------------------------- pairs


def _clip_pairs(bank: FaceBank, pairs: list[Pair]) -> dict[str, list[Pair]]:
    """Video pairs grouped by clip: one calm target per clip (not J_s's own frame when the clip
    has another calm one, so `warp` is not exact by construction), sources in frame order."""
    by_target: dict[str, dict[int, list[Pair]]] = {}
    for p in pairs:
        clip = bank.records[p.target].group or bank.records[p.target].path
        by_target.setdefault(clip, {}).setdefault(p.target, []).append(p)
    out = {}
    for clip, targets in by_target.items():
        order = list(targets)  # make_pairs lists a clip's calm targets calmest first
        t = next((k for k in order if k != targets[k][0].source_neutral), order[0])
        out[clip] = targets[t]
    return out


def select_pairs(bank: FaceBank, split: str, max_pairs: int | None = None, seed: int = 0) -> dict[str, list[Pair]]:
    """The photo and video pairs of one split part, each set at most ``max_pairs`` (seeded).

    Photo: cross-identity expression pairs (a seeded subsample). Video: whole clips are kept
    (seeded choice of clips, at least :data:`MIN_CLIP_FRAMES` frames each), frames evenly
    thinned in order, so driver following still sees each clip's motion.
    """
    pairs = make_pairs(bank, split, seed=seed, neutral_share=0.0)
    ident = [r.identity for r in bank.records]
    photo = [p for p in pairs if p.kind == "photo" and p.source != p.source_neutral and ident[p.target] != ident[p.source]]
    rng = np.random.default_rng(seed)
    if max_pairs and len(photo) > max_pairs:
        photo = [photo[i] for i in sorted(rng.choice(len(photo), max_pairs, replace=False))]
    clips = _clip_pairs(bank, [p for p in pairs if p.kind == "video"])
    names = sorted(clips)
    video: list[Pair] = []
    if max_pairs and sum(len(v) for v in clips.values()) > max_pairs:
        rng.shuffle(names)
        k = min(len(names), max(1, max_pairs // MIN_CLIP_FRAMES))
        per = max(1, max_pairs // k)
        for name in sorted(names[:k]):
            ps = clips[name]
            keep = np.unique(np.linspace(0, len(ps) - 1, min(per, len(ps))).round().astype(int))
            video += [ps[i] for i in keep]
    else:
        for name in names:
            video += clips[name]
    return {"photo": photo, "video": video}


# --------------------------------------------------------------------------- run


@dataclass
class EvalRun:
    """What :func:`evaluate` used, for the outputs (grids need the bank and the generators)."""

    results: EvalResults
    bank: FaceBank
    sets: dict[str, list[Pair]]
    gens: dict[str, Generator]
    models: dict[str, Model] = field(default_factory=dict)
    pair_rows: list[dict] = field(default_factory=list)  # one row per (set, method, pair): pairs.csv
    case_rows: list[dict] = field(default_factory=list)  # one row per (expressive set, method, case): cases.csv
    live_grids: dict = field(default_factory=dict)  # expressive set -> (row labels, driver cells, {method: cells})


def evaluate(weights: str | os.PathLike, data: str | os.PathLike, split: str = "test",
             paper_weights: str | os.PathLike | None = None, pix2pix_weights: str | os.PathLike | None = None,
             max_pairs: int | None = None, cache_dir: str | os.PathLike | None = None, progress: bool = True,
             out_dir: str | os.PathLike | None = None, backend: str = "torch", threads: int = 2,
             seed: int = 0, sets: tuple[str, ...] = ALL_SETS, expressive_cases: int = EXPRESSIVE_CASES,
             expressive_frames: int | None = None, mouth_interior: str = "driver") -> EvalResults:
    """Run every method on the split's sets; returns the typed results (``to_dict``: eval.json).

    With ``out_dir``: eval.json, eval.md, grid PNGs and the training curves are written there.
    """
    run = run_eval(weights, data, split, paper_weights, pix2pix_weights, max_pairs, cache_dir, progress,
                   backend, threads, seed, sets, expressive_cases, expressive_frames, mouth_interior)
    if out_dir is not None:
        write_outputs(run, Path(out_dir), Path(weights))
    return run.results


def _check_run_args(split: str, max_pairs: int | None, sets: tuple[str, ...], expressive_cases: int) -> None:
    if split not in ("val", "test", "train"):
        raise InputError(f"unknown split {split!r}; expected val or test")
    if max_pairs is not None and max_pairs < 1:
        raise InputError(f"max_pairs must be >= 1, got {max_pairs}")
    unknown = [s for s in sets if s not in ALL_SETS]
    if unknown or not sets:
        raise InputError(f"unknown eval set(s) {', '.join(unknown) or '(none given)'}; expected some of {', '.join(ALL_SETS)}")
    if expressive_cases < 1:
        raise InputError(f"expressive_cases must be >= 1, got {expressive_cases}")


def _load_models(weights, paper_weights, pix2pix_weights, backend: str, threads: int,
                 mouth_interior: str = "driver") -> tuple[dict[str, Model], dict[str, str]]:
    """The default model and the optional ones, and why each optional one is left out."""
    models = {"default": load_model(weights, "default", backend, threads, mouth_interior)}
    skipped: dict[str, str] = {}
    if paper_weights:
        models["paper"] = load_model(paper_weights, "paper", backend, threads)
    elif models["default"].cfg.variant != "paper":
        skipped["paper"] = "no --paper-weights given"
    if pix2pix_weights:
        models["pix2pix"] = load_model(pix2pix_weights, "pix2pix", backend, threads)
    else:
        skipped["pix2pix"] = "no --pix2pix-weights given"
    for name, why in skipped.items():
        log.warning("method %s skipped: %s", name, why)
    return models, skipped


def live_backends(models: dict[str, Model]) -> dict[str, object]:
    """The methods the expressive sets run on the live path: ``warp``, ``paper`` (when given), the default."""
    from reenact.eval.expressive_sets import WarpBackend

    default = models["default"]
    out: dict[str, object] = {"warp": WarpBackend(default.cfg)}
    if "paper" in models and default.cfg.variant != "paper":
        out["paper"] = models["paper"].backend
    out[default.cfg.variant] = default.backend
    return out


def run_eval(weights: str | os.PathLike, data: str | os.PathLike, split: str = "test",
             paper_weights: str | os.PathLike | None = None, pix2pix_weights: str | os.PathLike | None = None,
             max_pairs: int | None = None, cache_dir: str | os.PathLike | None = None, progress: bool = True,
             backend: str = "torch", threads: int = 2, seed: int = 0, sets: tuple[str, ...] = ALL_SETS,
             expressive_cases: int = EXPRESSIVE_CASES, expressive_frames: int | None = None,
             mouth_interior: str = "driver") -> EvalRun:
    """The evaluation itself (see :func:`evaluate`); weights are checked before any data is read.

    ``sets``: which of :data:`ALL_SETS` to run; an expressive set whose data is absent is left out
    with a one-line note (``skipped``). ``expressive_cases``: targets per expressive set;
    ``expressive_frames``: cut each expressive driver to its first frames (a quick check).
    ``mouth_interior``: the guided default's mouth interior, as `reenact live --mouth-interior`.
    """
    _check_run_args(split, max_pairs, sets, expressive_cases)
    if mouth_interior not in MOUTH_INTERIORS:
        raise InputError(f"unknown mouth interior {mouth_interior!r}; expected {' or '.join(MOUTH_INTERIORS)}")
    models, skipped = _load_models(weights, paper_weights, pix2pix_weights, backend, threads, mouth_interior)
    default = models["default"]
    bank = build_bank(data, cache_dir=cache_dir, seed=seed, progress=progress)
    pair_sets = {k: v for k, v in select_pairs(bank, split, max_pairs, seed).items() if k in sets}
    no_pairs = (f"no usable pairs ({len(bank.indices(split))} usable pictures of "
                f"{sum(v == split for v in bank.split.values())} people)")
    if pair_sets and not any(pair_sets.values()) and not any(s in EXPRESSIVE_SETS for s in sets):
        raise InputError(f"the {split} split of {data} has {no_pairs}",
                         hint="check the pictures with `reenact landmarks`, or use a dataset with more people")
    gens = methods(default, models.get("paper"), models.get("pix2pix"), mean_displacement(bank)) if any(pair_sets.values()) else {}
    results: dict[str, SetResult] = {}
    total = sum(len(v) for v in pair_sets.values()) * len(gens)
    pair_rows: list[dict] = []
    scorer = _Scorer()
    with tqdm(total=total, desc=f"eval {split}", unit="pair", disable=not progress or not total) as bar:
        for set_name, pairs in pair_sets.items():
            if not pairs:
                log.warning("the %s split has no %s pairs; that set is not reported", split, set_name)
                continue
            scores: dict[str, PairScores] = {}
            for name, gen in gens.items():
                bar.set_postfix_str(f"{set_name} {name}")
                rows: list[dict] = []
                scores[name] = score_pairs(bank, pairs, gen, scorer, set_name == "video", lambda: bar.update(1), rows,
                                           teeth=set_name == "photo")
                pair_rows += [{"set": set_name, "method": name, "pair": i, **r} for i, r in enumerate(rows)]
            n_clips = len({bank.records[p.target].group for p in pairs}) if set_name == "video" else None
            results[set_name] = SetResult(set_name, len(pairs), scores, n_clips)
    case_rows: list[dict] = []
    grids: dict = {}
    wanted = tuple(s for s in EXPRESSIVE_SETS if s in sets)
    if wanted:
        from reenact.eval.expressive_sets import expressive_cases as make_cases
        from reenact.eval.expressive_sets import run_sets

        cases, why = make_cases(bank, Path(data), split, wanted, expressive_cases, seed, scorer.det_full, expressive_frames)
        for name, reason in why.items():
            log.warning("set %s not evaluated: %s", name, reason)
        skipped.update(why)
        n = sum(len(c) for c in cases.values()) * (len(live_backends(models)))
        with tqdm(total=n, desc=f"eval {split} live", unit="case", disable=not progress or not n) as bar:
            def step(what: str) -> None:
                bar.set_postfix_str(what)
                bar.update(1)

            live, case_rows, grids = run_sets(cases, live_backends(models), scorer.det_full, threads, step,
                                              {default.cfg.variant: mouth_interior})
        results.update(live)
    if not results:
        why = ([no_pairs] if pair_sets else []) + [f"{k}: {v}" for k, v in skipped.items() if k in sets]
        raise InputError(f"the {split} split of {data} has nothing to evaluate: " + "; ".join(why),
                         hint="check the pictures with `reenact landmarks`, or pass --data with more people "
                              "(../shared/data holds london, grid and cremad)")
    res = EvalResults(split, default.cfg.variant, results,
                      {k: str(m.folder) for k, m in models.items()}, {k: m.description for k, m in models.items()},
                      skipped, max_pairs, seed, PAPER_NOTE,
                      tuple(k for k, m in models.items() if trained_on_identity(m.folder)))
    return EvalRun(res, bank, pair_sets, gens, models, pair_rows, case_rows, grids)


# --------------------------------------------------------------------------- outputs


def trained_on_identity(folder: str | os.PathLike) -> bool:
    """Whether the Ω in ``folder`` was trained with ``--extra-loss identity`` (as its run's
    ``train_omega.json`` records): then the identity distance is measured with the very network
    it was trained against, and is optimistic."""
    record = Path(folder) / "train_omega.json"
    try:
        return "identity" in json.loads(record.read_text()).get("extra_losses", [])
    except (OSError, ValueError, AttributeError):
        return False


#: Said under the expressive sets' tables: how their figures are measured.
EXPRESSIVE_NOTE = (
    "cremad / scripted: each case runs a driver through `reenact live`'s own per-frame path (smoothing, automatic "
    "calibration, Φ, Ω, paste-back) onto a neutral London photo of the split; driver and output are re-detected "
    "(dlib). Following: Pearson r with the driver's brow height, eye opening, mouth opening and width; blink depth: "
    "the output's eye opening on the driver's blink frames over its own median (the driver row: the driver's own); "
    "10 s brow hold: the brow raise at the end of the hold over its start; teeth: the output's visible-teeth area "
    "over the driver's on frames where the driver shows teeth; identity: dlib distance to the target photo; jitter: "
    "landmark jitter over the driver's. `warp` is the same live path with Φ and Ω replaced by the plain warp.")


def report_markdown(results: EvalResults | dict) -> str:
    """The markdown tables (report.markdown_table) and notes: skipped methods and sets, re-detection failures."""
    from reenact.eval import report

    res = report.typed(results)
    lines = [report.markdown_table(res).rstrip("\n"), ""]
    for set_name, body in res.sets.items():
        fails = {m: v.redetect_failures or 0 for m, v in body.methods.items() if isinstance(v, PairScores)}
        if any(fails.values()):
            lines.append(f"- {set_name}: no face re-detected on the output (left out of expression error, "
                         f"identity distance, driver following) for " + ", ".join(
                             f"{m} {k}/{body.n}" for m, k in fails.items() if k) + ".")
        teeth = {m: v.teeth_pairs for m, v in body.methods.items() if isinstance(v, PairScores) and v.teeth_pairs is not None}
        if teeth:
            ratio = ", ".join(f"{m} {report._cell(v.teeth_ratio, '{:.2f}')}" for m, v in body.methods.items())
            lines.append(f"- {set_name}: visible teeth, output over the real face's, on the {max(teeth.values())} pairs "
                         f"whose real face shows teeth: {ratio}.")
    for name, why in res.skipped.items():
        lines.append(f"- `{name}` not evaluated: {why}.")
    if any(b.expressive for b in res.sets.values()):
        lines.append(f"- {EXPRESSIVE_NOTE}")
    if any(not b.expressive for b in res.sets.values()):
        lines.append("- `copy`'s identity distance is P_t's distance to I_o: what the expression change alone costs.")
    for name in res.trained_on_identity:
        lines.append(f"- `{res.default if name == 'default' else name}` was trained with `--extra-loss identity`, "
                     "against the dlib network that measures identity distance here: its identity figure is optimistic.")
    lines.append(f"- {PAPER_NOTE}")
    return "\n".join(lines) + "\n"


def _grid_cells(bank: FaceBank, pairs: list[Pair], n: int = 4) -> tuple[list[tuple[int, int]], list[int]]:
    """Up to ``n`` sources (index, its J_s) and ``n`` targets, each of a different person:
    each source person's strongest expression (largest ‖L_s − J_s‖) among the pairs."""
    ident = [r.identity for r in bank.records]
    best: dict[str, tuple[float, int, int]] = {}
    targets: dict[str, int] = {}
    for p in pairs:
        d = float(np.linalg.norm(bank.points[p.source] - bank.points[p.source_neutral]))
        if d > best.get(ident[p.source], (-1.0, 0, 0))[0]:
            best[ident[p.source]] = (d, p.source, p.source_neutral)
        targets.setdefault(ident[p.target], p.target)
    sources = [(s, sn) for _, (_, s, sn) in sorted(best.items())][:n]
    return sources, [t for _, t in sorted(targets.items())][:n]


def write_outputs(run: EvalRun, out: Path, weights: Path) -> list[Path]:
    """eval.json, eval.md, pairs.csv (every pair's measures), cases.csv (every expressive case's), Fig. 3–4 style
    grids (grid.png: the default; grid_<method>.png: the other learned methods; grid_<set>.png: an expressive
    set's first case, driver | each method, at chosen frames) and Fig. 5–6 style curves (curves.png) in ``out``;
    returns the paths."""
    from reenact.eval import plots, report
    from reenact.weights_io import atomic_write_bytes

    out.mkdir(parents=True, exist_ok=True)
    written = [report.write_json(out / "eval.json", run.results)]
    md = out / "eval.md"
    atomic_write_bytes(md, report_markdown(run.results).encode("utf-8"))
    written.append(md)
    if run.pair_rows:
        written.append(report.write_pairs_csv(out / "pairs.csv", run.pair_rows))
    if run.case_rows:
        written.append(report.write_pairs_csv(out / "cases.csv", run.case_rows))
    pairs = run.sets.get("photo") or run.sets.get("video") or []  # the paper's grids are photo pairs; video when none
    sources, targets = _grid_cells(run.bank, pairs)
    default = run.results.default
    if sources and targets:
        b = run.bank
        for name in [default] + [m for m in ("paper", "pix2pix") if m in run.gens and m != default]:
            gen = run.gens[name]
            cells = [[gen(b, Pair(t, s, sn, t, "photo")) for (s, sn) in sources] for t in targets]
            grid = plots.result_grid([b.crops[s] for s, _ in sources], [b.crops[t] for t in targets], cells)
            written.append(plots.write_png(out / ("grid.png" if name == default else f"grid_{name}.png"), grid))
    for set_name, (labels, driver_cells, outputs) in run.live_grids.items():
        columns = [("driver", driver_cells)] + [(m, c) for m, c in outputs.items()]
        if driver_cells and all(len(c) == len(driver_cells) for _, c in columns):
            written.append(plots.write_png(out / f"grid_{set_name}.png", plots.frame_grid(labels, columns)))
    curves = Path(weights) / "metrics_omega.jsonl"
    if curves.is_file():
        try:
            written.append(plots.curves_png(curves, out / "curves.png"))
        except InputError as exc:
            log.warning("no training curves drawn from %s: %s", curves, exc)
    else:
        log.info("no %s: no training curves drawn", curves)
    return written
