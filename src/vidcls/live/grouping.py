"""How a live engine's cameras are split into groups (:mod:`.groups`), and the parent's
handle on each group process: start it, tell it things, know whether it lives."""

from __future__ import annotations

import os
import threading
import time


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
    pipes, its deaths."""

    def __init__(self, index: int, plan, phase: int) -> None:
        self.index, self.plan, self.phase = index, plan, phase
        self.views = [v for s in plan.specs for v, _ in s.views()]
        self.proc = self.conn = self.commands = None
        self.lock = threading.Lock()
        self.tries = 0
        self.started_at = 0.0
        self.restart_at: float | None = None
        self.done = False  # reported its end (or could not start, or was given up)
        self.error: str | None = None

    def start(self, context, duration: float | None) -> None:
        here, there = context.Pipe(duplex=False)
        take, orders = context.Pipe(duplex=False)  # (receiving end, sending end)
        from .group_child import run_group

        self.proc = context.Process(
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

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.is_alive()


def decoders_per_group(plan, count: int) -> int | None:
    """Decoding processes per group: as asked, else as many all told as one process would
    have (at least one a group, none when one process would decode in threads)."""
    if plan.decoders is not None:
        return plan.decoders
    from .reading import default_decoders

    total = default_decoders(len(plan.specs))
    return 0 if total == 0 else max(1, total // count)
