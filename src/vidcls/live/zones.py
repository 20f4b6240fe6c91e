"""Zones of a source captured in this process: each a :class:`FrameSource` of its own.

A source with zones is fed through a :class:`View` per zone (and one for its whole frame
when asked): each view is a feed of the scheduler with its own state, window and segments.
The views share their source: it is opened, read and stopped once, its frame converted to
RGB once however many zones crop it, and a new frame wakes every view's worker. (Sources in
decoding processes crop their zones there: see :mod:`.decoders`.)
"""

from __future__ import annotations

import threading

import numpy as np

from .capture import Captured, FrameSource, picture_of
from .sources import Zone


class Shared:
    """One source seen by several views: wakes them all, converts each frame once."""

    def __init__(self, source: FrameSource) -> None:
        self.source = source
        self.views: list[View] = []
        self._lock = threading.Lock()
        self._rgb: tuple[int, np.ndarray] | None = None  # (frame index, full RGB picture)
        if source.wakes:
            source.wake = self._wake

    def _wake(self) -> None:
        for view in self.views:
            if view.wake is not None:
                view.wake()

    def rgb(self, got: Captured) -> np.ndarray:
        """Frame ``got`` upright as full-size RGB, converted once for all the views."""
        with self._lock:
            cached = self._rgb
            if cached is not None and cached[0] == got.index:
                return cached[1]
        rgb = picture_of(got.frame, None)
        with self._lock:
            self._rgb = (got.index, rgb)
        return rgb


class View(FrameSource):
    """The whole frame (``zone`` None) or a zone of a shared source; everything else (state,
    counts, pictures, clips) is the source's."""

    def __init__(self, shared: Shared, name: str, zone: Zone | None = None) -> None:
        self.shared, self.name, self.zone = shared, name, zone
        self.wakes = shared.source.wakes
        shared.views.append(self)

    def latest(self, after: int = -1) -> Captured | None:
        got = self.shared.source.latest(after)
        if got is None or self.zone is None:
            return got
        crop = self.zone.crop(self.shared.rgb(got))
        return Captured(crop, got.captured_at, got.index, got.generation)

    def picture(self, size: tuple[int, int] | None = None) -> np.ndarray | None:
        return self.shared.source.picture(size)

    def clip(self, path: str, start: float, end: float | None = None) -> bool:
        return self.shared.source.clip(path, start, end)

    def start(self) -> None:  # the source starts and stops once, with the first view
        if self is self.shared.views[0]:
            self.shared.source.start()

    def stop(self) -> None:
        if self is self.shared.views[0]:
            self.shared.source.stop()

    @property
    def ended(self) -> bool:
        return self.shared.source.ended

    @property
    def online(self) -> bool:
        return self.shared.source.online

    @property
    def captured(self) -> int:
        return self.shared.source.captured

    @property
    def reconnects(self) -> int:
        return self.shared.source.reconnects

    @property
    def input_fps(self) -> float:
        return self.shared.source.input_fps

    @property
    def error(self):
        return self.shared.source.error


def views_of(spec, source: FrameSource) -> dict[str, FrameSource]:
    """The feeds of a source: itself when it has no zones, else a view per zone (and one for
    the whole frame when asked)."""
    views = spec.views()
    if not spec.zones:
        return {views[0][0]: source}
    shared = Shared(source)
    return {name: View(shared, name, zone) for name, zone in views}
