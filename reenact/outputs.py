"""Writing a user's files safely: never onto an input, never half a file where a good one was.

Every command that writes a file a user names goes through here:

- :func:`check_output` refuses an output that is one of the command's inputs (the same file
  by resolved path or by inode: a hard link or another spelling of the path), a folder, or a
  path whose folder does not exist — before any work is done.
- :class:`PendingFile` is written under a temporary name beside the output and moved over it
  (fsync, then one ``os.replace``) only once it is complete, so an interrupted or failed run
  leaves the old file as it was (``with PendingFile(path) as temp:`` does both ends).
- :func:`write_image` encodes a picture and writes it atomically (``atomic_write_bytes``).
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from reenact.errors import InputError
from reenact.weights_io import atomic_write_bytes, fsync_dir

log = logging.getLogger(__name__)

#: Above this many pixels a target photo is far larger than any output shows (about 4K, 3840x2160).
HUGE_TARGET_PIXELS = 3840 * 2160


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name the same file: equal once resolved, or the same inode (hard links)."""
    pa, pb = Path(a).expanduser(), Path(b).expanduser()
    try:
        if pa.resolve() == pb.resolve():
            return True
    except (OSError, RuntimeError):  # a symlink loop resolves to neither
        pass
    try:
        return os.path.samefile(pa, pb)
    except OSError:  # one of them does not exist (yet): not the same file
        return False


def check_output(path: str | os.PathLike, inputs: Iterable[str | os.PathLike] = (), *, what: str = "output",
                 flag: str | None = None, create_folder: bool = False) -> Path:
    """Refuse an output path that is an input, a folder, or inside a folder that does not exist
    (unless ``create_folder``: the writer makes it).

    ``what`` names the output in the message ("output video", "annotated image"); ``flag`` the
    option that set it. Returns the path.
    """
    out = Path(path).expanduser()
    name = f"{flag} {path}" if flag else f"{what} {path}"
    for src in inputs:
        if same_file(out, src):
            raise InputError(f"{name} is the input {src}: writing it would destroy the input",
                             hint=f"give the {what} another file name")
    if out.is_dir():
        raise InputError(f"{name} is a folder, not a file", hint=f"give a file name for the {what}, e.g. {out / 'out'}")
    parent = out.parent
    if create_folder:
        return out
    if not parent.is_dir():
        raise InputError(f"cannot write {what} {out}: folder {parent} does not exist",
                         hint="create the folder first, or write somewhere else")
    if not os.access(parent, os.W_OK):
        raise InputError(f"cannot write {what} {out}: folder {parent} is not writable", hint="write somewhere else")
    return out


class PendingFile:
    """An output written under a temporary name beside it and renamed over it when complete.

    ``temp`` keeps the output's suffix (writers such as ``cv2.VideoWriter`` pick the container
    from it) and is unique (a random tag), hidden with a leading dot. ``commit()`` fsyncs it
    and replaces the output in one rename; ``discard()`` removes it. Until ``commit()``, an
    existing file at ``path`` is untouched. As a context manager it gives the temporary path,
    commits when the block ends and discards when it raises (the exception goes on)::

        with PendingFile(path) as temp:
            write(temp)
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.temp = self.path.with_name(f".{self.path.stem}.partial-{secrets.token_hex(4)}{self.path.suffix}")
        self.done = False

    def commit(self) -> bool:
        """Move the finished temporary file over the output; False when nothing was written."""
        if self.done:
            return False
        self.done = True
        if not self.temp.exists():
            return False
        with open(self.temp, "rb+") as fh:
            os.fsync(fh.fileno())
        replaced = self.path.exists()
        os.replace(self.temp, self.path)
        fsync_dir(self.path.parent)
        log.info("%s %s", "replaced" if replaced else "wrote", self.path)
        return True

    def discard(self) -> None:
        """Forget the temporary file; the output (old or absent) stays as it was."""
        self.done = True
        self.temp.unlink(missing_ok=True)

    def __enter__(self) -> Path:
        return self.temp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


def write_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Encode ``image`` by the path's suffix and write it atomically; a clear InputError when it cannot."""
    import cv2

    path = Path(path)
    try:
        ok, buf = cv2.imencode(path.suffix or ".png", image)
    except cv2.error:
        ok = False
    if not ok:
        raise InputError(f"cannot encode {path} (unknown image extension {path.suffix!r})", hint="use .png or .jpg")
    try:
        atomic_write_bytes(path, buf.tobytes())
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from exc


def huge_target_warning(path: str | os.PathLike, size: tuple[int, int]) -> str | None:
    """A note for a target photo far larger than any output shows, else None.

    ``size`` is the photo's (width, height). Live mode scales such a photo down once, at load
    (it costs no speed), but loading and detecting on it take seconds and memory.
    """
    w, h = size
    if w * h <= HUGE_TARGET_PIXELS:
        return None
    return (f"target {Path(path).name} is {w}x{h} ({w * h / 1e6:.0f} MP), far more than a camera picture shows "
            "(it is scaled down to the output once, at load); a photo about 1000-2000 px high is plenty")


def check_input_file(path: str | os.PathLike, what: str, hint: str | None = None) -> Path:
    """An input file that exists and is a file: a clear InputError for a missing path or a folder."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise InputError(f"{what} {path} is a folder, not a file", hint=hint or f"give the path of the {what} itself")
    if not p.is_file():
        raise InputError(f"{what} not found: {path}", hint=hint)
    return p


def check_outputs(outputs: Iterable[str | os.PathLike], inputs: Iterable[str | os.PathLike], what: str = "output",
                  create_folder: bool = False) -> None:
    """:func:`check_output` for each output file, and no file named twice."""
    inputs = list(inputs)
    seen: list[Path] = []
    for out in outputs:
        check_output(out, inputs, what=what, create_folder=create_folder)
        if any(same_file(out, s) or Path(out).expanduser().absolute() == s.absolute() for s in seen):
            raise InputError(f"{what} {out} is given twice", hint="give each output its own file name")
        seen.append(Path(out).expanduser())
