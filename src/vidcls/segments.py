"""Action segments from per-frame probabilities: smoothing, hysteresis, minimum duration.

A segment opens when a class's smoothed probability reaches ``enter`` (the leading class, if
several do), lasts while it stays at or above ``exit``, and is kept only if it lasts at least
``min_duration`` seconds. A stronger class that reaches ``enter`` takes over. Works online
(:class:`Segmenter`, frame by frame, with start/end events) and offline (:func:`find_segments`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .options import SegmentOptions
from .results import Segment, SegmentEvent


@dataclass
class Segmenter:
    """Online segmentation: feed ``update(time, probabilities)`` frame by frame. Each event's
    ``time`` is when it was decided (a start once ``min_duration`` has passed, an end when
    the score fell below ``exit``), so events come in time order; the segment carries its own
    start and end."""

    labels: list[str]
    options: SegmentOptions = field(default_factory=SegmentOptions)
    segments: list[Segment] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._smoothed: np.ndarray | None = None
        self._last_time: float | None = None
        self._frame_step = 0.0
        self._active: Segment | None = None
        self._announced = False
        self._start_id: str | None = None  # the open segment's start event's id

    @property
    def last_time(self) -> float | None:
        """The time of the latest frame fed, None before the first."""
        return self._last_time

    @property
    def active(self) -> Segment | None:
        """The current segment, once it has lasted ``min_duration``."""
        return self._active if self._announced else None

    def update(self, time: float, probabilities: np.ndarray) -> list[SegmentEvent]:
        """Feed one frame's probabilities; returns the events it causes."""
        s = self._smooth(time, probabilities)
        events: list[SegmentEvent] = []
        active = self._active
        if active is not None:
            score = float(s[active.index])
            if score < self.options.exit:
                events += self._close(time)
            else:
                active.end = time
                active.peak = max(active.peak, score)
                best = int(np.argmax(s))
                if best != active.index and s[best] >= self.options.enter and s[best] > score:
                    events += self._close(time)
        if self._active is None:
            best = int(np.argmax(s))
            if s[best] >= self.options.enter:
                self._active = Segment(self.labels[best], best, time, time, float(s[best]))
                self._announced = False
        events += self._announce(time)
        return events

    def finish(self, interrupted: bool = False) -> list[SegmentEvent]:
        """End of input: close the open segment at the end of the last frame
        (``interrupted``: because the source was lost, not because the action stopped)."""
        if self._last_time is None:
            return []
        return self._close(self._last_time + self._frame_step, interrupted)

    def reset(self, interrupted: bool = False) -> list[SegmentEvent]:
        """Forget the smoothing (e.g. after a reconnect: ``interrupted``); closes the open
        segment."""
        events = self.finish(interrupted)
        self._smoothed, self._last_time = None, None
        return events

    def _smooth(self, time: float, p: np.ndarray) -> np.ndarray:
        tau = self.options.smoothing
        if self._smoothed is None:
            self._smoothed = np.array(p, dtype=np.float32)
        else:
            dt = max(time - self._last_time, 0.0)
            self._frame_step = dt
            alpha = 1.0 if tau == 0 else 1.0 - math.exp(-dt / tau)
            self._smoothed += alpha * (p - self._smoothed)
        self._last_time = time
        return self._smoothed

    def _announce(self, time: float) -> list[SegmentEvent]:
        a = self._active
        if a is None or self._announced or not self._long_enough(a):
            return []
        self._announced = True
        start = SegmentEvent("start", time, a)
        self._start_id = start.id
        return [start]

    def _long_enough(self, a: Segment) -> bool:
        return a.end - a.start >= self.options.min_duration - 1e-9  # frame times are inexact

    def _close(self, time: float, interrupted: bool = False) -> list[SegmentEvent]:
        a, self._active = self._active, None
        if a is None:
            return []
        a.end = max(a.end, time)
        if not self._long_enough(a):
            return []
        self.segments.append(a)
        # A segment found long enough only as it closes starts and ends at once: both events
        # are decided now, and their time says so (the segment keeps its own start).
        events = [] if self._announced else [SegmentEvent("start", time, a)]
        start_id = self._start_id if self._announced else events[0].id
        end = SegmentEvent("end", time, a, start_id=start_id, interrupted=interrupted)
        return [*events, end]


def find_segments(
    times: np.ndarray, probabilities: np.ndarray, labels: list[str], options: SegmentOptions
) -> list[Segment]:
    """Segments of a whole video from per-frame times and probabilities ``[frames, classes]``."""
    seg = Segmenter(labels, options)
    for t, p in zip(times, probabilities, strict=True):
        seg.update(float(t), p)
    seg.finish()
    return seg.segments
