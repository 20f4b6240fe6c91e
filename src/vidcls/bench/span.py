"""The measured span of a capacity run (``vidcls bench --streams``, in one process or in
groups)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from ..errors import VidclsError


def measured_span(
    run: Callable[..., object], mark: Callable[[], dict], warmup: float, seconds: float
) -> tuple[dict, dict]:
    """``mark()`` at ``warmup`` seconds into ``run(duration=...)`` and ``seconds`` later (timed
    apart from the run, which also starts and stops everything); VidclsError if the run ended
    before the second."""
    marks: dict[str, dict] = {}
    timers = [
        threading.Timer(warmup, lambda: marks.setdefault("start", mark())),
        threading.Timer(warmup + seconds, lambda: marks.setdefault("end", mark())),
    ]
    for t in timers:
        t.start()
    try:
        run(duration=warmup + seconds + 0.5)
    finally:
        for t in timers:
            t.cancel()
    a, b = marks.get("start"), marks.get("end")
    if a is None or b is None:
        raise VidclsError("the capacity run ended before its measured span")
    return a, b
