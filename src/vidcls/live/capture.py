"""Where a live source's frames come from: always the freshest one, never a queue.

:class:`FrameSource` is what the scheduler and the displays use of a source. Three kinds:
:class:`FrameGrabber` reads a camera, network stream or file in a thread of this process,
reopening a dropped network source with backoff; :class:`FrameSlot` holds frames its producer
pushes (a browser over a WebSocket); :class:`~vidcls.live.decoders.RemoteSource` is a source
decoded in a child process.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import av
import cv2
import numpy as np

from ..errors import VidclsError
from ..media import to_rgb

log = logging.getLogger("vidcls")
BACKOFF = (0.5, 1.0, 2.0, 4.0, 8.0)


@dataclass
class Captured:
    """One frame as captured: a PyAV frame or an RGB array (at the model's size when it comes
    from a decoding process)."""

    frame: av.VideoFrame | np.ndarray
    captured_at: float  # time.monotonic() when it arrived
    index: int  # frames captured since the source started; only grows
    generation: int  # bumps when the source is reopened after a loss: its state starts anew


class FrameSource:
    """A live source's freshest frame and what the source is doing.

    ``latest(after)`` never waits. A source whose ``wakes`` is True calls ``wake()`` (set by
    the scheduler) when a frame comes; the others are looked at again a little later.
    ``picture(size)`` is the freshest frame as a person sees it (upright, full size or scaled
    to ``(width, height)``), for windows and snapshots.
    """

    name = ""
    wakes = False
    wake: Callable[[], None] | None = None
    captured = 0  # frames captured so far
    reconnects = 0
    ended = False  # no frame will come any more
    online = False  # open and delivering
    input_fps = 0.0  # rate frames arrive (0: not known yet)
    error: VidclsError | None = None  # why the source ended, if it failed

    @property
    def lost(self) -> bool:
        """Whether the source failed, or is down (not online) without having ended."""
        return self.error is not None or not (self.online or self.ended)

    def start(self) -> None:
        """Begin capturing."""

    def stop(self) -> None:
        """Stop capturing and release the source."""

    def latest(self, after: int = -1) -> Captured | None:  # pragma: no cover - interface
        """The freshest frame with an index above ``after``, or None."""
        raise NotImplementedError

    def clip(self, path: str, start: float, end: float | None = None) -> bool:
        """Ask for an event clip of the source's own packets around monotonic times ``start``
        .. ``end`` (see :class:`vidcls.media.ClipRecorder`); False when the source keeps none
        (a camera, frames pushed by a browser)."""
        return False

    def picture(self, size: tuple[int, int] | None = None) -> np.ndarray | None:
        """The freshest frame as upright RGB uint8, ``size`` (width, height) if given; None
        before the first frame."""
        got = self.latest()
        return None if got is None else picture_of(got.frame, size)


class Arrivals:
    """The rate frames arrive at, over the last two seconds or so (they often come in
    bursts)."""

    def __init__(self) -> None:
        self._times: collections.deque[float] = collections.deque(maxlen=121)
        self.fps = 0.0

    def add(self, now: float) -> float:
        """A frame came at ``now``; the rate."""
        times = self._times
        times.append(now)
        while len(times) > 2 and now - times[0] > 2.0:
            times.popleft()
        if len(times) > 1 and now > times[0]:
            self.fps = (len(times) - 1) / (now - times[0])
        return self.fps


def picture_of(frame: av.VideoFrame | np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """A PyAV frame or RGB array as upright RGB uint8, scaled to ``size`` when given."""
    if not isinstance(frame, np.ndarray):
        frame = to_rgb(frame, size)  # a frame turned upright may come out the other way round
    if size is None or frame.shape[1::-1] == tuple(size):
        return frame
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


class FrameGrabber(FrameSource):
    """Reads a source (from :func:`vidcls.media.open_source`) in a thread, keeping the newest
    frame.

    A network source or camera that fails or ends is reopened with backoff (0.5 s doubling to
    8 s) and the generation bumps, so the consumer knows to reset its state. A file ends the
    grabber at its end, or with ``loop`` on the source plays again from the start, seamlessly
    (the same generation: it is one long video to the model).
    """

    wakes = True

    def __init__(self, source, reconnect: bool | None = None) -> None:
        self.source = source
        self.name = source.name
        self.reconnect = source.network if reconnect is None else reconnect
        self._thread = threading.Thread(target=self._run, name="vidcls-capture", daemon=True)
        self._lock = threading.Lock()
        self._latest: Captured | None = None
        self._want = threading.Event()  # a camera frame is decoded only when wanted
        self._stopping = threading.Event()
        self._arrivals = Arrivals()
        self.generation = 0

    # -- consumer side ---------------------------------------------------------------------

    def latest(self, after: int = -1) -> Captured | None:
        self._want.set()
        with self._lock:
            got = self._latest
        return got if got is not None and got.index > after else None

    def start(self) -> None:
        if not self._thread.is_alive() and not self.ended:
            self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        recorder = getattr(self.source, "recorder", None)
        if recorder is not None:
            recorder.close()  # the clips asked for, with what there is

    def clip(self, path: str, start: float, end: float | None = None) -> bool:
        recorder = getattr(self.source, "recorder", None)
        if recorder is None:
            return False
        recorder.request(path, start, end)
        return True

    # -- capture thread --------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._capture()
        finally:
            self.online, self.ended = False, True
            recorder = getattr(self.source, "recorder", None)
            if recorder is not None:
                recorder.finish()
            self._notify()

    def _capture(self) -> None:
        attempt, first = 0, True
        while not self._stopping.is_set():
            if not self._open(first, attempt):
                if self.ended or self.error is not None or self._stopping.is_set():
                    return
                attempt += 1
                continue
            if not first:
                self.generation += 1
                self.reconnects += 1
                log.warning("reconnected to %s", self.name)
            first = False
            reason = self._pump_loops()
            if self._stopping.is_set():
                return
            if not self.reconnect:
                if reason is not None:
                    self.error = VidclsError(f"reading failed ({reason})", self.name)
                return
            attempt = 0 if self._frames_this_time else attempt + 1
            delay = BACKOFF[min(attempt, len(BACKOFF) - 1)]
            log.warning(
                "lost %s (%s); reconnecting in %.1f s", self.name, reason or "stream ended", delay
            )
            if self._stopping.wait(delay):
                return

    def _open(self, first: bool, attempt: int) -> bool:
        """Open the source; False (after the backoff wait) when it could not be reached."""
        try:
            self.source.open()
            return True
        except VidclsError as e:
            self.error = e
        except OSError as e:
            if first and not self.reconnect:
                self.error = VidclsError(f"cannot open ({e})", self.name)
                return False
            delay = BACKOFF[min(attempt, len(BACKOFF) - 1)]
            log.warning("cannot open %s (%s); retrying in %.1f s", self.name, e, delay)
            self._stopping.wait(delay)
        return False

    def _pump_loops(self) -> str | None:
        """Read until the source ends (None) or fails (the reason); a looping file plays on."""
        self._frames_this_time = 0
        self.online = True
        try:
            while True:
                reason = self._pump()
                if reason is not None or not self.source.loop or self._stopping.is_set():
                    return reason
                self.source.close()
                self.source.open()  # from the start again, same generation
        except (OSError, VidclsError) as e:
            return str(e)
        finally:
            self.online = False
            self.source.close()

    def _pump(self) -> str | None:
        """Read until the source ends (None) or fails (the reason)."""
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
            self.input_fps = self._arrivals.add(now)
            if camera:
                if not self._want.is_set():
                    continue  # grabbed, not decoded: nobody is waiting for it
                self._want.clear()
                frame = self.source.retrieve()
                if frame is None:
                    return "camera frame could not be decoded"
            self._frames_this_time += 1
            with self._lock:
                self._latest = Captured(frame, now, self.captured, self.generation)
                self.captured += 1
            self._notify()
        return None

    def _notify(self) -> None:
        wake = self.wake
        if wake is not None:
            wake()


class FrameSlot(FrameSource):
    """The freshest frame its producer pushed: ``put`` replaces it, ``latest`` takes it."""

    wakes = True

    def __init__(self, name: str = "") -> None:
        self.name = name
        self._lock = threading.Lock()
        self._latest: Captured | None = None
        self._taken = -1  # index of the last frame ``latest`` handed out
        self.online = True

    def put(self, frame, captured_at: float | None = None) -> Captured | None:
        """Offer a new frame (a PyAV frame or an RGB array). An older one never taken is
        dropped and returned (so its producer can account for it); else None."""
        now = time.monotonic() if captured_at is None else captured_at
        with self._lock:
            old = self._latest
            dropped = old if old is not None and old.index > self._taken else None
            self._latest = Captured(frame, now, self.captured, 0)
            self.captured += 1
        if self.wake is not None:
            self.wake()
        return dropped

    def latest(self, after: int = -1) -> Captured | None:
        with self._lock:
            got = self._latest
            if got is None or got.index <= after:
                return None
            self._taken = max(self._taken, got.index)
            return got

    def picture(self, size: tuple[int, int] | None = None) -> np.ndarray | None:
        with self._lock:
            got = self._latest
        return None if got is None else picture_of(got.frame, size)

    def close(self) -> None:
        """No more frames: the feed ends once this is seen."""
        self.ended, self.online = True, False
        if self.wake is not None:
            self.wake()
