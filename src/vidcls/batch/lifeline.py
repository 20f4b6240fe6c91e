"""Worker processes that end with the batch driver, however it ends (even ``kill -9``).

On Linux the kernel sends the worker SIGKILL when the driver dies (``PR_SET_PDEATHSIG``);
everywhere, a thread in the worker also watches its parent's pid and ends the process when it
changes (the driver died and the worker was handed to another parent).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
WATCH_INTERVAL = 0.5  # seconds between two looks at the parent's pid


def die_with_parent(parent: int) -> None:
    """End this process when process ``parent`` (the one that started it) ends."""
    kill_on_parent_death()
    watch_parent(parent)
    if os.getppid() != parent:  # it died before the two above were in place
        os._exit(1)


def kill_on_parent_death() -> bool:
    """Ask Linux to SIGKILL this process when its parent dies; whether that is in place.

    The kernel sends it when the parent's *thread* that started this process ends, which for
    a batch job is the thread running the job, so it comes no earlier than the job's end."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        args = (ctypes.c_ulong(signal.SIGKILL), ctypes.c_ulong(0), ctypes.c_ulong(0))
        return libc.prctl(ctypes.c_int(PR_SET_PDEATHSIG), *args, ctypes.c_ulong(0)) == 0
    except (OSError, AttributeError):
        return False


def watch_parent(parent: int, interval: float = WATCH_INTERVAL) -> threading.Thread:
    """A daemon thread that ends this process once its parent is no longer ``parent``."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(1)

    thread = threading.Thread(target=watch, name="vidcls-watch-parent", daemon=True)
    thread.start()
    return thread
