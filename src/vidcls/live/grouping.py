"""How a live engine's cameras are split into groups (:mod:`.groups`), and the parent's
handle on each group process (start it, tell it things, know whether it lives) and the way
the parent waits on them (:class:`Processes`; on Ray: :mod:`.ray_groups`)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator


def shares(specs: list, count: int) -> list[list]:
    """``specs`` in ``count`` runs of consecutive cameras (at most one a camera) with about
    as many views each."""
    count = max(1, min(count, len(specs)))
    sizes = [len(s.views()) for s in specs]
    total, done = sum(sizes), 0
    out: list[list] = [[]]
    for i, (spec, size) in enumerate(zip(specs, sizes, strict=True)):
        behind = len(specs) - i <= count - len(out)  # a camera each for the shares left
        if out[-1] and (done >= total * len(out) / count or behind):
            out.append([])
        out[-1].append(spec)
        done += size
    return out


class Group:
    """One group process (the parent's handle): its plan, its phase, its process and
    pipes, its deaths. Every handle (this one, :class:`~.ray_groups.RayGroup`) has
    ``index``, ``plan``, ``phase``, ``views``, ``tries``, ``started_at``, ``restart_at``,
    ``done``, ``error``, ``unplaced``, :meth:`start`, :meth:`tell`, :meth:`kill`,
    :meth:`reap`, ``alive``, ``running`` and ``pid``."""

    def __init__(self, index: int, plan, phase: int, context) -> None:
        self.index, self.plan, self.phase = index, plan, phase
        self.views = [v for s in plan.specs for v, _ in s.views()]
        self.context = context
        self.proc = self.conn = self.commands = None
        self.lock = threading.Lock()
        self.tries = 0
        self.started_at = 0.0
        self.restart_at: float | None = None
        self.done = False  # reported its end (or could not start, or was given up)
        self.error: str | None = None
        self.unplaced: str | None = None  # a process always has a place

    def start(self, duration: float | None) -> None:
        here, there = self.context.Pipe(duplex=False)
        take, orders = self.context.Pipe(duplex=False)  # (receiving end, sending end)
        from .group_child import run_group

        self.proc = self.context.Process(
            target=run_group,
            args=(self.plan, self.phase, duration, there, take, os.getpid()),
            name=f"vidcls-group-{self.index}",
        )
        self.proc.start()
        there.close()
        take.close()
        self.conn, self.commands = here, orders
        self.started_at, self.restart_at = time.monotonic(), None

    def tell(self, command: tuple) -> bool:
        with self.lock:
            if self.commands is None:
                return False
            try:
                self.commands.send(command)
                return True
            except (OSError, ValueError):
                return False

    def kill(self) -> None:
        """End the process at once."""
        if self.proc is not None and self.proc.is_alive():
            self.proc.kill()
            self.proc.join()

    def reap(self) -> str:
        """The process has ended: wait for it, close the commands' pipe; how it ended."""
        proc, self.proc = self.proc, None
        proc.join()
        with self.lock:
            if self.commands is not None:
                self.commands.close()
                self.commands = None
        return f"exit code {proc.exitcode}"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.is_alive()

    @property
    def running(self) -> bool:
        """Until its end is handled (and what it sent read)."""
        return self.proc is not None or self.conn is not None

    @property
    def pid(self) -> int:
        """Its process id, 0 when not running."""
        return self.proc.pid if self.alive else 0


class Processes:
    """How the parent reaches group processes: starts them the ``spawn`` way (no inherited
    threads) and waits on their pipes and sentinels."""

    def __init__(self) -> None:
        import multiprocessing as mp

        self.context = mp.get_context("spawn")  # never fork a process that runs threads

    def group(self, index: int, plan, phase: int) -> Group:
        return Group(index, plan, phase, self.context)

    def wait(self, groups: list[Group], timeout: float) -> Iterator[tuple[Group, list | None]]:
        """Within ``timeout`` seconds, what the groups sent, a batch at a time, and
        ``(group, None)`` for each whose process ended (after everything it sent)."""
        from multiprocessing.connection import wait

        waits = {}
        for g in groups:
            if g.conn is not None:
                waits[g.conn] = g
            if g.proc is not None:  # until its end is handled
                waits[g.proc.sentinel] = g
        if not waits:
            time.sleep(timeout)
            return
        for ready in wait(list(waits), timeout):
            g = waits[ready]
            if ready is g.conn:
                yield from _receive(g)
            elif g.proc is not None and ready is g.proc.sentinel:
                yield from _receive(g, everything=True)
                yield g, None

    def close(self) -> None:
        """Nothing to let go of."""


def _receive(g: Group, everything: bool = False) -> Iterator[tuple[Group, list]]:
    """One batch from ``g`` (``everything``: all it sent before it ended)."""
    while g.conn is not None:
        try:
            if everything and not g.conn.poll():
                return
            batch = g.conn.recv()
        except (EOFError, OSError):
            g.conn.close()
            g.conn = None
            return
        yield g, batch
        if not everything:
            return


def decoders_per_group(plan, count: int) -> int | None:
    """Decoding processes per group: as asked, else as many all told as one process would
    have (at least one a group, none when one process would decode in threads)."""
    if plan.decoders is not None:
        return plan.decoders
    from .reading import default_decoders

    total = default_decoders(len(plan.specs))
    return 0 if total == 0 else max(1, total // count)
