"""Every finished event in an SQLite database, for the events page and ``GET /api/events``.

:class:`EventStore` is an :class:`~.outputs.Output`: each segment's end is one row (source,
zone, label, start and end as wall-clock times, peak score, clip and snapshot paths, the
event's id and its document as :func:`vidcls.events.event_doc` made it for every other
output), committed at once, so the events survive a restart or a crash (SQLite's journal
keeps the file readable after a SIGKILL). An event already stored (the same id delivered
again) is not stored twice. A database written before events had ids gains them when opened:
each old row gets an id made from its end time and row number, and a document made from its
row (no class index: -1; its ``time`` counts seconds since 1970). A file that is not an SQLite
database, or one another process keeps locked, is a :class:`~vidcls.errors.VidclsError`
naming it, never a crash.

:class:`Store` is what both backends share (the row an event makes, the queries); the other
backend, PostgreSQL, is :class:`vidcls.live.store_pg.PostgresStore`, and
:func:`vidcls.live.events_db.open_events_db` opens whichever a config names.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import VidclsError
from ..events import event_doc, segment_span
from ..ids import id_from
from ..results import Segment, SegmentEvent
from ..writers import dumps
from .outputs import Output
from .sources import FeedName

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
    snapshot TEXT,
    event_id TEXT,
    doc TEXT
);
CREATE INDEX IF NOT EXISTS events_start ON events (start);
"""
ADDED = ("event_id", "doc")  # columns a database of the first version lacks
UNIQUE_IDS = "CREATE UNIQUE INDEX IF NOT EXISTS events_event_id ON events (event_id)"
COLUMNS = 'id, source, zone, label, start, "end", peak, clip, snapshot, event_id, doc'
MAX_LIMIT = 500


@dataclass(frozen=True)
class StoredEvent:
    """One finished event; ``start`` and ``end`` in seconds since the epoch, ``doc`` its
    :func:`~vidcls.events.event_doc`."""

    id: int
    source: str
    zone: str | None
    label: str
    start: float
    end: float
    peak: float
    clip: str | None
    snapshot: str | None
    event_id: str = ""
    doc: dict = field(default_factory=dict, repr=False)


class Store(Output):
    """An events database: each end event one row (a repeat of an id stored once), read back
    newest first. A backend says how a row is written (``_insert``) and rows are read
    (``_select``, with ``MARK`` as the parameter mark); ``where`` names it in messages."""

    MARK = "?"
    where = ""

    def event(self, source: str, event: SegmentEvent) -> None:
        if event.kind == "end":
            self._insert(event_row(source, event))

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
                where.append(f"{column} {op} {self.MARK}")
                args.append(value)
        sql = f"SELECT {COLUMNS} FROM events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY id DESC LIMIT {self.MARK}"
        args.append(max(1, min(limit, MAX_LIMIT)))
        return [StoredEvent(*row[:-1], json.loads(row[-1])) for row in self._select(sql, args)]

    def sources(self) -> list[str]:
        """The sources that have events."""
        return [r[0] for r in self._select("SELECT DISTINCT source FROM events ORDER BY source")]

    def _insert(self, row: tuple) -> None:
        raise NotImplementedError

    def _select(self, sql: str, args: list | tuple = ()) -> list[tuple]:
        raise NotImplementedError


def event_row(source: str, event: SegmentEvent) -> tuple:
    """The row an end event makes: every column but ``id``, in :data:`COLUMNS`' order."""
    s = event.segment
    start, end = segment_span(event)
    return (
        getattr(source, "source", source),
        getattr(source, "zone", None),
        s.label,
        start,
        end,
        round(s.peak, 6),
        event.clip,
        event.snapshot,
        event.id,
        dumps(event_doc(source, event)),
    )


class EventStore(Store):
    """The SQLite events database at ``path`` (made if missing, brought up to date);
    thread-safe."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.where = str(self.path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=2.0, check_same_thread=False)
            self._db.executescript(SCHEMA)
            self._db.execute("PRAGMA journal_mode=WAL")
            _migrate(self._db)
        except (sqlite3.Error, OSError) as e:
            raise VidclsError(f"cannot open the events database ({_why(e)})", self.path) from None

    def _insert(self, row: tuple) -> None:
        try:
            with self._lock, self._db:
                self._db.execute(
                    f"INSERT INTO events ({COLUMNS.partition(', ')[2]})"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (event_id) DO NOTHING",  # delivered again: stored once
                    row,
                )
        except sqlite3.Error as e:  # a full disk or a locked file: the event still went out
            log.warning("cannot record an event in %s (%s)", self.path, _why(e))

    def _select(self, sql: str, args: list | tuple = ()) -> list[tuple]:
        try:
            with self._lock:
                return self._db.execute(sql, args).fetchall()
        except sqlite3.Error as e:
            raise VidclsError(f"cannot read the events database ({_why(e)})", self.path) from None

    def close(self, timeout: float = 5.0) -> None:
        with self._lock:
            self._db.close()


def _migrate(db: sqlite3.Connection) -> None:
    """Bring a database of an earlier version up to date: the columns it lacks, an id and a
    document for each row without them, the index that keeps ids unique."""
    if _current(db):
        return
    with db:
        db.execute("BEGIN IMMEDIATE")  # one process migrates; the others wait, then see it
        have = {row[1] for row in db.execute("PRAGMA table_info(events)")}
        for column in ADDED:
            if column not in have:
                db.execute(f"ALTER TABLE events ADD COLUMN {column} TEXT")
        old = db.execute(
            'SELECT id, source, zone, label, start, "end", peak, clip, snapshot FROM events'
            " WHERE event_id IS NULL"
        ).fetchall()
        db.executemany("UPDATE events SET event_id = ?, doc = ? WHERE id = ?", map(_dated, old))
        db.execute(UNIQUE_IDS)


def _current(db: sqlite3.Connection) -> bool:
    """Whether the database is up to date (checked without taking the write lock)."""
    have = {row[1] for row in db.execute("PRAGMA table_info(events)")}
    indexes = {row[1] for row in db.execute("PRAGMA index_list(events)")}
    if not have.issuperset(ADDED) or "events_event_id" not in indexes:
        return False
    return db.execute("SELECT 1 FROM events WHERE event_id IS NULL LIMIT 1").fetchone() is None


def _dated(row: tuple) -> tuple[str, str, int]:
    """An old row's id and document, made from the row."""
    number, source, zone, label, start, end, peak, clip, snapshot = row
    event = SegmentEvent(
        "end",
        end,
        Segment(label, -1, start, end, peak),
        clip,
        snapshot,
        id=id_from(end, number),
        wall_time=end,
    )
    view = source if zone is None else FeedName(source, zone)
    return event.id, dumps(event_doc(view, event)), number


def _why(e: Exception) -> str:
    text = str(e) or type(e).__name__
    if "not a database" in text or "malformed" in text:
        return "not an SQLite database, or a damaged one; move it away to start a new one"
    if "locked" in text:
        return "locked by another process"
    return text
