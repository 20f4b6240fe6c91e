"""Every finished event in an SQLite database, for the events page and ``GET /api/events``.

:class:`EventStore` is an :class:`~.outputs.Output`: each segment's end is one row (source,
zone, label, start and end as wall-clock times, peak score, clip and snapshot paths),
committed at once, so the events survive a restart or a crash (SQLite's journal keeps the file
readable after a SIGKILL). A file that is not an SQLite database, or one another process keeps
locked, is a :class:`~vidcls.errors.VidclsError` naming it, never a crash.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import VidclsError
from ..results import SegmentEvent
from .outputs import Output

log = logging.getLogger("vidcls")
SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    zone TEXT,
    label TEXT NOT NULL,
    start REAL NOT NULL,
    end REAL NOT NULL,
    peak REAL NOT NULL,
    clip TEXT,
    snapshot TEXT
);
CREATE INDEX IF NOT EXISTS events_start ON events (start);
"""
MAX_LIMIT = 500


@dataclass(frozen=True)
class StoredEvent:
    """One finished event; ``start`` and ``end`` in seconds since the epoch."""

    id: int
    source: str
    zone: str | None
    label: str
    start: float
    end: float
    peak: float
    clip: str | None
    snapshot: str | None


class EventStore(Output):
    """The events database at ``path`` (made if missing); thread-safe."""

    def __init__(self, path: str | os.PathLike, clock=time.time) -> None:
        self.path, self.clock = Path(path), clock
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=2.0, check_same_thread=False)
            self._db.executescript(SCHEMA)
            self._db.execute("PRAGMA journal_mode=WAL")
        except (sqlite3.Error, OSError) as e:
            raise VidclsError(f"cannot open the events database ({_why(e)})", self.path) from None

    def event(self, source: str, event: SegmentEvent) -> None:
        if event.kind != "end":
            return
        s = event.segment
        now = self.clock()  # the event was decided now, at event.time on the source's clock
        row = (
            getattr(source, "source", source),
            getattr(source, "zone", None),
            s.label,
            now - (event.time - s.start),
            now - (event.time - s.end),
            round(s.peak, 6),
            event.clip,
            event.snapshot,
        )
        try:
            with self._lock, self._db:
                self._db.execute(
                    "INSERT INTO events (source, zone, label, start, end, peak, clip, snapshot)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    row,
                )
        except sqlite3.Error as e:  # a full disk or a locked file: the event still went out
            log.warning("cannot record an event in %s (%s)", self.path, _why(e))

    def query(
        self,
        *,
        source: str | None = None,
        label: str | None = None,
        since: float | None = None,
        until: float | None = None,
        before: int | None = None,
        limit: int = 50,
    ) -> list[StoredEvent]:
        """Events newest first: of ``source`` and ``label`` if given, starting at or after
        ``since`` and before ``until``, with ids below ``before`` (the next page), at most
        ``limit`` (up to 500)."""
        where, args = [], []
        for column, op, value in (
            ("source", "=", source),
            ("label", "=", label),
            ("start", ">=", since),
            ("start", "<", until),
            ("id", "<", before),
        ):
            if value is not None:
                where.append(f"{column} {op} ?")
                args.append(value)
        sql = "SELECT * FROM events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(max(1, min(limit, MAX_LIMIT)))
        try:
            with self._lock:
                rows = self._db.execute(sql, args).fetchall()
        except sqlite3.Error as e:
            raise VidclsError(f"cannot read the events database ({_why(e)})", self.path) from None
        return [StoredEvent(*row) for row in rows]

    def sources(self) -> list[str]:
        """The sources that have events."""
        with self._lock:
            rows = self._db.execute("SELECT DISTINCT source FROM events ORDER BY source")
            return [r[0] for r in rows]

    def close(self, timeout: float = 5.0) -> None:
        with self._lock:
            self._db.close()


def _why(e: Exception) -> str:
    text = str(e) or type(e).__name__
    if "not a database" in text or "malformed" in text:
        return "not an SQLite database, or a damaged one; move it away to start a new one"
    if "locked" in text:
        return "locked by another process"
    return text
