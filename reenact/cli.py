"""The ``reenact`` command: parse, build a config, call the library. One sub-command per job.

Each sub-command lives in ``reenact/commands/<name>.py`` and is imported only when it is
run, so ``reenact --help`` stays fast and never imports torch.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import signal
import sys
import threading
from collections.abc import Iterator

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


#: Signals that end a run the way Ctrl-C does (SIGHUP: the terminal closed; absent on Windows).
STOP_SIGNALS: tuple[str, ...] = ("SIGTERM", "SIGHUP")


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised like Ctrl-C's KeyboardInterrupt so every command stops the same
    way: `reenact live` joins its threads and finishes its files; others exit 128 + the signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def stop_signals() -> Iterator[None]:
    """While inside, SIGTERM and SIGHUP raise :class:`Stopped` in the main thread (once; a repeat
    while stopping is ignored, so shutdown is not cut short). Restores the old handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stopping = False

    def handler(signum, _frame):
        nonlocal stopping
        if stopping:
            logging.getLogger(__name__).warning("%s again: already stopping", signal.Signals(signum).name)
            return
        stopping = True
        raise Stopped(signum)

    old = {}
    for name in STOP_SIGNALS:
        sig = getattr(signal, name, None)
        if sig is not None:
            old[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


def main(argv: list[str] | None = None) -> int:
    """Entry point: user mistakes print a message and exit 2, never a traceback.

    Exit statuses (README, "Your files are safe"): 0 done (a live run stopped with q, Ctrl-C,
    SIGTERM or SIGHUP included); 2 a mistake in the input or the environment (one line and a
    hint), also a run that found no face at all; 1 `doctor` found a blocking problem, or an
    unexpected error (a bug: traceback); 130 Ctrl-C, 143 SIGTERM, 129 SIGHUP for any other
    command.
    """
    try:
        with stop_signals():
            rv = cli.main(args=argv, prog_name="reenact", standalone_mode=False)
    except ReenactError as exc:
        click.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except click.exceptions.Abort as exc:  # click turns KeyboardInterrupt (and Stopped) into Abort
        if isinstance(exc.__cause__, Stopped):
            click.echo(f"stopped by {exc.__cause__}", err=True)
            return 128 + exc.__cause__.signum
        click.echo("interrupted" if isinstance(exc.__cause__, KeyboardInterrupt) else "aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except Stopped as exc:
        click.echo(f"stopped by {exc}", err=True)
        return 128 + exc.signum
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    except OSError as exc:  # a path or device the user named: one line, not a traceback (-vv shows it)
        logging.getLogger(__name__).debug("OS error", exc_info=True)
        where = f" {exc.filename}" if exc.filename else ""
        click.echo(f"error: cannot use{where}: {exc.strerror or exc}", err=True)
        click.echo("  hint: check the path, its folder and its permissions", err=True)
        return 2
    return rv if isinstance(rv, int) else 0


def entry() -> None:
    """Console-script wrapper."""
    sys.exit(main())


if __name__ == "__main__":
    entry()
