"""Silence the native runtime's log lines, which LiteRT writes straight to file descriptor 2."""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
from collections.abc import Iterator

_exit_hook_installed = False


def _verbose() -> bool:
    return bool(os.environ.get("VIDCLS_VERBOSE"))


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Redirect fd 2 to /dev/null for the duration, unless VIDCLS_VERBOSE is set.

    Also arranges for the runtime's teardown messages at interpreter exit to be silenced.
    """
    global _exit_hook_installed
    if _verbose():
        yield
        return
    if not _exit_hook_installed:
        atexit.register(_silence_fd2_at_exit)
        _exit_hook_installed = True
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _silence_fd2_at_exit() -> None:
    """Runs after Python's own exit messages; native destructors log after this."""
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
