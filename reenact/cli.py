"""The ``reenact`` command: parse, build a config, call the library. One sub-command per job.

Each sub-command lives in ``reenact/commands/<name>.py`` and is imported only when it is
run, so ``reenact --help`` stays fast and never imports torch.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys

import click

from reenact import __version__
from reenact.errors import ReenactError

#: sub-command name -> "module:attribute" of its click command, in --help order.
COMMANDS: dict[str, str] = {
    "live": "reenact.commands.live:live",
    "calibrate": "reenact.commands.calibrate:calibrate",
    "landmarks": "reenact.commands.landmarks:landmarks",
    "train": "reenact.commands.train:train",
    "eval": "reenact.commands.evaluate:evaluate",
    "export": "reenact.commands.export:export",
    "build-engines": "reenact.commands.engines:build_engines",
    "bench": "reenact.commands.bench:bench",
    "doctor": "reenact.commands.doctor:doctor",
}


def _available() -> dict[str, str]:
    """Only the commands whose module exists (each is added when it works)."""
    out = {}
    for name, target in COMMANDS.items():
        module = target.split(":")[0]
        if importlib.util.find_spec(module) is not None:
            out[name] = target
    return out


class LazyGroup(click.Group):
    """A click group that imports a sub-command's module only when it is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(_available())

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = _available().get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="reenact")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """reenact: make the face in a photo copy your expression, live, into a virtual camera.

    Start with `reenact doctor`, then `reenact live --target face.png`.
    """
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def main(argv: list[str] | None = None) -> int:
    """Entry point: user mistakes print a message and exit non-zero, never a traceback."""
    try:
        rv = cli.main(args=argv, prog_name="reenact", standalone_mode=False)
    except ReenactError as exc:
        click.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    return rv if isinstance(rv, int) else 0


def entry() -> None:
    """Console-script wrapper."""
    sys.exit(main())


if __name__ == "__main__":
    entry()
