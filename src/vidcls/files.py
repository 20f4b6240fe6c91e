"""Checks on the files vidcls is given: only regular files are read, and only within limits.

A FIFO would block a read forever, ``/dev/zero`` would never end, a symlink loop is not "not
found": each gets its own one-line error naming the file, before anything is opened.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from .errors import VidclsError

MB = 1 << 20
LABELS_LIMIT = 4 * MB  # a label file; Kinetics-600's is 9 KB
MODEL_LIMIT = 2048 * MB  # a flatbuffer cannot be larger


def check_regular(
    path: str | os.PathLike, what: str = "file", limit: int | None = None, missing: str = ""
) -> Path:
    """``path`` if it is a readable regular file, not empty and at most ``limit`` bytes;
    else VidclsError naming it (``what``: "video file", "label file", ...)."""
    p = Path(path)
    try:
        st = os.stat(p)
    except OSError as e:
        raise VidclsError(_stat_problem(e, what, missing), path) from None
    except ValueError:  # a NUL character: no file can have that name
        raise VidclsError(f"{what} not found (a NUL character in its name)", path) from None
    if stat.S_ISDIR(st.st_mode):
        raise VidclsError(f"is a directory, not a {what}", path)
    if not stat.S_ISREG(st.st_mode):
        kind = "a FIFO" if stat.S_ISFIFO(st.st_mode) else "a device or socket"
        raise VidclsError(f"is {kind}, not a regular {what}", path)
    if not os.access(p, os.R_OK):
        raise VidclsError("permission denied", path)
    if st.st_size == 0:
        raise VidclsError(f"{what} is empty", path)
    if limit is not None and st.st_size > limit:
        size, most = st.st_size / MB, limit / MB
        raise VidclsError(f"{what} is {size:.0f} MB, over the {most:.0f} MB limit", path)
    return p


def read_limited(path: str | os.PathLike, what: str, limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (see :func:`check_regular`)."""
    p = check_regular(path, what, limit)
    try:
        with open(p, "rb") as f:
            data = f.read(limit + 1)
    except OSError as e:
        raise VidclsError(f"cannot read {what} ({e.strerror or e})", path) from None
    if len(data) > limit:  # it grew since it was checked
        raise VidclsError(f"{what} is over the {limit / MB:.0f} MB limit", path)
    return data


def _stat_problem(e: OSError, what: str, missing: str) -> str:
    if e.errno == errno.ENOENT:
        return missing or f"{what} not found"
    if e.errno == errno.ELOOP:
        return "symbolic link loop"
    if e.errno == errno.EACCES:
        return "permission denied"
    if e.errno == errno.ENAMETOOLONG:
        return "file name too long"
    if e.errno == errno.ENOTDIR:
        return f"{what} not found (a part of the path is not a folder)"
    return f"cannot read {what} ({e.strerror or e})"


def read_text(path: str | os.PathLike, what: str, limit: int) -> tuple[Path, str]:
    """A small UTF-8 text file (a list, a config) checked as :func:`check_regular` does: its
    path and text; VidclsError naming it when it cannot be read."""
    file = check_regular(path, what, limit=limit)
    try:
        return file, file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise VidclsError(f"{what} is not UTF-8 text", file) from None
    except OSError as e:
        raise VidclsError(f"cannot read {what} ({e.strerror or e})", file) from None


NAME_MAX = 255  # bytes of one file name
PATH_MAX = 4096  # bytes of a path


def inside(root: str | os.PathLike, relative: str) -> Path | None:
    """``root/relative`` with its links resolved, if it stays inside ``root`` (resolved)
    and is a name the file system could hold; None otherwise. Never raises: a NUL, a name or
    path too long, ``..`` out of ``root``, a link loop are all None (for routes that serve
    files by a path from a URL)."""
    try:
        encoded = os.fsencode(relative)
        if b"\0" in encoded or len(encoded) > PATH_MAX:
            return None
        if any(len(part) > NAME_MAX for part in encoded.split(b"/")):
            return None
        base = Path(root).resolve()
        file = (base / relative).resolve()
    except (OSError, ValueError, RuntimeError):
        return None
    return file if file.is_relative_to(base) and len(os.fsencode(file)) <= PATH_MAX else None


def is_regular(path: Path) -> bool:
    """Whether ``path`` is a regular file (False, never an error, for any path it cannot
    stat)."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False
