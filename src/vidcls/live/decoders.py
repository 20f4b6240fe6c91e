"""Live sources decoded in child processes, handed over at the model's size.

Decoding 30 fps cameras costs about as much CPU as classifying them, and in one process the
capture threads and the model's worker take turns on Python's interpreter lock for every
frame. A :class:`DecoderPool` runs the capture threads
(:class:`~vidcls.live.capture.FrameGrabber`: freshest frame, reconnects) in a few child
processes instead. When the scheduler asks a :class:`RemoteSource` for a source's freshest
frame, its process scales that one frame to the model's size (RGB uint8, as
:meth:`Preprocessor.pixels`) into shared memory; a window or a snapshot asks for the picture
at the size it shows. Nothing else crosses over.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import threading
import time
from dataclasses import dataclass
from multiprocessing import shared_memory

import numpy as np

from ..cpu import process_seconds
from ..errors import VidclsError, leave_if_importing_in_a_child, main_script
from .capture import BACKOFF, Captured, FrameSource
from .sources import SourceSpec

QUIET = 0.02  # seconds a slot answers "nothing new" without asking again
log = logging.getLogger("vidcls")


@dataclass
class _Status:
    """What a decoding process says about one source with each answer."""

    captured: int = 0
    reconnects: int = 0
    online: bool = False
    ended: bool = False
    input_fps: float = 0.0
    error: str | None = None


class RemoteSource(FrameSource):
    """One source in a decoding process; its frames come at the model's size."""

    def __init__(
        self, pool: DecoderPool, process: int, index: int, pixels: np.ndarray, name: str
    ) -> None:
        self.pool, self.process, self.index, self.name = pool, process, index, name
        self.pixels = pixels  # shared memory: written by the process, read by the worker
        self.status = _Status()
        self._restarts = 0  # of its process, as last seen
        self._offset = (0, 0)  # frames and reconnects before its process last started again
        self._quiet_until = 0.0

    def latest(self, after: int = -1) -> Captured | None:
        """The freshest frame with index > ``after`` at the model's size, or None."""
        clock = self.pool.clock
        now = time.monotonic() if clock is None else clock()
        if now < self._quiet_until or self.status.ended:
            return None
        restarts = self.pool.restarts[self.process]
        if restarts != self._restarts:  # a new process counts from 0: carry the totals on
            self._restarts = restarts
            self._offset = (self.status.captured, self.status.reconnects + 1)
        reply = self.pool.ask(self.process, ("get", self.index, after, now))
        if reply is None or isinstance(reply, VidclsError):  # gone: being started again
            self.status.online = False
            self._quiet_until = now + QUIET
            if reply is not None:  # its new process could not open the source
                self.status.ended, self.status.error = True, reply.message
            return None
        found, status = reply
        status.captured += self._offset[0]
        status.reconnects += self._offset[1]
        self.status = status
        if found is None:
            if clock is None:  # (a virtual clock's engine asks only when a frame is due)
                self._quiet_until = now + QUIET
            return None
        index, captured_at, generation = found
        # A restarted process's frames are newer than any before; its state starts anew.
        return Captured(self.pixels, captured_at, index + (restarts << 40), generation + restarts)

    def clip(self, path: str, start: float, end: float | None = None) -> bool:
        """Ask the decoding process for an event clip (its recorder keeps the packets)."""
        return self.pool.ask(self.process, ("clip", self.index, path, start, end)) is True

    def picture(self, size: tuple[int, int] | None = None) -> np.ndarray | None:
        """The freshest frame upright at ``size`` (or full size), converted in its process."""
        reply = self.pool.ask(self.process, ("picture", self.index, size))
        return reply if isinstance(reply, np.ndarray) else None

    @property
    def ended(self) -> bool:
        return self.status.ended

    @property
    def online(self) -> bool:
        return self.status.online

    @property
    def input_fps(self) -> float:
        return self.status.input_fps

    @property
    def captured(self) -> int:
        return self.status.captured

    @property
    def reconnects(self) -> int:
        return self.status.reconnects

    @property
    def error(self) -> VidclsError | None:
        return None if self.status.error is None else VidclsError(self.status.error)


class DecoderPool:
    """``processes`` child processes decoding ``sources`` between them, each frame handed over
    scaled to ``height`` x ``width`` by a preprocessor made with ``resize`` and ``fit``. A
    process that dies (a decoder crashing on a hostile stream, say) is started again with
    backoff; its sources carry on from a reset state while the others never notice. With a
    virtual ``clock`` the processes replay files on it (each ask carries its time)."""

    def __init__(
        self,
        sources: list[SourceSpec],
        height: int,
        width: int,
        *,
        processes: int,
        resize: str = "bilinear",
        fit: str = "squash",
        loop: bool = False,
        record=None,
        clock=None,
    ) -> None:
        leave_if_importing_in_a_child("watching sources with decoding processes")
        self.clock = clock
        count = max(1, min(processes, len(sources)))
        self._context = mp.get_context("spawn")  # never fork a process that runs threads
        views = [(i, name, zone) for i, spec in enumerate(sources) for name, zone in spec.views()]
        self.memory = shared_memory.SharedMemory(create=True, size=len(views) * height * width * 3)
        frames = np.ndarray((len(views), height, width, 3), np.uint8, self.memory.buf)
        self._shape = (height, width, resize, fit)
        self._loop, self._count, self._record = loop, len(views), record
        groups = [list(range(len(sources)))[p::count] for p in range(count)]
        self._work = [
            (
                [(i, sources[i].source) for i in group],
                [(slot, i, z) for slot, (i, _, z) in enumerate(views) if i in group],
            )
            for group in groups
        ]
        process_of = {i: p for p, group in enumerate(groups) for i in group}
        self._pipes: list = [None] * count
        self._procs: list = [None] * count
        self._locks = [threading.Lock() for _ in range(count)]
        self.restarts = [0] * count
        self._closing = False
        self._retry_at = [0.0] * count
        self.sources: dict[str, RemoteSource] = {}  # a source per view (whole frame, zone)
        for slot, (i, name, _) in enumerate(views):
            self.sources[name] = RemoteSource(self, process_of[i], slot, frames[slot], name)
        for p in range(count):
            self._spawn(p)
        for p in range(count):  # every process has opened its sources (or said why not)
            reply = self.ask(p, ("ready",))
            if reply is None or isinstance(reply, VidclsError):
                self.close()
                if reply is None and main_script() is not None:
                    reply = VidclsError(
                        "a decoding process failed to start: a script that watches sources "
                        'with decoding processes calls it under `if __name__ == "__main__":`',
                        main_script(),
                    )
                raise reply or VidclsError("a decoding process failed to start")

    def _spawn(self, p: int) -> None:
        here, there = self._context.Pipe()
        proc = self._context.Process(
            target=_serve,
            args=(there, self._work[p], self.memory.name, self._count, self._shape),
            kwargs={
                "loop": self._loop,
                "record": self._record,
                "replay": None if self.clock is None else self.clock(),
            },
            name=f"vidcls-decoder-{p}",
            daemon=True,
        )
        proc.start()
        there.close()
        self._pipes[p], self._procs[p] = here, proc

    def ask(self, process: int, message: tuple):
        """Send ``message`` to a process and wait for its answer; None if it is gone (it is
        started again, at most every few seconds)."""
        with self._locks[process]:
            try:
                self._pipes[process].send(message)
                return self._pipes[process].recv()
            except (EOFError, OSError, BrokenPipeError):
                self._revive(process)
                return None

    def _revive(self, p: int) -> None:
        """Start process ``p`` again unless it was just tried (call with its lock held)."""
        now = time.monotonic()
        if self._closing or now < self._retry_at[p]:
            return
        delay = BACKOFF[min(self.restarts[p], len(BACKOFF) - 1)]
        self._retry_at[p] = now + delay
        old = self._procs[p]
        if old.is_alive():
            old.kill()
        old.join(timeout=5)
        self._pipes[p].close()
        log.warning("a decoding process stopped (exit code %s); starting it again", old.exitcode)
        self.restarts[p] += 1
        self._spawn(p)

    def set_fit(self, fit: str) -> None:
        """Fit pictures to the model's shape by ``fit`` from now on (a new model's), in every
        process and in any started again."""
        self._shape = (*self._shape[:3], fit)
        for p in range(len(self._procs)):
            self.ask(p, ("fit", fit))

    def pids(self) -> list[int]:
        """The decoding processes' ids, in process order."""
        return [proc.pid for proc in self._procs]

    def cpu_seconds(self) -> float:
        """CPU time the decoding processes have used so far (Linux; 0 elsewhere)."""
        return sum(process_seconds(proc.pid) for proc in self._procs)

    def close(self) -> None:
        """Stop every process and free the shared memory."""
        self._closing = True
        for p, proc in enumerate(self._procs):
            if proc is not None:
                self.ask(p, ("stop",))
        for proc in self._procs:
            if proc is not None:
                proc.join(timeout=5)
                if proc.is_alive():
                    proc.kill()
        for pipe in self._pipes:
            if pipe is not None:
                pipe.close()
        self.memory.close()
        self.memory.unlink()


def _serve(conn, work, memory_name, count, shape, loop=False, record=None, replay=None) -> None:
    """A decoding process: capture threads for ``work`` ([(index, source)], [(slot, index,
    zone)]), answering asks about each view's slot; with ``replay`` (the parent's virtual
    clock's time), files replayed on a copy of that clock, set by each ask."""
    from ..preprocess import Preprocessor
    from .capture import picture_of
    from .clock import VirtualClock
    from .replay import frame_source

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    exit_with(os.getppid())
    height, width, resize, fit = shape
    memory = shared_memory.SharedMemory(name=memory_name)
    frames = np.ndarray((count, height, width, 3), np.uint8, memory.buf)
    sources, views = work
    clock = None if replay is None else VirtualClock(replay)
    try:
        grabbers = {i: frame_source(s, loop, record, clock) for i, s in sources}
    except VidclsError as e:
        conn.recv()
        conn.send(e)
        return
    # Each view's frame (or zone of it) is scaled straight into its place in shared memory.
    pre = {slot: Preprocessor(height, width, resize, fit, frames[slot]) for slot, _, _ in views}
    source_of = {slot: i for slot, i, _ in views}
    zone_of = {slot: z for slot, _, z in views}
    full: dict[int, tuple[int, np.ndarray]] = {}  # a source's frame as RGB, for its zones
    for g in grabbers.values():
        g.start()
    try:
        while True:
            message = conn.recv()
            if message[0] == "stop":
                break
            if message[0] == "ready":
                conn.send(True)
                continue
            if message[0] == "picture":
                conn.send(_picture(grabbers[source_of[message[1]]], message[2]))
                continue
            if message[0] == "fit":
                for one in pre.values():
                    one.fit_mode = message[1]
                conn.send(True)
                continue
            if message[0] == "clip":
                _, slot, path, start, end = message
                conn.send(grabbers[source_of[slot]].clip(path, start, end))
                continue
            _, slot, after, now = message
            if clock is not None:
                clock.set(now)
            i = source_of[slot]
            g = grabbers[i]
            got = g.latest(after)
            found = None
            if got is not None:
                try:
                    zone = zone_of[slot]
                    if zone is None:
                        pre[slot].pixels(got.frame)
                    else:
                        if i not in full or full[i][0] != got.index:
                            full[i] = (got.index, picture_of(got.frame, None))
                        pre[slot].fit(zone.crop(full[i][1]))
                    found = (got.index, got.captured_at, got.generation)
                except VidclsError:  # a frame that cannot be converted is skipped
                    found = None
            error = None if g.error is None else str(g.error)
            ended = g.ended and got is None
            status = _Status(g.captured, g.reconnects, g.online, ended, g.input_fps, error)
            conn.send((found, status))
    except (EOFError, OSError, KeyboardInterrupt):
        pass
    finally:
        for g in grabbers.values():
            g.stop()
        del frames
        memory.close()


def _picture(grabber, size) -> np.ndarray | None:
    """A source's freshest picture, or None (also when it cannot be converted)."""
    try:
        return grabber.picture(size)
    except VidclsError:
        return None


def exit_with(parent: int) -> None:
    """End this process when its parent is gone (even killed)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()
