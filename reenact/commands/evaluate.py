"""`reenact eval`: the paper's measures and ours, against the baselines."""

from __future__ import annotations

from pathlib import Path

import click

from reenact.errors import ReenactError


def default_data() -> Path | None:
    """The shared data folder beside a checkout, when it exists."""
    import reenact

    p = Path(reenact.__file__).resolve().parents[2] / "shared" / "data"
    return p if p.is_dir() else None


@click.command("eval")
@click.option("--weights", type=click.Path(path_type=Path), default=None, help="Weights to evaluate (default: the shipped weights).")
@click.option("--paper-weights", type=click.Path(path_type=Path), default=None, help="Also evaluate a `paper` variant folder.")
@click.option("--pix2pix-weights", type=click.Path(path_type=Path), default=None, help="Also evaluate a pix2pix baseline folder.")
@click.option("--data", type=click.Path(path_type=Path), default=None, help="Dataset folder (default: ../shared/data beside a checkout).")
@click.option("--split", type=click.Choice(["val", "test"]), default="test", show_default=True,
              help="Choose on val, report on test.")
@click.option("--max-pairs", type=int, default=None, help="At most this many pairs per set (seeded subsample).")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Folder for eval.json, eval.md, grid.png, curves.png.")
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None, help="Also write the JSON here.")
@click.option("--cache-dir", type=click.Path(path_type=Path), default=None, help="Landmark cache folder.")
def evaluate(weights, paper_weights, pix2pix_weights, data, split, max_pairs, out, json_out, cache_dir):
    """Evaluate a model on photo pairs (cross-identity) and video pairs (self-reenactment).

    Reports SSIM/PSNR (whole crop and lower face), expression error, identity distance and, on
    video, driver following, for the baselines copy, mean, warp, pix2pix, oracle and the variants.
    Needs the `train` extra (torch).
    """
    from reenact.eval import report
    from reenact.eval.evaluate import evaluate as run
    from reenact.paths import WEIGHTS_DIR

    data = data or default_data()
    if data is None:
        raise ReenactError("no --data given and no ../shared/data beside this checkout", hint="pass --data FOLDER")
    results = run(weights or WEIGHTS_DIR, data, split, paper_weights, pix2pix_weights, max_pairs, cache_dir, out_dir=out)
    click.echo(report.markdown_table(results))
    if json_out:
        report.write_json(json_out, results)
    if out:
        click.echo(f"wrote {out}/eval.json, eval.md, grid.png")
    return 0
