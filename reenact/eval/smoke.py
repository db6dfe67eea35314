"""A small, fixed check of a weights folder: expression error on the first four photo test pairs.

The model card records this figure; the test suite recomputes it to catch shipped weights that
drifted from their card (a wrong file, a broken export, a preprocessing change).
"""

from __future__ import annotations

import os

import numpy as np

from reenact.errors import InputError


def four_pair_expression_error(weights_dir: str | os.PathLike, data_root: str | os.PathLike,
                               cache_dir: str | os.PathLike | None = None, backend: str = "onnx") -> float:
    """Mean landmark distance (crop px) between the re-detected generated face and J_o on 4 test pairs."""
    from reenact.data.datasets import build_bank, make_pairs
    from reenact.eval.metrics import expression_error
    from reenact.face.dlib_detector import DlibDetector
    from reenact.face.landmarks import FaceLandmarks
    from reenact.inference.backend import create_backend
    from reenact.inference.reenactor import Reenactor

    bank = build_bank(data_root, cache_dir=cache_dir, progress=False)
    pairs = [p for p in make_pairs(bank, "test") if p.kind == "photo"][:4]
    if len(pairs) < 4:
        raise InputError(f"fewer than 4 photo test pairs in {data_root}")
    det = DlibDetector()
    r = Reenactor(create_backend(backend, weights_dir), None, options=None)
    errs = []
    for p in pairs:
        r.targets = []
        r.add_target(bank.crops[p.target], FaceLandmarks(points=bank.points[p.target], found=True, n_faces=1))
        r.set_neutral(bank.points[p.source_neutral])
        crop, _ = r.crop_output(bank.points[p.source], driver=bank.crops[p.source])
        lm = det.detect(crop)
        if not lm.found:
            raise InputError("no face re-detected on a generated crop")
        errs.append(expression_error(lm.points, bank.points[p.truth]))
    return float(np.mean(errs))
