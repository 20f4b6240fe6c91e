"""Browser copies of clips (:func:`vidcls.media.playable.make_copy`), made on request in one
worker thread of low priority: one copy at a time, a few waiting at most; two requests for the
same clip share one copy, and a clip that cannot be copied is remembered as such (until the
file changes). ``GET /api/playable`` (:mod:`vidcls.serve.playable`) answers from them."""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..errors import VidclsError
from ..media.playable import CopyLimits, copy_path, make_copy, probe

log = logging.getLogger("vidcls.serve")
NICE = 10  # the worker thread's niceness: copies give way to the cameras and the pages
MAX_WAITING = 4  # copies asked for while one is made; more: "busy"
REMEMBERED = 256  # clips known not to copy


@dataclass(frozen=True)
class Status:
    """Where a clip stands: ``original``, ``ready``, ``making``, ``busy`` or ``failed``."""

    state: str
    path: Path | None = None  # the file to play (original, ready)
    progress: float = 0.0
    detail: str = ""


@dataclass
class _Job:
    future: Future
    progress: float = 0.0


class Copies:
    """Browser copies of clips, made one at a time in a low-priority thread; thread-safe.
    ``make`` makes one copy (a clip, a progress callback, a stop event: the copy's path)."""

    def __init__(self, limits: CopyLimits | None = None, make=None) -> None:
        self.limits = limits = limits or CopyLimits()
        self._make = make or (lambda clip, progress, stop: make_copy(clip, limits, progress, stop))
        self._lock = threading.Lock()
        self._jobs: dict[Path, _Job] = {}
        self._failed: collections.OrderedDict[Path, tuple[tuple[int, int], str]] = (
            collections.OrderedDict()
        )
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(1, "vidcls-copies", initializer=_lower_priority)

    def status(self, clip: Path) -> Status:
        """Where ``clip`` (an existing regular file) stands; starts its copy if needed."""
        with self._lock:
            job = self._jobs.get(clip)
            if job is not None:
                return Status("making", progress=job.progress)
        stamp, copy = _stamp(clip), copy_path(clip)
        if stamp is None:
            return Status("failed", detail=f"{clip.name}: no such clip")
        if (_stamp(copy) or (0, 0))[0] >= stamp[0]:
            return Status("ready", copy)
        with self._lock:
            failed = self._failed.get(clip)
        if failed is not None and failed[0] == stamp:
            return Status("failed", detail=failed[1])
        try:
            if probe(clip).plays_in_browsers:
                return Status("original", clip)
        except VidclsError as e:
            return self._fail(clip, stamp, e)
        with self._lock:
            job = self._jobs.get(clip)
            if job is not None:  # asked twice at once: one copy
                return Status("making", progress=job.progress)
            if (_stamp(copy) or (0, 0))[0] >= stamp[0]:  # made since it was looked for
                return Status("ready", copy)
            if len(self._jobs) > MAX_WAITING:
                return Status("busy", detail="too many clips are being copied; ask again soon")
            job = self._jobs[clip] = _Job(Future())
            try:
                job.future = self._pool.submit(self._run, clip, stamp, job)
            except RuntimeError:  # shut down: the server is stopping
                del self._jobs[clip]
                return Status("busy", detail="the server is stopping")
        return Status("making")

    def wait(self, clip: Path) -> None:
        """Wait for the copy of ``clip`` under way, if any, to be made or to fail."""
        with self._lock:
            job = self._jobs.get(clip)
        if job is not None:
            with contextlib.suppress(Exception):
                job.future.result()

    def close(self) -> None:
        """Stop the copy being made (its part is removed) and those waiting."""
        self._stop.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self, clip: Path, stamp: tuple[int, int], job: _Job) -> None:
        def progress(done: float) -> None:
            job.progress = round(done, 3)

        try:
            self._make(clip, progress, self._stop)
            if not clip.exists():  # pruned while it was copied
                copy_path(clip).unlink(missing_ok=True)
        except VidclsError as e:
            if not self._stop.is_set():
                self._fail(clip, stamp, e)
        except Exception as e:  # a bug: logged, and the page offers the download
            log.exception("cannot make a browser copy of %s", clip)
            self._fail(clip, stamp, VidclsError(f"internal error ({type(e).__name__})", clip))
        finally:
            with self._lock:
                self._jobs.pop(clip, None)

    def _fail(self, clip: Path, stamp: tuple[int, int], e: VidclsError) -> Status:
        detail = f"{clip.name}: {e.message}"
        with self._lock:
            if clip not in self._failed:
                log.warning("no browser copy of %s: %s", clip, e.message)
            self._failed[clip] = (stamp, detail)
            self._failed.move_to_end(clip)
            while len(self._failed) > REMEMBERED:
                self._failed.popitem(last=False)
        return Status("failed", detail=detail)


def _stamp(path: Path) -> tuple[int, int] | None:
    """A file's modification time (ns) and size; None if it is not there."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def _lower_priority() -> None:
    """Run this thread (and the encoder's, started from it) at a lower priority: on Linux a
    thread's niceness is its own."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)
