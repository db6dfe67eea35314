"""The public API in reenact/__init__.py: cheap to import, every name real, the README's example runs."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import reenact

ROOT = Path(__file__).resolve().parents[1]


def test_every_public_name_is_the_object_its_module_defines():
    assert reenact.__all__[0] == "__version__"
    for name, module in reenact._API.items():
        assert getattr(reenact, name) is getattr(importlib.import_module(module), name)
        assert name in dir(reenact)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        reenact.nope  # noqa: B018


def test_importing_reenact_imports_nothing_heavy_and_its_names_no_torch():
    code = ("import sys, reenact\n"
            "heavy = sorted(m for m in ('numpy', 'cv2', 'torch') if m in sys.modules)\n"
            "reenact.Reenactor, reenact.create_backend, reenact.create_detector, reenact.generate_crop\n"
            "print(','.join(heavy) + '|' + str('torch' in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "|False"


def test_the_readme_example_makes_the_target_copy_an_expression(astronaut, astronaut_points):
    """The README's five lines, on the shipped weights: the astronaut photo copies her mirrored, mouth-open self."""
    from reenact.face.flip import flip_image, flip_points
    from reenact.face.topology import mouth_opening
    from reenact.synthetic import talking_frames

    me, _ = talking_frames(flip_image(astronaut), flip_points(astronaut_points, astronaut.shape[1]), 8, period=8)
    backend = reenact.create_backend("auto", reenact.WEIGHTS_DIR)
    r = reenact.Reenactor(backend, reenact.create_detector("dlib"))
    r.add_target(astronaut)
    out = r(me[4])  # the driver's mouth wide open
    assert out.shape == astronaut.shape and out.dtype == np.uint8
    x0, y0, x1, y1 = r.target.roi
    assert np.array_equal(out[:y0], astronaut[:y0])  # outside the face region the photo is untouched
    opened = mouth_opening(reenact.create_detector("dlib").detect(out).points)
    assert opened > mouth_opening(astronaut_points) + 0.05, opened  # the target's mouth opened
