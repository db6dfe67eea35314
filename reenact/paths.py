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
