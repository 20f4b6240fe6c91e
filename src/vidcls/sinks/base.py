"""What every event sink shares: the interface, throttled warnings. The JSON payload of an
event is :func:`vidcls.events.event_doc`'s, as every other output's."""

from __future__ import annotations

import logging
import threading
import time
from urllib.parse import urlsplit, urlunsplit

from ..live.outputs import Output, Outputs
from ..results import SegmentEvent

log = logging.getLogger("vidcls")


class EventSink(Output):
    """Where segment events go as they happen, without ever blocking the caller.

    ``event`` and ``status`` only enqueue; a background thread delivers. ``close`` flushes
    what is queued within its timeout, then stops (a second call does nothing). ``sent``
    counts deliveries, ``dropped`` events lost to a full queue or to closing before they
    went, ``failed`` events the receiver refused or that ran out of retries.
    """

    name = "sink"
    waits = True

    def __init__(self) -> None:
        self.sent = 0
        self.dropped = 0
        self.failed = 0

    def event(self, source: str, event: SegmentEvent) -> None:
        """Queue a segment start or end of ``source``."""
        raise NotImplementedError

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued within ``timeout`` seconds, then stop."""


def shown_url(url: str) -> str:
    """``url`` for messages: a password in it replaced by ``***`` (a URL that cannot be
    taken apart, such as ``http://[::1``, is shown up to its ``@``)."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
    except ValueError:
        head, at, host = url.rpartition("@")
        return f"{head.partition('://')[0]}://***@{host}" if at else url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


class Throttle:
    """True at most once every ``period`` seconds (the first time at once): for warnings that
    would otherwise repeat per event."""

    def __init__(self, period: float = 30.0) -> None:
        self.period = period
        self._last = -float("inf")
        self._lock = threading.Lock()

    def __call__(self) -> bool:
        now = time.monotonic()
        with self._lock:
            if now - self._last < self.period:
                return False
            self._last = now
            return True


def close_all(sinks: list[EventSink], timeout: float = 5.0) -> None:
    """Close every sink at once, all within ``timeout`` seconds (and a moment's grace for
    their last words)."""
    Outputs(sinks).close(timeout)
