"""Segment events as HTTP POSTs of JSON, from a background thread, retried with backoff."""

from __future__ import annotations

import base64
import collections
import http.client
import threading
import urllib.error
import urllib.request
from urllib.parse import unquote, urlsplit, urlunsplit

from .. import __version__
from ..errors import VidclsError
from ..events import event_doc
from ..results import SegmentEvent
from ..writers import dumps
from .base import EventSink, Throttle, log, shown_url

RETRIED_STATUS = frozenset({408, 425, 429})  # and every 5xx


class WebhookSink(EventSink):
    """POSTs one JSON document per segment event to ``url`` (http or https).

    Connection errors, timeouts, 5xx, 408, 425 and 429 are retried ``retries`` times, waiting
    ``backoff`` seconds doubling to ``max_backoff`` (or the server's Retry-After); other
    answers of 300 and above (redirects too) are given up at once. Up to ``queue_size``
    events wait; when full, the oldest is dropped. A ``user:password@`` in the URL is sent as
    Basic auth.
    """

    name = "webhook"

    def __init__(
        self,
        url: str,
        *,
        retries: int = 5,
        timeout: float = 5.0,
        queue_size: int = 1000,
        headers: dict[str, str] | None = None,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
    ) -> None:
        super().__init__()
        self.url, self.shown = plain_url(url), shown_url(url)
        self.retries, self.timeout, self.queue_size = retries, timeout, max(queue_size, 1)
        self.backoff, self.max_backoff = backoff, max_backoff
        self.headers = {"Content-Type": "application/json", "User-Agent": f"vidcls/{__version__}"}
        self.headers.update(_basic_auth(url))
        self.headers.update(headers or {})
        self._queue: collections.deque[bytes] = collections.deque()
        self._cond = threading.Condition()
        self._closing = False
        self._abandon = threading.Event()  # close ran out of time: stop retrying
        self._warn_full, self._warn_failed = Throttle(), Throttle()
        self._opener = urllib.request.build_opener(_NoRedirect())
        self._thread = threading.Thread(target=self._run, name="vidcls-webhook", daemon=True)
        self._thread.start()

    def event(self, source: str, event: SegmentEvent) -> None:
        body = dumps(event_doc(source, event)).encode("utf-8")  # now: the segment changes later
        with self._cond:
            if self._closing:
                self.dropped += 1
                return
            if len(self._queue) >= self.queue_size:
                self._queue.popleft()
                self.dropped += 1
                if self._warn_full():
                    log.warning(
                        "webhook %s: queue full (%d), dropping the oldest events (%d so far)",
                        self.shown,
                        self.queue_size,
                        self.dropped,
                    )
            self._queue.append(body)
            self._cond.notify()

    def close(self, timeout: float = 5.0) -> None:
        with self._cond:
            if self._closing:
                return
            self._closing = True
            self._cond.notify()
        self._thread.join(max(timeout, 0.0))
        if not self._thread.is_alive():
            return
        self._abandon.set()
        with self._cond:
            left = len(self._queue)
            self._queue.clear()
            self.dropped += left
        log.warning("webhook %s: %d events not delivered before closing", self.shown, left + 1)

    # -- the delivery thread ---------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue or self._abandon.is_set():
                    return
                body = self._queue.popleft()
            self._deliver(body)

    def _deliver(self, body: bytes) -> None:
        delay = self.backoff
        for attempt in range(self.retries + 1):
            problem, wait = self._post(body)
            if problem is None:
                self.sent += 1
                return
            if wait is None:  # refused: retrying would not help
                return self._give_up(f"{problem}, not retried")
            if attempt == self.retries:
                return self._give_up(f"{problem} after {attempt + 1} attempts")
            if self._abandon.wait(min(max(delay, wait), self.max_backoff)):
                with self._cond:
                    self.dropped += 1  # closing ran out of time
                return
            delay *= 2

    def _post(self, body: bytes) -> tuple[str | None, float | None]:
        """``(None, 0)`` when delivered; else the problem and how long to wait at least before
        retrying it (None: do not retry)."""
        request = urllib.request.Request(self.url, body, self.headers, method="POST")
        try:
            with self._opener.open(request, timeout=self.timeout) as answer:
                answer.read()
            return None, 0.0
        except urllib.error.HTTPError as e:
            problem = f"HTTP {e.code} {e.reason}"
            e.close()
            if e.code >= 500 or e.code in RETRIED_STATUS:
                return problem, _retry_after(e.headers.get("Retry-After"))
            return problem, None
        except urllib.error.URLError as e:
            return f"{e.reason}", 0.0
        except (OSError, http.client.HTTPException) as e:
            return f"{e or type(e).__name__}", 0.0

    def _give_up(self, problem: str) -> None:
        self.failed += 1
        if self._warn_failed():
            log.warning(
                "webhook %s: event not delivered (%s); %d failed so far",
                self.shown,
                problem,
                self.failed,
            )


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer like any 3xx (urllib would turn the POST into a bodiless GET)."""

    def redirect_request(self, *args, **kwargs) -> None:
        return None


def plain_url(url: str) -> str:
    """``url`` without user and password, or VidclsError when it is not http(s)."""
    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError:
        ok = False
    if not ok:
        raise VidclsError("webhook URL must be http://host/... or https://host/...", shown_url(url))
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _basic_auth(url: str) -> dict[str, str]:
    parts = urlsplit(url)
    if parts.username is None:
        return {}
    user_pass = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
    return {"Authorization": "Basic " + base64.b64encode(user_pass.encode()).decode()}


def _retry_after(value: str | None) -> float:
    try:
        return max(float(value), 0.0) if value else 0.0
    except ValueError:  # an HTTP date: not worth parsing
        return 0.0
