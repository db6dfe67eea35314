"""reenact: real-time facial expression reenactment (Fan et al., IEEE Access 2023).

The few names a library user needs (the README's "Using it from Python" shows them at work)::

    import cv2, reenact
    backend = reenact.create_backend("auto", reenact.WEIGHTS_DIR)
    r = reenact.Reenactor(backend, reenact.create_detector("dlib"))
    r.add_target(cv2.imread("face.png"))
    out = r(cv2.imread("me.jpg"))  # the target photo with my expression

Importing the package is cheap and imports neither torch nor any GPU library: each name is
imported from its module the first time it is used.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

#: public name -> the module that defines it
_API = {
    "Reenactor": "reenact.inference.reenactor",  # one frame in, one frame out
    "ReenactorOptions": "reenact.inference.reenactor",
    "create_backend": "reenact.inference.backend",  # Φ and Ω on TensorRT, ONNX Runtime or PyTorch
    "create_detector": "reenact.face.landmarks",  # dlib (or mediapipe) 68 landmarks
    "load_profile": "reenact.calibration",  # a saved neutral face (J_s): load_profile(name).points
    "generate_crop": "reenact.generate",  # Φ then Ω on one 256² crop, as live and eval run them
    "WEIGHTS_DIR": "reenact.paths",  # the shipped weights
    "ReenactError": "reenact.errors",  # every error meant for a user (message + hint)
}


def __getattr__(name: str):
    if name in _API:
        value = getattr(importlib.import_module(_API[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'reenact' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])


__all__ = ["__version__", *_API]
