"""The events database: what a finished event records (its id and document), filters and
pages, a repeat stored once and a restart, on both backends (an SQLite file, and a real
PostgreSQL server: tests/pg_server.py); on SQLite, a database of the version before ids, a
SIGKILL while writing, and files that are not databases or are locked. PostgreSQL's own cases
(a server restarted mid-run, bad URLs, a wrong password) are in test_store_postgres.py."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
import time

import pytest
from pg_server import needs_postgres, shared

from vidcls import VidclsError
from vidcls.events import event_doc
from vidcls.ids import id_time
from vidcls.live.sources import FeedName
from vidcls.live.store import EventStore
from vidcls.results import Segment, SegmentEvent

NOW = 1_800_000_000.0


def end(label: str, start: float, stop: float, decided: float, **files) -> SegmentEvent:
    return SegmentEvent("end", decided, Segment(label, 1, start, stop, 0.9), **files)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=needs_postgres)])
def opener(request, tmp_path):
    """Opens the test's events database (the same one each call) on either backend; every
    store it opened is closed after the test."""
    where = str(tmp_path / "events.db") if request.param == "sqlite" else shared().new_database()
    opened = []

    def open_store():
        from vidcls.live.events_db import open_events_db

        opened.append(open_events_db(where, tmp_path))
        return opened[-1]

    yield open_store
    for store in opened:
        store.close()


def test_an_end_is_a_row_with_wall_clock_times_and_its_files(opener):
    store = opener()
    store.event("door", SegmentEvent("start", 1.0, Segment("running", 1, 0.5, 1.0, 0.6)))
    files = {"clip": "/c/a.mp4", "snapshot": "/c/a.jpg"}
    store.event("door", end("running", 10.0, 14.0, 15.0, wall_time=NOW, **files))
    store.event(FeedName("yard", "pool"), end("swimming", 2.0, 3.0, 3.0, wall_time=NOW))
    pool, door = store.query()  # newest first; the start made no row
    assert (door.source, door.zone, door.label) == ("door", None, "running")
    assert (door.start, door.end) == (NOW - 5.0, NOW - 1.0)  # decided at 15 s, "now"
    assert (door.clip, door.snapshot, door.peak) == ("/c/a.mp4", "/c/a.jpg", 0.9)
    assert (pool.source, pool.zone, pool.clip) == ("yard", "pool", None)


def test_a_row_keeps_the_events_id_and_document_and_a_repeat_is_stored_once(opener):
    store = opener()
    first = end("running", 10.0, 14.0, 15.0, wall_time=NOW, start_id="s1", interrupted=True)
    store.event(FeedName("yard", "pool"), first)
    store.event(FeedName("yard", "pool"), first)  # delivered again (a retry, another path)
    other = end("running", 10.0, 14.0, 15.0, wall_time=NOW)  # the same but another event
    store.event("door", other)
    door, pool = store.query()  # the repeat made no row
    assert (pool.event_id, door.event_id) == (first.id, other.id) and first.id != other.id
    assert pool.doc == event_doc(FeedName("yard", "pool"), first)
    assert (pool.doc["start_id"], pool.doc["interrupted"]) == ("s1", True)
    again = opener()
    again.event(FeedName("yard", "pool"), first)  # after a restart too
    assert again.query() == [door, pool]


OLD_SCHEMA = """
CREATE TABLE events (
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
CREATE INDEX events_start ON events (start);
"""  # the schema of the version before event ids, as it made events.db


def test_a_database_of_the_version_before_ids_gains_them(tmp_path):
    path = tmp_path / "events.db"
    with sqlite3.connect(path) as old:
        old.executescript(OLD_SCHEMA)
        old.execute("PRAGMA journal_mode=WAL")
        row = "INSERT INTO events (source, zone, label, start, end, peak, clip, snapshot)"
        old.execute(
            row + " VALUES (?,?,?,?,?,?,?,?)",
            ("door", None, "running", NOW, NOW + 4, 0.9, "/c/a.mp4", None),
        )
        old.execute(
            row + " VALUES (?,?,?,?,?,?,?,?)",
            ("yard", "pool", "swimming", NOW + 9, NOW + 10, 0.8, None, None),
        )
    old.close()
    store = EventStore(path)
    pool, door = store.query()
    assert (door.id, door.source, door.label, door.start, door.end) == (
        1,
        "door",
        "running",
        NOW,
        NOW + 4,
    )
    assert door.doc == {
        "source": "door",
        "event": "end",
        "event_id": door.event_id,
        "time": NOW + 4,  # an old row's clock is the wall clock
        "wall_time": "2027-01-15T08:00:04.000Z",
        "segment": {"label": "running", "index": -1, "start": NOW, "end": NOW + 4, "peak": 0.9},
        "clip": "/c/a.mp4",
        "start_id": None,
        "interrupted": False,
    }
    assert (pool.doc["source"], pool.doc["zone"], pool.doc["segment"]["label"]) == (
        "yard",
        "pool",
        "swimming",
    )
    assert door.event_id < pool.event_id  # made from their end times: in time order
    assert id_time(door.event_id) == NOW + 4 and id_time(pool.event_id) == NOW + 10
    store.close()
    reopened = EventStore(path)  # the same ids again: nothing left to migrate
    assert [r.event_id for r in reopened.query()] == [pool.event_id, door.event_id]
    new = end("walking", 0, 1, 1, wall_time=NOW + 20)
    reopened.event("door", new)
    reopened.event("door", new)
    assert [r.event_id for r in reopened.query()] == [new.id, pool.event_id, door.event_id]


def test_filters_and_pages(opener):
    t = [NOW]
    store = opener()
    for i in range(12):
        t[0] = NOW + 100 * i
        label = "walking" if i % 3 else "running"
        store.event("door" if i % 2 else "yard", end(label, 0, 1, 1, wall_time=t[0]))
    assert [e.id for e in store.query(limit=5)] == [12, 11, 10, 9, 8]
    assert [e.id for e in store.query(limit=5, before=8)] == [7, 6, 5, 4, 3]
    assert {e.source for e in store.query(source="door")} == {"door"}
    assert [e.id for e in store.query(label="running")] == [10, 7, 4, 1]
    assert [e.id for e in store.query(since=NOW + 850, until=NOW + 1050)] == [11, 10]
    assert store.sources() == ["door", "yard"]
    assert len(store.query(limit=10_000)) == 12  # capped at 500, here all


def test_events_survive_a_restart(opener):
    store = opener()
    store.event("door", end("running", 0, 1, 1))
    store.close()
    again = opener()
    assert [e.label for e in again.query()] == ["running"]


def test_a_sigkill_while_writing_leaves_a_readable_database(tmp_path):
    path = tmp_path / "events.db"
    script = f"""
from vidcls.live.store import EventStore
from vidcls.results import Segment, SegmentEvent
store = EventStore({str(path)!r})
i = 0
while True:
    store.event("door", SegmentEvent("end", 1.0, Segment("running", 1, 0.0, 1.0, 0.5)))
    i += 1
    if i == 50:
        print("writing", flush=True)
"""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "writing\n"
    time.sleep(0.2)
    proc.kill()
    proc.wait()
    rows = EventStore(path).query(limit=500)
    assert len(rows) >= 50 and all(r.label == "running" for r in rows)
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path):
    bad = tmp_path / "events.db"
    bad.write_bytes(b"this is not SQLite, " * 100)
    with pytest.raises(VidclsError) as e:
        EventStore(bad)
    assert str(e.value).startswith(f"{bad}: ") and "not an SQLite database" in str(e.value)


def test_a_locked_database_costs_the_row_not_the_run(tmp_path, caplog):
    path = tmp_path / "events.db"
    store = EventStore(path)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another process holds it
    try:
        store._db.execute("PRAGMA busy_timeout = 100")
        with caplog.at_level(logging.WARNING, logger="vidcls"):
            store.event("door", end("running", 0, 1, 1))
        assert any("locked by another process" in r.getMessage() for r in caplog.records)
        assert store.query() == []  # readers are not blocked (write-ahead log)
    finally:
        other.execute("ROLLBACK")
    store.event("door", end("running", 0, 1, 1))
    assert len(store.query()) == 1
