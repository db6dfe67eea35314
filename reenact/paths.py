"""Where reenact keeps built engines, calibration profiles and shipped weights.

Found from the package's own location, never from the working directory: from a
checkout, ``<repo>/engines`` and ``<repo>/calibration``; from an installed wheel, the
user's data folder. ``REENACT_HOME`` overrides both; the CLI's ``--engines-dir`` and
``--calibration-dir`` override one each.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
WEIGHTS_DIR = PACKAGE_DIR / "weights"  # default trained weights shipped in the package
# weights folders shipped in the package, by the short name `--weights NAME` accepts
SHIPPED_WEIGHTS = {"default": WEIGHTS_DIR, "paper": WEIGHTS_DIR / "paper"}


def resolve_weights(value: str | os.PathLike | None) -> Path:
    """A ``--weights`` value as a folder: None is the shipped default, a shipped name ("default",
    "paper") its folder inside the package, anything else a path. A name wins over a folder of the
    same name in the working directory (write ``./paper`` for that), so the meaning never depends on
    where reenact runs; an unknown bare name that is no folder either is refused, naming the choices."""
    if value is None:
        return WEIGHTS_DIR
    text = os.fspath(value)
    if text in SHIPPED_WEIGHTS:
        return SHIPPED_WEIGHTS[text]
    path = Path(text).expanduser()
    if not path.exists() and "/" not in text and os.sep not in text:
        from reenact.errors import WeightsError

        raise WeightsError(f"no shipped weights named {text!r} and no folder {text!r}",
                           hint=f"pass one of {', '.join(SHIPPED_WEIGHTS)} or a folder written by `reenact train`")
    return path


def _checkout_root() -> Path | None:
    """The repository root when running from a source checkout, else None."""
    root = PACKAGE_DIR.parent
    if (root / "pyproject.toml").is_file() and (root / "engines").is_dir():
        return root
    return None


def user_data_dir() -> Path:
    """The per-user data folder used by an installed wheel."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    return base / "reenact"


def home() -> Path:
    """The base folder for engines and calibration: REENACT_HOME, the checkout, or the user folder."""
    env = os.environ.get("REENACT_HOME")
    if env:
        return Path(env).expanduser()
    root = _checkout_root()
    return root if root is not None else user_data_dir()


def engines_dir(override: str | os.PathLike | None = None) -> Path:
    """Folder of built TensorRT engines and their manifests."""
    return Path(override).expanduser() if override else home() / "engines"


def calibration_dir(override: str | os.PathLike | None = None) -> Path:
    """Folder of saved calibration profiles."""
    return Path(override).expanduser() if override else home() / "calibration"
