"""The live engine's time: the real one, or a virtual clock for replays and tests.

Everything live reads the time from one clock: when a file's frames are due, when a source
is due to be fed, latencies, result and segment times, event clips. ``time.monotonic`` is the
real one. A :class:`VirtualClock` moves only when the engine has taken what was due: a
:class:`~vidcls.live.watch.Watch` on one runs on its calling thread, feeds every source
whose tick has come, then moves the clock on to the next tick or frame. Files then play as
fast as the CPU goes, no frame is dropped unless the model is made slower than the sources
on purpose (``run_cost``), and a run gives the same results on any machine, however busy.
"""

from __future__ import annotations

import math
from collections.abc import Callable

Clock = Callable[[], float]  # seconds, never going back


class VirtualClock:
    """Seconds that pass only when told: :meth:`advance` (the engine waiting for the next
    thing due) and :meth:`ran` (a model run, which takes ``run_cost`` seconds of this time:
    0 is a machine that keeps up with anything; more makes overload exact)."""

    virtual = True

    def __init__(self, start: float = 0.0, run_cost: float = 0.0) -> None:
        if not run_cost >= 0:
            raise ValueError(f"run_cost must be >= 0 seconds, got {run_cost!r}")
        self.t = float(start)
        self.run_cost = float(run_cost)
        self.runs = 0  # model runs so far

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        """Move on by ``seconds`` (never back); any time above 0 moves the clock, however
        little (a wait of less than the clock's rounding would otherwise never end)."""
        if seconds > 0:
            self.t = max(self.t + seconds, math.nextafter(self.t, math.inf))

    def set(self, t: float) -> None:
        """Move on to ``t`` (a clock driven from elsewhere: a decoding process's copy of its
        parent's clock); never back."""
        self.t = max(self.t, t)

    def ran(self) -> None:
        """A model run: ``run_cost`` seconds pass."""
        self.runs += 1
        self.t += self.run_cost


def is_virtual(clock: Clock) -> bool:
    """Whether ``clock`` is a virtual clock (the engine then runs on its caller's thread)."""
    return bool(getattr(clock, "virtual", False))
