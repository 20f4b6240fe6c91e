"""Signed-in browsers and failed sign-ins: :class:`SignIns` (the session cookies a server
handed out) and :class:`Attempts` (failed passwords per address and per user, for 429).

A session cookie is a random id signed with a key made when the server starts
(itsdangerous), so a forged or altered cookie is refused before any lookup, and it expires
after ``max_age``; sign-out forgets the id, and a session also ends when its user's password
or role changes or the user is removed. Sessions live in memory: a restart signs everyone out.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

COOKIE = "vidcls_session"


@dataclass
class Session:
    name: str
    epoch: int
    expires: float


class SignIns:
    """The sessions of one server; ``clock``: seconds, monotonic (tests pass their own)."""

    def __init__(self, max_age: float = 7 * 24 * 3600, clock: Callable[[], float] = time.monotonic):
        from itsdangerous import BadSignature, Signer

        self.max_age = max_age
        self.clock = clock
        self._signer = Signer(secrets.token_bytes(32), salt="vidcls-session")
        self._bad = BadSignature
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def start(self, name: str, epoch: int) -> str:
        """A new session of ``name``'s: the cookie's value."""
        sid = secrets.token_urlsafe(24)
        now = self.clock()
        with self._lock:
            for old in [k for k, s in self._sessions.items() if s.expires <= now]:
                del self._sessions[old]
            self._sessions[sid] = Session(name, epoch, now + self.max_age)
        return self._signer.sign(sid).decode()

    def _sid(self, cookie: str | None) -> str | None:
        """The session id a cookie's value carries, if its signature holds."""
        if not cookie:
            return None
        try:
            return self._signer.unsign(cookie.encode("latin-1", "replace")).decode()
        except (self._bad, UnicodeDecodeError):
            return None

    def find(self, cookie: str | None) -> Session | None:
        """The live session of a cookie's value, or None."""
        sid = self._sid(cookie)
        if sid is None:
            return None
        with self._lock:
            session = self._sessions.get(sid)
            if session is not None and session.expires <= self.clock():
                del self._sessions[sid]
                return None
        return session

    def end(self, cookie: str | None) -> None:
        """Sign-out: the cookie's session is forgotten."""
        sid = self._sid(cookie)
        if sid is not None:
            with self._lock:
                self._sessions.pop(sid, None)


class Attempts:
    """Failed sign-ins in the last ``period`` seconds: past ``per_address`` from one address
    or ``per_user`` for one name, more tries wait (a 429 with Retry-After). The per-user
    limit is higher, so a user can still sign in from elsewhere while one address is shut
    out; it slows a guess spread over many addresses."""

    def __init__(
        self,
        per_address: int = 5,
        per_user: int = 10,
        period: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = {"address": per_address, "user": per_user}
        self.period = period
        self.clock = clock
        self._failed: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        times = self._failed.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.period:
            times.popleft()
        if not times:
            del self._failed[key]
        return times

    def wait(self, address: str, user: str) -> int:
        """Seconds before ``address`` may try ``user`` again (0: now)."""
        now = self.clock()
        longest = 0.0
        with self._lock:
            for kind, value in (("address", address), ("user", user)):
                times = self._recent((kind, value), now)
                if len(times) >= self.limits[kind]:
                    longest = max(longest, times[-self.limits[kind]] + self.period - now)
        return math.ceil(longest) if longest > 0 else 0

    def failed(self, address: str, user: str) -> None:
        """Count a wrong password."""
        now = self.clock()
        with self._lock:
            if len(self._failed) > 100_000:  # a flood of names: forget the oldest
                self._failed.clear()
            for key in (("address", address), ("user", user)):
                times = self._failed.setdefault(key, deque())
                times.append(now)
                while len(times) > max(self.limits.values()):
                    times.popleft()
