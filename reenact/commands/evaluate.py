"""`reenact eval`: the paper's measures and ours, against the baselines."""

from __future__ import annotations

from pathlib import Path

import click

from reenact.commands.weights_option import WEIGHTS
from reenact.config import MOUTH_INTERIORS
from reenact.errors import InputError, WeightsError
from reenact.eval.results import ALL_SETS, EXPRESSIVE_CASES


def default_data() -> Path | None:
    """The shared data folder beside a checkout, when it exists."""
    import reenact

    p = Path(reenact.__file__).resolve().parents[2] / "shared" / "data"
    return p if p.is_dir() else None


@click.command("eval")
@click.option("--weights", type=WEIGHTS, default=None,
              help="Weights to evaluate, the default method: a shipped name or a folder (default: default).")
@click.option("--paper-weights", type=WEIGHTS, default=None,
              help="Also evaluate a `paper` variant (method `paper`): `paper` (the shipped one) or a folder.")
@click.option("--pix2pix-weights", type=click.Path(path_type=Path), default=None,
              help="Also evaluate a pix2pix baseline folder (`reenact train omega --pix2pix`).")
@click.option("--data", type=click.Path(path_type=Path), default=None,
              help="Dataset folder (default: ../shared/data beside a checkout).")
@click.option("--split", type=click.Choice(["val", "test"]), default="test", show_default=True,
              help="Choose models on val, report on test.")
@click.option("--max-pairs", type=click.IntRange(min=1), default=None,
              help="At most this many pairs per set (seeded subsample; video keeps whole clips, thinned).")
@click.option("--sets", "sets_", default=",".join(ALL_SETS), show_default=True,
              help="Which sets to run, comma-separated: photo and video (pairs scored against the real face), "
                   "cremad and scripted (expressive drivers through the live path; described above).")
@click.option("--expressive-cases", type=click.IntRange(min=1), default=EXPRESSIVE_CASES, show_default=True,
              help="Target photos per expressive set (each runs a whole driver through the live path per method).")
@click.option("--expressive-frames", type=click.IntRange(min=3), default=None,
              help="Cut each expressive driver to its first N frames (a quick check; the 10 s brow hold needs all).")
@click.option("--backend", type=click.Choice(["torch", "onnx"]), default="torch", show_default=True,
              help="Runs Φ and Ω (onnx needs `reenact export`; pix2pix always runs on torch).")
@click.option("--threads", type=click.IntRange(min=1), default=2, show_default=True, help="CPU threads for the networks.")
@click.option("--mouth-interior", type=click.Choice(MOUTH_INTERIORS), default="driver", show_default=True,
              help="The guided default's mouth interior, as `reenact live --mouth-interior`: the driver's own, "
                   "colour-matched and laid in the generated mouth, or Ω's.")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Folder for eval.json, eval.md, pairs.csv (every pair's measures), cases.csv (every expressive case's), grid*.png, curves.png.")
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None, help="Also write the JSON here.")
@click.option("--cache-dir", type=click.Path(path_type=Path), default=None, help="Landmark cache folder.")
@click.option("--seed", type=int, default=0, show_default=True, help="Identity split and subsample seed.")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
def evaluate(weights: Path | None, paper_weights: Path | None, pix2pix_weights: Path | None, data: Path | None,
             split: str, max_pairs: int | None, sets_: str, expressive_cases: int, expressive_frames: int | None,
             backend: str, threads: int, mouth_interior: str, out: Path | None, json_out: Path | None,
             cache_dir: Path | None, seed: int, no_progress: bool) -> int:
    """Evaluate a model on photo pairs (cross-identity), video pairs (self-reenactment) and
    expressive drivers run through the live path.

    \b
    photo, video: SSIM/PSNR (whole crop and lower face), expression error, identity distance; on
      photo also teeth agreement with the real smiling face; on video driver following; for the
      baselines copy, mean, warp, pix2pix, oracle and the variants.
    cremad (the CREMA-D clips in DATA/cremad, never trained on) and scripted (held expressions and
      blinks scripted on the split's London photos): `reenact live`'s own per-frame path drives the
      split's neutral London photos; the output is re-detected and scored: brow, eye, mouth-opening
      and mouth-width following, blink depth, 10 s brow-hold retention, teeth over the driver's,
      identity distance to the target, landmark jitter over the driver's; methods warp, paper (with
      --paper-weights) and the default. A set whose data is absent is left out with a note.

    Needs the `train` extra (torch) and dlib.
    """
    from reenact.eval import report
    from reenact.eval.evaluate import report_markdown, run_eval, write_outputs

    sets = tuple(s.strip() for s in sets_.split(",") if s.strip())
    unknown = [s for s in sets if s not in ALL_SETS]
    if unknown or not sets:
        raise InputError(f"--sets: unknown set(s) {', '.join(unknown) or '(none given)'}",
                         hint=f"choose from {', '.join(ALL_SETS)}")
    from reenact.paths import WEIGHTS_DIR

    if weights is None:
        weights = Path(WEIGHTS_DIR)
        if not (weights / "config.json").is_file():
            raise WeightsError(f"the shipped default weights are missing ({weights})",
                               hint="pass --weights DIR, a folder written by `reenact train`")
    data = data or default_data()
    if data is None:
        raise InputError("no --data given and no ../shared/data beside this checkout", hint="pass --data FOLDER")
    if not Path(data).is_dir():
        raise InputError(f"--data {data} is not a folder")
    run = run_eval(weights, data, split, paper_weights, pix2pix_weights, max_pairs, cache_dir,
                   progress=not no_progress, backend=backend, threads=threads, seed=seed, sets=sets,
                   expressive_cases=expressive_cases, expressive_frames=expressive_frames, mouth_interior=mouth_interior)
    click.echo(report_markdown(run.results))
    if json_out:
        report.write_json(json_out, run.results)
        click.echo(f"wrote {json_out}")
    if out:
        paths = write_outputs(run, out, weights)
        click.echo("wrote " + ", ".join(str(p) for p in paths))
    return 0
