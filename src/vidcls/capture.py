"""Capture a live source in its own thread, keeping only the freshest frame.

:class:`FrameGrabber` reads a source from :func:`vidcls.media.open_source` continuously, so a
slow consumer drops frames instead of falling behind, and reopens a dropped network source with
backoff.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass

import av
import numpy as np

from .errors import VidclsError

log = logging.getLogger("vidcls")
BACKOFF = (0.5, 1.0, 2.0, 4.0, 8.0)


@dataclass
class Captured:
    """One frame as captured: a PyAV frame, or an RGB array from a camera."""

    frame: av.VideoFrame | np.ndarray
    captured_at: float  # time.monotonic() when it arrived
    index: int  # frames captured since the grabber started
    generation: int  # bumps each time the source is reopened after a loss


class FrameGrabber(threading.Thread):
    """Reads a source in a background thread, keeping only the newest frame.

    ``latest(after)`` waits for a frame newer than index ``after``. Network and camera sources
    that fail or end are reopened with backoff (0.5 s doubling to 8 s) and the generation bumps,
    so the consumer knows to reset its state. A file ends the grabber at its end (or loops).
    """

    def __init__(self, source, reconnect: bool | None = None) -> None:
        super().__init__(name="vidcls-capture", daemon=True)
        self.source = source
        self.reconnect = source.network if reconnect is None else reconnect
        self._cond = threading.Condition()
        self._latest: Captured | None = None
        self._want = threading.Event()  # a camera frame is decoded only when wanted
        self._stopping = threading.Event()
        self.generation = 0
        self.captured = 0
        self.ended = False
        self.error: Exception | None = None
        self.input_fps = 0.0
        self._arrivals: collections.deque[float] = collections.deque(maxlen=121)
        self.reconnects = 0
        self.online = False  # open and delivering (False while reconnecting)

    # -- consumer side ---------------------------------------------------------------------

    def latest(self, after: int = -1, timeout: float = 1.0) -> Captured | None:
        """The freshest frame with index > ``after``; None on timeout or when the source ended."""
        deadline = time.monotonic() + timeout
        self._want.set()
        with self._cond:
            while not self.ended and (self._latest is None or self._latest.index <= after):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)
            if self._latest is None or self._latest.index <= after:
                return None
            return self._latest

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=5)

    # -- capture thread --------------------------------------------------------------------

    def run(self) -> None:
        attempt = 0
        first = True
        try:
            while not self._stopping.is_set():
                try:
                    self.source.open()
                except VidclsError as e:
                    self.error = e
                    break
                except OSError as e:
                    if first and not self.reconnect:
                        self.error = VidclsError(f"cannot open ({e})", self.source.name)
                        break
                    delay = BACKOFF[min(attempt, len(BACKOFF) - 1)]
                    log.warning(
                        "cannot open %s (%s); retrying in %.1f s", self.source.name, e, delay
                    )
                    attempt += 1
                    if self._stopping.wait(delay):
                        break
                    continue
                if not first:
                    self.generation += 1
                    self.reconnects += 1
                    log.warning("reconnected to %s", self.source.name)
                first = False
                self.online = True
                reason = self._pump()
                self.online = False
                got_frames = self._last_pump_frames > 0
                self.source.close()
                if self._stopping.is_set():
                    break
                if reason is None and self.source.loop:
                    self.generation += 1
                    continue
                if not self.reconnect:
                    if reason is not None:
                        self.error = VidclsError(f"reading failed ({reason})", self.source.name)
                    break
                attempt = 0 if got_frames else attempt + 1
                delay = BACKOFF[min(attempt, len(BACKOFF) - 1)]
                log.warning(
                    "lost %s (%s); reconnecting in %.1f s",
                    self.source.name,
                    reason or "stream ended",
                    delay,
                )
                if self._stopping.wait(delay):
                    break
        finally:
            with self._cond:
                self.ended = True
                self._cond.notify_all()

    def _pump(self) -> str | None:
        """Read until the source ends (None) or fails (the reason)."""
        self._last_pump_frames = 0
        camera = self.source.camera
        while not self._stopping.is_set():
            try:
                if camera and not self.source.grab():
                    return "camera stopped delivering frames"
                frame = None if camera else self.source.read()
                if frame is None and not camera:
                    return None
            except OSError as e:
                return str(e)
            now = time.monotonic()
            self._tick(now)
            if camera:
                if not self._want.is_set():
                    continue  # grabbed, not decoded: nobody is waiting for it
                self._want.clear()
                frame = self.source.retrieve()
                if frame is None:
                    return "camera frame could not be decoded"
            self._last_pump_frames += 1
            with self._cond:
                self._latest = Captured(frame, now, self.captured, self.generation)
                self.captured += 1
                self._cond.notify_all()
        return None

    def _tick(self, now: float) -> None:
        """Input rate over the last second or so of arrivals (frames often come in bursts)."""
        arrivals = self._arrivals
        arrivals.append(now)
        while len(arrivals) > 2 and now - arrivals[0] > 2.0:
            arrivals.popleft()
        if len(arrivals) > 1 and now > arrivals[0]:
            self.input_fps = (len(arrivals) - 1) / (now - arrivals[0])
