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
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from reenact.errors import InputError, WeightsError
from reenact.face.topology import mouth_opening
from reenact.face.warp import warp_crop
from reenact.inputs import from_net, guided_omega_input, paper_omega_input, raster, to_net
from reenact.training.datasets import FaceBank, Pair, build_bank, make_pairs

log = logging.getLogger(__name__)

BASELINES = ("copy", "mean", "warp")
Generator = Callable[[FaceBank, Pair], np.ndarray]


@dataclass
class Model:
    """A weights folder's networks (torch), ready to generate crops."""

    cfg: object
    phi: object | None
    omega: object
    pix2pix: bool = False

    @staticmethod
    def load(folder: str | os.PathLike, expect_variant: str | None = None) -> Model:
        import json

        from reenact.weights_io import load_networks, read_config

        folder = Path(folder)
        cfg = read_config(folder)
        if expect_variant and cfg.variant != expect_variant:
            raise WeightsError(f"{folder} holds the {cfg.variant!r} variant, expected {expect_variant!r}")
        extra = json.loads((folder / "config.json").read_text())
        p2p = extra.get("baseline") == "pix2pix"
        _, nets = load_networks(folder, ("omega",) if p2p else ("phi", "omega"))
        return Model(cfg, nets.get("phi"), nets["omega"], p2p)

    def generate(self, bank: FaceBank, p: Pair, jgen_override: np.ndarray | None = None) -> np.ndarray:
        import torch

        P_t, L_t = bank.crops[p.target], bank.points[p.target]
        L_s, J_s = bank.points[p.source], bank.points[p.source_neutral]
        t = torch.as_tensor
        with torch.no_grad():
            if self.cfg.variant == "guided":
                if jgen_override is not None:
                    jgen = jgen_override
                else:
                    jgen = self.phi(t(L_s[None]), t(J_s[None]), t(L_t[None]))[0].numpy()
                x, warped = guided_omega_input(P_t, L_t, jgen, self.cfg)
                head = self.omega(t(x[None]))[0].numpy()
                return from_net(np.clip(to_net(warped) + head[3:4] * head[:3], -1, 1))
            if self.pix2pix:
                jimg = raster(self.cfg, L_s)
            elif jgen_override is not None:
                jimg = raster(self.cfg, jgen_override)
            else:
                jimg = self.phi(t(raster(self.cfg, L_s)[None]), t(raster(self.cfg, L_t)[None]))[0].numpy()
            y = self.omega(t(paper_omega_input(P_t, jimg)[None]))[0].numpy()
            return from_net(y)


def mean_displacement(bank: FaceBank) -> np.ndarray:
    """Mean (L_s − J_s) over the train split's expression pairs: the `mean` baseline's expression."""
    pairs = [p for p in make_pairs(bank, "train", neutral_share=0.0) if p.source != p.source_neutral]
    if not pairs:
        raise InputError("no training pairs to average an expression from")
    return np.mean([bank.points[p.source] - bank.points[p.source_neutral] for p in pairs], axis=0).astype(np.float32)


def methods(default: Model, paper: Model | None, pix2pix: Model | None, mean_disp: np.ndarray, default_name: str) -> dict[str, Generator]:
    out: dict[str, Generator] = {
        "copy": lambda b, p: b.crops[p.target],
        "mean": lambda b, p: warp_crop(b.crops[p.target], b.points[p.target], b.points[p.target] + mean_disp),
        "warp": lambda b, p: warp_crop(b.crops[p.target], b.points[p.target],
                                       b.points[p.target] + b.points[p.source] - b.points[p.source_neutral]),
    }
    if pix2pix is not None:
        out["pix2pix"] = pix2pix.generate
    out["oracle"] = lambda b, p: default.generate(b, p, jgen_override=b.points[p.truth])
    if paper is not None and default_name != "paper":
        out["paper"] = paper.generate
    out[default_name] = default.generate
    return out


class _Scorer:
    """Re-detection and descriptors on crops, with the real faces' results cached."""

    def __init__(self) -> None:
        from reenact.face.dlib_detector import DlibDetector

        self.det = DlibDetector(detect_width=256)
        self._truth: dict[int, tuple] = {}

    def detect(self, img: np.ndarray):
        lm = self.det.detect(img)
        return lm if lm.found else None

    def descriptor(self, img: np.ndarray, lm) -> np.ndarray:
        from reenact.face.dlib_detector import face_descriptor

        return face_descriptor(img, lm)

    def truth(self, bank: FaceBank, k: int):
        if k not in self._truth:
            lm = self.detect(bank.crops[k])
            self._truth[k] = (lm, self.descriptor(bank.crops[k], lm) if lm is not None else None)
        return self._truth[k]


def score_pairs(bank: FaceBank, pairs: list[Pair], gen: Generator, scorer: _Scorer, video: bool,
                keep: list | None = None) -> dict:
    """All measures of one method on one set of pairs."""
    from reenact.eval.metrics import expression_error, lower_face_mask, psnr, ssim

    rows: dict[str, list[float]] = {k: [] for k in ("ssim", "psnr", "lower_ssim", "lower_psnr", "expression_error", "identity_distance")}
    failed = 0
    openings: dict[tuple, list[tuple[float, float]]] = {}
    for p in pairs:
        g = gen(bank, p)
        if keep is not None:
            keep.append(g)
        real = bank.crops[p.truth]
        mask = lower_face_mask(bank.points[p.truth])
        rows["ssim"].append(ssim(g, real))
        rows["psnr"].append(psnr(g, real))
        rows["lower_ssim"].append(ssim(g, real, mask=mask))
        rows["lower_psnr"].append(psnr(g, real, mask=mask))
        lm = scorer.detect(g)
        if lm is None:
            failed += 1
            if video:
                openings.setdefault((p.target,), []).append((mouth_opening(bank.points[p.source]), np.nan))
            continue
        rows["expression_error"].append(expression_error(lm.points, bank.points[p.truth]))
        t_lm, t_desc = scorer.truth(bank, p.truth)
        if t_desc is not None:
            rows["identity_distance"].append(float(np.linalg.norm(scorer.descriptor(g, lm) - t_desc)))
        if video:
            openings.setdefault((p.target,), []).append((mouth_opening(bank.points[p.source]), mouth_opening(lm.points)))
    out = {k: (float(np.mean(v)) if v else float("nan")) for k, v in rows.items()}
    out["redetect_failures"] = failed
    if video:
        from reenact.eval.metrics import driver_following

        corr = [driver_following(np.array([a for a, _ in s]), np.array([b for _, b in s])) for s in openings.values()]
        out["driver_following"] = float(np.nanmean(corr)) if corr and not np.all(np.isnan(corr)) else float("nan")
    return out


def select_pairs(bank: FaceBank, split: str, max_pairs: int | None, seed: int = 0) -> dict[str, list[Pair]]:
    """Photo pairs (cross-identity and same-person; at most ``max_pairs``, seeded) and video pairs
    (one target per clip driven by all of the clip's frames, so driver following sees whole clips)."""
    pairs = make_pairs(bank, split, seed=seed)
    photo = [p for p in pairs if p.kind == "photo" and p.source != p.source_neutral]
    video_all = [p for p in pairs if p.kind == "video"]
    rng = np.random.default_rng(seed)
    if max_pairs and len(photo) > max_pairs:
        photo = [photo[i] for i in sorted(rng.choice(len(photo), max_pairs, replace=False))]
    # video: the first calm target of each clip, driven by every frame of that clip (in order)
    video: list[Pair] = []
    seen_clip: dict[str, int] = {}
    for p in video_all:
        clip = bank.records[p.target].group
        if seen_clip.setdefault(clip, p.target) == p.target:
            video.append(p)
    return {"photo": photo, "video": video}


def evaluate(weights: str | os.PathLike, data: str | os.PathLike, split: str = "test", paper_weights=None,
             pix2pix_weights=None, max_pairs: int | None = None, cache_dir=None, progress: bool = True,
             out_dir: str | os.PathLike | None = None) -> dict:
    """Run every method on the split's photo and video pairs; returns the issue-5 results dict."""
    if split not in ("val", "test", "train"):
        raise InputError(f"unknown split {split!r}; expected val or test")
    default = Model.load(weights)
    default_name = default.cfg.variant
    paper = Model.load(paper_weights, "paper") if paper_weights else None
    p2p = Model.load(pix2pix_weights, "paper") if pix2pix_weights else None
    if p2p is not None and not p2p.pix2pix:
        raise WeightsError(f"{pix2pix_weights} is not a pix2pix baseline (train it with `reenact train omega --pix2pix`)")
    bank = build_bank(data, cache_dir=cache_dir, progress=progress)
    sets = select_pairs(bank, split, max_pairs)
    if not sets["photo"] and not sets["video"]:
        raise InputError(f"the {split} split of {data} has no usable pairs",
                         hint="check the landmark report, or use a dataset with several people")
    gens = methods(default, paper, p2p, mean_displacement(bank), default_name)
    scorer = _Scorer()
    results: dict = {"split": split, "sets": {}, "default": default_name,
                     "weights": {"default": str(weights), "paper": str(paper_weights) if paper_weights else None,
                                 "pix2pix": str(pix2pix_weights) if pix2pix_weights else None}}
    total = sum(len(v) for v in sets.values()) * len(gens)
    bar = tqdm(total=total, desc=f"eval {split}", unit="pair", disable=not progress)
    for set_name, pairs in sets.items():
        if not pairs:
            continue
        res = {"n_pairs": len(pairs), "methods": {}}
        for name, gen in gens.items():
            res["methods"][name] = score_pairs(bank, pairs, gen, scorer, video=set_name == "video")
            bar.update(len(pairs))
        results["sets"][set_name] = res
    bar.close()
    if out_dir is not None:
        write_outputs(results, bank, sets["photo"], gens[default_name], Path(out_dir), Path(weights))
    return results


def write_outputs(results: dict, bank: FaceBank, photo: list[Pair], gen: Generator, out: Path, weights: Path) -> None:
    """eval.json, eval.md, a Fig. 3–4 style grid and the training curves, in ``out``."""
    from reenact.eval import plots, report

    out.mkdir(parents=True, exist_ok=True)
    report.write_json(out / "eval.json", results)
    (out / "eval.md").write_text(report.markdown_table(results) + "\n")
    # grid: 4 targets (rows) x 4 sources (columns) of different people, default method
    people_t, people_s = [], []
    for p in photo:
        t_id, s_id = bank.records[p.target].identity, bank.records[p.source].identity
        if t_id not in [bank.records[q].identity for q in people_t] and len(people_t) < 4:
            people_t.append(p.target)
        if s_id not in [bank.records[q[0]].identity for q in people_s] and len(people_s) < 4:
            people_s.append((p.source, p.source_neutral))
    if people_t and people_s:
        outputs = [[gen(bank, Pair(t, s, sn, t, "photo")) for (s, sn) in people_s] for t in people_t]
        grid = plots.result_grid([bank.crops[s] for s, _ in people_s], [bank.crops[t] for t in people_t], outputs)
        plots.write_png(out / "grid.png", grid)
    curves = weights / "metrics_omega.jsonl"
    if curves.is_file():
        plots.curves_png(curves, out / "curves.png")
