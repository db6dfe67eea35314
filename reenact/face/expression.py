"""Is a face at rest? The mouth of 68 landmarks read in the aligned crop (pure geometry).

A target photo is animated by adding the actor's change of expression to the target's own, and
that change is measured from the actor's neutral face: a smile or an open mouth in either one
is carried through the whole session. `reenact landmarks` and `reenact live` warn about such a
target; live mode's automatic calibration waits for a relaxed face.
"""

from __future__ import annotations

import numpy as np

from reenact.face.align import align_points
from reenact.face.topology import interocular, mouth_opening

#: Above these (aligned crop, over the interocular distance) a face is not at rest: the inner
#: lips apart, the mouth wide, or its corners well above the upper lip's centre (at rest they sit
#: ~0.08 below it; the highest of 102 neutral London faces 0.026 above). On the London set they
#: flag 2 of 102 neutral photos and 74 of 102 smiling ones (tests/test_landmarks.py), and none of
#: the six GRID speakers' resting faces (tests/test_calibration.py).
MAX_MOUTH_OPENING = 0.06
MAX_MOUTH_WIDTH = 0.90
MAX_CORNER_LIFT = 0.03


def not_at_rest(points: np.ndarray) -> list[str]:
    """What keeps a face from being at rest, in words (empty when it is), from [68,2] landmarks
    in any image's pixels or in the canonical crop."""
    pts = np.asarray(points, np.float64)
    crop = align_points(pts).to_crop(pts)
    iod = interocular(crop)
    opening = mouth_opening(crop)
    width = float(np.linalg.norm(crop[54] - crop[48]) / iod)
    upper_lip_y = crop[[51, 62], 1].mean()  # the upper lip stays put when the jaw drops
    lift = float((upper_lip_y - crop[[48, 54], 1].mean()) / iod)  # corners above it: > 0
    seen = []
    if opening > MAX_MOUTH_OPENING:
        seen.append(f"the mouth is open ({opening:.2f} of the eye distance)")
    if width > MAX_MOUTH_WIDTH or lift > MAX_CORNER_LIFT:
        seen.append("the face looks like it is smiling")
    return seen


def expression_warning(points: np.ndarray) -> str | None:
    """A warning when the face in a target photo is smiling or has its mouth open, else None.

    Live mode adds the actor's change of expression to the target's own one, so a smiling
    target smiles while the actor is relaxed and grins when they smile.
    """
    seen = not_at_rest(points)
    if not seen:
        return None
    return (" and ".join(seen) + ": the target keeps its own expression while you are relaxed and yours is "
            "added to it; a photo with a relaxed face and closed lips works best")
