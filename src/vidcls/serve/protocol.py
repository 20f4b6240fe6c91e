"""uvicorn's HTTP/1.1 protocol with a header deadline and a bound on open connections.

uvicorn has no request-header timeout: its keep-alive timer is cancelled by any byte, so a
client sending one header byte every few seconds holds its connection (and a file descriptor)
forever, and it accepts every connection. :func:`guarded_protocol` makes a subclass of its
``H11Protocol`` that closes a connection which has not sent a complete request head within
``header_timeout`` seconds of being made (on a keep-alive connection, of the previous response
ending; the rest of a body the app answered without reading counts too), and closes new
connections at once, before reading anything, while ``max_connections`` are open (WebSocket
streams included). Requests being answered, response streams and WebSocket streams have no
deadline here.

Why this and not another server: hypercorn and granian (which have header timeouts) are not in
this project's package index, and uvicorn's ``limit_concurrency`` answers 503 only after a
request is parsed. ``vidcls bench --slow-headers`` measures this protocol against plain uvicorn
(h11, and httptools when installed) in the same run. Over TLS the handshake comes before
``connection_made``; asyncio bounds it (60 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("uvicorn.error")
WARN_EVERY = 60.0  # seconds between warnings that connections are refused


class GuardedH11Protocol(H11Protocol):
    """``H11Protocol`` closing connections slow to send request headers, and connections past
    the bound; :func:`guarded_protocol` sets the limits."""

    header_timeout: float = 5.0
    max_connections: int = 512
    _warned: float = -WARN_EVERY  # when the last refusal was logged, shared per class

    _header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            self._warn_refused()
            transport.close()
            return
        self._follow_state()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        self._follow_state()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow_state()

    def _owes(self) -> bool:
        """Whether nothing is being answered and the client owes a request head (or the rest
        of a body the app did not wait for)."""
        their, ours = self.conn.their_state, self.conn.our_state
        return (
            (their is h11.IDLE or (their is h11.SEND_BODY and ours is h11.DONE))
            and self.transport.get_protocol() is self
            and not self.transport.is_closing()
        )

    def _follow_state(self) -> None:
        """A deadline runs while the client owes, from when it began to owe."""
        if not self._owes():
            self._cancel_deadline()
        elif self._header_deadline is None:
            self._header_deadline = self.loop.call_later(self.header_timeout, self._expire)

    def _cancel_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _expire(self) -> None:
        self._header_deadline = None
        if not self._owes():
            return
        with contextlib.suppress(h11.LocalProtocolError):
            self.conn.send(h11.ConnectionClosed())
        self.transport.close()

    def _warn_refused(self) -> None:
        cls, now = type(self), time.monotonic()
        if now - cls._warned >= WARN_EVERY:
            cls._warned = now
            log.warning(
                "%d connections open (max_connections): closing new ones until some end",
                self.max_connections,
            )


def guarded_protocol(header_timeout: float, max_connections: int) -> type[GuardedH11Protocol]:
    """A :class:`GuardedH11Protocol` class with these limits, for ``uvicorn.run(http=...)``."""
    return type(
        "GuardedH11Protocol",
        (GuardedH11Protocol,),
        {"header_timeout": header_timeout, "max_connections": max_connections},
    )
