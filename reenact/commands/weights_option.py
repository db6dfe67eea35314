"""The ``--weights`` option type: a shipped name (``default``, ``paper``) or a weights folder."""

from __future__ import annotations

from pathlib import Path

import click

from reenact.errors import WeightsError
from reenact.paths import SHIPPED_WEIGHTS, resolve_weights


class WeightsParam(click.ParamType):
    """Resolves ``--weights paper`` to the folder shipped in the package; a bad name is a usage error (exit 2)."""

    name = "|".join(SHIPPED_WEIGHTS) + "|DIR"

    def convert(self, value, param, ctx) -> Path:
        if isinstance(value, Path):
            return value
        try:
            return resolve_weights(value)
        except WeightsError as exc:
            self.fail(str(exc), param, ctx)


WEIGHTS = WeightsParam()
WEIGHTS_HELP = "Weights: a shipped name (" + ", ".join(SHIPPED_WEIGHTS) + ") or a folder written by `reenact train`"
