"""Progress through the phases of a long run (feature extraction, fitting, writing, checking).

On a terminal each phase is a tqdm bar on stderr, with its rate and the time left. Elsewhere
(logs, CI, a pipe) each phase is one line when it starts and one when it ends, with its
duration, on the ``vidcls.progress`` logger at INFO level; the command line shows them, so a
log says where the time went. Python callers see them when they enable INFO logging. A
``listener`` also hears every phase's start, steps and end (the teaching page's jobs use it).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterator

log = logging.getLogger("vidcls.progress")
# listener(phase name, steps done, total steps or None, detail, state): state is "started",
# "running" or "done".
Listener = Callable[[str, int, "int | None", str, str], None]


class Phase:
    """One phase under way: :meth:`advance` moves its bar; ``note`` is added to its last line."""

    def __init__(self, bar=None, name: str = "", total=None, listener: Listener | None = None):
        self.bar, self.name, self.total, self.listener = bar, name, total, listener
        self.note = ""
        self.done = 0

    def advance(self, n: int = 1) -> None:
        """``n`` more steps done."""
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        if self.listener is not None:
            self.listener(self.name, self.done, self.total, self.note, "running")


class Progress:
    """Reports phases as bars (``bars=True``), as start and end lines (``False``), or as
    suits stderr (``None``: bars on a terminal, lines otherwise); and to ``listener``."""

    def __init__(self, bars: bool | None = None, listener: Listener | None = None) -> None:
        self.bars = sys.stderr.isatty() if bars is None else bars
        self.listener = listener

    @contextlib.contextmanager
    def phase(
        self, name: str, detail: str, done: str, total: int | None = None, unit: str = "step"
    ) -> Iterator[Phase]:
        """A phase named ``name`` (the bar's title), described at its start by ``detail`` and
        at its end by ``done``, e.g. ``fitting``, ``5 L2 values x 3 folds``, ``fitted``. The end
        line is not written when the phase fails."""
        t0 = time.monotonic()
        hear = self.listener
        if hear is not None:
            hear(name, 0, total, detail, "started")
        if not self.bars:
            log.info("%s: %s ...", name, detail)
            phase = Phase(None, name, total, hear)
            yield phase
            note = f" ({phase.note})" if phase.note else ""
            seconds = time.monotonic() - t0
            log.info(
                "%s in %.1f s%s", done, seconds, note, extra={"phase": name, "seconds": seconds}
            )
        else:
            from tqdm import tqdm
            from tqdm.contrib.logging import logging_redirect_tqdm

            bar = tqdm(total=total, desc=name, unit=unit, file=sys.stderr, dynamic_ncols=True)
            try:
                with logging_redirect_tqdm():  # warnings print above the bar, not through it
                    phase = Phase(bar, name, total, hear)
                    yield phase
            finally:
                bar.close()
        if hear is not None:
            hear(
                name,
                phase.done,
                total,
                phase.note or f"{done} in {time.monotonic() - t0:.1f} s",
                "done",
            )


def count(n: int, noun: str, plural: str = "") -> str:
    """``1 clip``, ``2 clips`` (``plural``: when not ``noun`` + s)."""
    return f"{n} {noun}" if n == 1 else f"{n} {plural or noun + 's'}"


def show_phase_lines() -> None:
    """Let the phase lines through to the root logger's handlers (the command line's)."""
    log.setLevel(logging.INFO)
