"""The events database: what a finished event records, filters and pages, a restart, a
SIGKILL while writing, and files that are not databases or are locked."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
import time

import pytest

from vidcls import VidclsError
from vidcls.live.sources import FeedName
from vidcls.live.store import EventStore
from vidcls.results import Segment, SegmentEvent

NOW = 1_800_000_000.0


def end(label: str, start: float, stop: float, decided: float, **files) -> SegmentEvent:
    return SegmentEvent("end", decided, Segment(label, 1, start, stop, 0.9), **files)


def test_an_end_is_a_row_with_wall_clock_times_and_its_files(tmp_path):
    store = EventStore(tmp_path / "events.db", clock=lambda: NOW)
    store.event("door", SegmentEvent("start", 1.0, Segment("running", 1, 0.5, 1.0, 0.6)))
    store.event("door", end("running", 10.0, 14.0, 15.0, clip="/c/a.mp4", snapshot="/c/a.jpg"))
    store.event(FeedName("yard", "pool"), end("swimming", 2.0, 3.0, 3.0))
    pool, door = store.query()  # newest first; the start made no row
    assert (door.source, door.zone, door.label) == ("door", None, "running")
    assert (door.start, door.end) == (NOW - 5.0, NOW - 1.0)  # decided at 15 s, "now"
    assert (door.clip, door.snapshot, door.peak) == ("/c/a.mp4", "/c/a.jpg", 0.9)
    assert (pool.source, pool.zone, pool.clip) == ("yard", "pool", None)


def test_filters_and_pages(tmp_path):
    t = [NOW]
    store = EventStore(tmp_path / "events.db", clock=lambda: t[0])
    for i in range(12):
        t[0] = NOW + 100 * i
        store.event("door" if i % 2 else "yard", end("walking" if i % 3 else "running", 0, 1, 1))
    assert [e.id for e in store.query(limit=5)] == [12, 11, 10, 9, 8]
    assert [e.id for e in store.query(limit=5, before=8)] == [7, 6, 5, 4, 3]
    assert {e.source for e in store.query(source="door")} == {"door"}
    assert [e.id for e in store.query(label="running")] == [10, 7, 4, 1]
    assert [e.id for e in store.query(since=NOW + 850, until=NOW + 1050)] == [11, 10]
    assert store.sources() == ["door", "yard"]
    assert len(store.query(limit=10_000)) == 12  # capped at 500, here all


def test_events_survive_a_restart(tmp_path):
    store = EventStore(tmp_path / "events.db")
    store.event("door", end("running", 0, 1, 1))
    store.close()
    again = EventStore(tmp_path / "events.db")
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
