"""Put a finished temporary file in place in one step, with the mode a new file would get."""

from __future__ import annotations

import os
from pathlib import Path


def replace(tmp: str | os.PathLike, target: str | os.PathLike) -> None:
    """Move ``tmp`` over ``target`` atomically, keeping ``target``'s mode if it exists.

    ``tempfile.mkstemp`` makes 0600 files; a new target gets 0666 less the umask instead.
    """
    try:
        mode = Path(target).stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    os.chmod(tmp, mode)
    os.replace(tmp, target)
