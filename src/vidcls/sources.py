"""Live frame sources, read in their own thread, keeping only the freshest frame.

A source is a camera (index ``0`` or a device path, through OpenCV), a network stream
(``rtsp://``, ``rtmp://``, ``http(s)://``, ``udp://``, ``tcp://``, ``srt://``, through PyAV), or a
file played at its real speed. :class:`FrameGrabber` reads it continuously, so a slow consumer
drops frames instead of falling behind, and reopens a dropped source with backoff.
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
from .video import check_readable

log = logging.getLogger("vidcls")

NETWORK_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "srt")
BACKOFF = (0.5, 1.0, 2.0, 4.0, 8.0)


@dataclass
class Captured:
    """One frame as captured: a PyAV frame, or an OpenCV BGR array."""

    frame: av.VideoFrame | np.ndarray
    captured_at: float  # time.monotonic() when it arrived
    index: int  # frames captured since the grabber started
    generation: int  # bumps each time the source is reopened after a loss


class _AvSource:
    """A network stream or a file, decoded with PyAV; files are paced to their real speed."""

    def __init__(self, url: str, realtime: bool, loop: bool) -> None:
        self.url, self.realtime, self.loop = url, realtime, loop
        self.network = url.split("://", 1)[0].lower() in NETWORK_SCHEMES
        self._container = None

    def open(self) -> None:
        options = {}
        if self.network:
            options = {"fflags": "nobuffer", "flags": "low_delay", "analyzeduration": "1000000"}
            if self.url.lower().startswith("rtsp"):
                options["rtsp_transport"] = "tcp"
        try:
            self._container = av.open(self.url, options=options, timeout=(10.0, 5.0))
        except av.FFmpegError as e:
            raise OSError(_reason(e)) from None
        if not self._container.streams.video:
            self._container.close()
            raise VidclsError("no video stream", self.url)
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        self._frames = self._container.decode(stream)
        self._wall0 = self._t0 = None

    def read(self) -> av.VideoFrame | None:
        """The next frame, or None at the end of the input."""
        try:
            frame = next(self._frames)
        except StopIteration:
            return None
        except av.FFmpegError as e:
            raise OSError(_reason(e)) from None
        if self.realtime and frame.time is not None:
            now = time.monotonic()
            if self._t0 is None:
                self._wall0, self._t0 = now, frame.time
            delay = self._wall0 + (frame.time - self._t0) - now
            if delay > 0:
                time.sleep(delay)
        return frame

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None


class _CameraSource:
    """A camera through OpenCV: every frame is grabbed, only wanted ones are decoded."""

    network = False
    loop = False

    def __init__(self, device: int | str) -> None:
        self.device = device
        self._cap = None

    def open(self) -> None:
        import cv2

        self._cap = cv2.VideoCapture(self.device)
        if not self._cap.isOpened():
            self._cap.release()
            raise OSError(f"cannot open camera {self.device}")

    def grab(self) -> bool:
        return bool(self._cap.grab())

    def retrieve(self) -> np.ndarray | None:
        ok, bgr = self._cap.retrieve()
        return bgr if ok else None

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


def open_source(spec: str, realtime: bool = True, loop: bool = False):
    """The source for a camera index, device path, URL or file path."""
    if spec.isdigit():
        return _CameraSource(int(spec))
    if spec.startswith("/dev/video"):
        return _CameraSource(spec)
    if "://" in spec:
        scheme = spec.split("://", 1)[0].lower()
        if scheme not in (*NETWORK_SCHEMES, "file"):
            raise VidclsError(f"unsupported stream scheme '{scheme}://'", spec)
        return _AvSource(spec, realtime=scheme == "file" and realtime, loop=loop)
    path = check_readable(spec, missing="no such file, camera or stream")
    return _AvSource(str(path), realtime=realtime, loop=loop)


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
                        self.error = VidclsError(f"cannot open ({e})", _name(self.source))
                        break
                    delay = BACKOFF[min(attempt, len(BACKOFF) - 1)]
                    log.warning(
                        "cannot open %s (%s); retrying in %.1f s", _name(self.source), e, delay
                    )
                    attempt += 1
                    if self._stopping.wait(delay):
                        break
                    continue
                if not first:
                    self.generation += 1
                    self.reconnects += 1
                    log.warning("reconnected to %s", _name(self.source))
                first = False
                reason = self._pump()
                got_frames = self._last_pump_frames > 0
                self.source.close()
                if self._stopping.is_set():
                    break
                if reason is None and getattr(self.source, "loop", False):
                    self.generation += 1
                    continue
                if not self.reconnect:
                    if reason is not None:
                        self.error = VidclsError(f"reading failed ({reason})", _name(self.source))
                    break
                attempt = 0 if got_frames else attempt + 1
                delay = BACKOFF[min(attempt, len(BACKOFF) - 1)]
                log.warning(
                    "lost %s (%s); reconnecting in %.1f s",
                    _name(self.source),
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
        camera = isinstance(self.source, _CameraSource)
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


def _name(source) -> str:
    return str(getattr(source, "url", None) or getattr(source, "device", "source"))


def _reason(e: Exception) -> str:
    text = getattr(e, "strerror", None) or str(e)
    return text.strip()
