"""The CLI shell and where reenact keeps its files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from reenact import __version__, paths
from reenact.cli import COMMANDS, main

REPO = Path(__file__).resolve().parents[1]


def test_version(capsys):
    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


def test_unknown_command_exits_nonzero(capsys):
    assert main(["teleport"]) != 0
    assert "teleport" in capsys.readouterr().err


def test_help_does_not_import_torch():
    code = "import sys; from reenact.cli import main; main(['--help']); assert 'torch' not in sys.modules, 'torch imported'"
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr


def test_folders_come_from_the_checkout_not_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("REENACT_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    assert paths.engines_dir() == REPO / "engines"
    assert paths.calibration_dir() == REPO / "calibration"
    monkeypatch.setenv("REENACT_HOME", str(tmp_path / "home"))
    assert paths.engines_dir() == tmp_path / "home" / "engines"
    assert paths.calibration_dir("/x/y") == Path("/x/y")
