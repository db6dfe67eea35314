"""Errors a user can cause and fix. The CLI prints them without a traceback and exits non-zero."""

from __future__ import annotations


class ReenactError(Exception):
    """A problem with the user's input or environment, with a hint on what to do."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class ConfigError(ReenactError):
    """An unknown preset, variant or config field."""


class WeightsError(ReenactError):
    """A checkpoint or weights folder that is missing, corrupt or for another model."""


class InputError(ReenactError):
    """An image, video or landmark file that cannot be used."""


class NoFaceError(InputError):
    """No face was found where one is required."""


class BackendError(ReenactError):
    """No inference backend could be loaded; the message lists each one tried.

    ``absent``: the backend is simply not set up here (not installed, no GPU, nothing built or
    exported), so ``--backend auto`` moves on quietly; any other failure (a damaged or stale
    model file) is worth a warning when auto falls back.
    """

    def __init__(self, message: str, hint: str | None = None, absent: bool = False) -> None:
        super().__init__(message, hint)
        self.absent = absent
