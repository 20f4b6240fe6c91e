"""Silence the native runtime's log lines, which LiteRT writes straight to file descriptor 2."""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from collections.abc import Iterator

_exit_hook_installed = False
_lock = threading.Lock()
_depth = 0  # threads inside quiet_stderr()
_saved: int | None = None  # the real fd 2 while silenced


def _verbose() -> bool:
    return bool(os.environ.get("VIDCLS_VERBOSE"))


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Redirect fd 2 to /dev/null for the duration, unless VIDCLS_VERBOSE is set.

    Safe across threads: the first to enter redirects and the last to leave restores (each
    saving and restoring on its own could leave fd 2 on /dev/null for good). Also arranges
    for the runtime's teardown messages at interpreter exit to be silenced.
    """
    global _exit_hook_installed
    if _verbose():
        yield
        return
    if not _exit_hook_installed:
        atexit.register(_silence_fd2_at_exit)
        _exit_hook_installed = True
    if not _enter():
        yield
        return
    try:
        yield
    finally:
        _leave()


def _enter() -> bool:
    """Count one more user of the silence, silencing fd 2 for the first; False if it cannot."""
    global _depth, _saved
    with _lock:
        if _depth == 0:
            try:
                sys.stderr.flush()
                saved = os.dup(2)
            except (OSError, ValueError):
                return False
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
            _saved = saved
        _depth += 1
        return True


def _leave() -> None:
    """One user fewer; the last puts fd 2 back."""
    global _depth, _saved
    with _lock:
        _depth -= 1
        if _depth == 0 and _saved is not None:
            os.dup2(_saved, 2)
            os.close(_saved)
            _saved = None


def _silence_fd2_at_exit() -> None:
    """Runs after Python's own exit messages; native destructors log after this."""
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
