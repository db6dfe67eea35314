"""One face picture of a dataset (a photo or a video frame), as every layout's loader yields it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FaceRecord:
    """One face picture: a photo, or one frame of a video."""

    dataset: str  # layout name: 'london', 'video', 'rafd', 'ckplus'
    identity: str  # person id, unique across datasets (prefixed with the dataset)
    path: str  # image or video file
    expression: str  # 'neutral', 'smiling', 'happy', … ; video frames: 'frame'
    frame: int = -1  # frame index in a video, -1 for photos
    group: str = ""  # video clip (pairs are drawn within a clip)

    @property
    def key(self) -> str:
        return f"{self.path}#{self.frame}" if self.frame >= 0 else self.path


__all__ = ["FaceRecord"]
