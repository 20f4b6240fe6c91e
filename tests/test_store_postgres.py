"""The events database on a real PostgreSQL server (tests/pg_server.py, Debian's package): a
server stopped and started mid-run loses no event, reads from many threads while one writes,
a bad URL, a refused connection, a wrong password, a missing database or psycopg: one line
naming the database and never its password; a real ``vidcls serve`` whose config's
``events_db`` names the server keeps its cameras' events there and lists them. The behaviour
both backends share is checked on both in test_store.py."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time

import httpx
import pytest
from conftest import MODELS, needs_shared, video
from pg_server import PASSWORD, needs_postgres, shared
from serve_process import ServerProcess, free_port, server_env

from vidcls import VidclsError
from vidcls.config import load_config
from vidcls.live.store_pg import PostgresStore
from vidcls.results import Segment, SegmentEvent

pytestmark = needs_postgres
NOW = 1_800_000_000.0
HANG = 600  # seconds: a hang guard for a close that writes what is queued, not a measure


def end(label: str, t: float) -> SegmentEvent:
    return SegmentEvent("end", 1.0, Segment(label, 1, 0.0, 1.0, 0.9), wall_time=t)


def test_a_server_stopped_and_started_mid_run_loses_no_event(caplog):
    pg = shared()
    url = pg.new_database()
    store = PostgresStore(url)
    events = [end("running", NOW + i) for i in range(40)]
    with caplog.at_level(logging.INFO, logger="vidcls"):
        for e in events[:10]:
            store.event("door", e)
        assert len(store.query(limit=500)) == 10
        pg.stop()  # the connections are cut; the server is away
        try:
            for e in events[10:30]:
                store.event("door", e)  # queued: the cameras are not held up
            with pytest.raises(VidclsError) as read:
                store.query()  # a read while it is away: one line naming it, no password
        finally:
            pg.start()
        for e in events[30:]:
            store.event("door", e)
        store.close(HANG)  # writes what waits, reconnecting
    said = [r.getMessage() for r in caplog.records]
    assert any("lost the events database" in m for m in said), said
    assert any("the events database is back" in m for m in said), said
    assert not any("not recorded" in m for m in said), said
    assert str(read.value).startswith(store.where + ": cannot read the events database (")
    assert PASSWORD not in str(read.value) + " ".join(said)
    again = PostgresStore(url)
    try:
        rows = again.query(limit=500)
        assert [r.event_id for r in rows] == [e.id for e in reversed(events)]  # each once, in order
    finally:
        again.close()


def test_reads_from_many_threads_while_one_writes():
    store = PostgresStore(shared().new_database())
    failures: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        try:
            while not done.is_set():
                rows = store.query(source="door", limit=500)
                assert [r.id for r in rows] == sorted((r.id for r in rows), reverse=True)
        except BaseException as e:  # noqa: BLE001 - reported by the test
            failures.append(e)

    readers = [threading.Thread(target=read) for _ in range(4)]
    for t in readers:
        t.start()
    try:
        for i in range(300):
            store.event("door" if i % 2 else "yard", end("walking", NOW + i))
        assert len(store.query(limit=500)) == 300
        assert store.sources() == ["door", "yard"]
    finally:
        done.set()
        for t in readers:
            t.join()
        store.close()
    assert not failures, failures


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        (lambda pg: pg.url(password="not-the-password"), "password authentication failed"),
        (lambda pg: pg.url("no_such_db"), 'database "no_such_db" does not exist'),
        (
            lambda pg: f"postgresql://vidcls:{PASSWORD}@127.0.0.1:{free_port()}/db",
            "Connection refused",
        ),
        (lambda pg: f"postgresql://vidcls:{PASSWORD}@127.0.0.1:port/db", "not a PostgreSQL URL"),
    ],
    ids=["wrong-password", "no-database", "refused", "bad-port"],
)
def test_a_database_that_cannot_be_used_is_one_line_naming_it(url, problem):
    with pytest.raises(VidclsError) as e:
        PostgresStore(url(shared()))
    text = str(e.value)
    assert problem in text and "\n" not in text and PASSWORD not in text, text
    assert text.startswith("postgresql://"), text


def test_a_table_of_that_name_that_is_not_ours_is_named():
    import psycopg

    url = shared().new_database()
    with psycopg.connect(url, autocommit=True) as other:
        other.execute("CREATE TABLE events (id serial, what text)")
    with pytest.raises(VidclsError) as e:
        PostgresStore(url)
    assert "cannot use the events database (its table events is not vidcls's" in str(e.value)


def test_without_psycopg_the_error_names_the_extra():
    code = (
        "import sys; sys.modules['psycopg'] = None\n"
        "from vidcls.live.events_db import open_events_db\n"
        "try:\n"
        "    open_events_db('postgresql://u:pw@127.0.0.1/db', '.')\n"
        "except Exception as e:\n"
        "    print(type(e).__name__, e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout == (
        "VidclsError a PostgreSQL events database needs psycopg: pip install 'vidcls[postgres]'\n"
    ), out.stdout + out.stderr


def test_a_config_checks_its_events_db(tmp_path):
    config = tmp_path / "cameras.yml"
    for value, problem in (
        ("mysql://u:pw@host/db", "mysql:// is not a database vidcls keeps events in"),
        ("postgresql://u:pw@host:notaport/db", "not a PostgreSQL URL"),
    ):
        config.write_text(f"events_db: {value}\ncameras:\n  door: {{source: door.mp4}}\n")
        with pytest.raises(VidclsError) as e:
            load_config(config)
        assert "line 1: events_db:" in str(e.value) and problem in str(e.value), str(e.value)
        assert ":pw@" not in str(e.value)
    config.write_text("events_db: ${DB_URL}\ncameras:\n  door: {source: door.mp4}\n")
    os.environ["DB_URL"] = "postgresql://u:pw@host/db"
    try:
        assert load_config(config).file.events_db == "postgresql://u:pw@host/db"
    finally:
        del os.environ["DB_URL"]


@needs_shared
def test_serve_with_a_wrong_password_exits_with_one_line(tmp_path):
    url = shared().url(password="not-the-password")
    args = ["--port", str(free_port()), "--data", str(tmp_path / "data"), "--events-db", url]
    out = subprocess.run(
        [sys.executable, "-m", "vidcls.serve", *args],
        capture_output=True,
        text=True,
        env=server_env(tmp_path / "cache", MODELS),
        stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 2, out.stderr
    line = out.stderr.strip()
    assert line.startswith("vidcls: error: postgresql://vidcls@127.0.0.1:"), line
    assert "password authentication failed" in line and "\n" not in line
    assert "not-the-password" not in out.stderr + out.stdout


@needs_shared
def test_serve_keeps_its_cameras_events_in_the_config_events_db(tmp_path):
    pg = shared()
    url = pg.new_database()
    config = tmp_path / "cameras.yml"
    config.write_text(
        f"events_db: ${{EVENTS_URL}}\nreplay: true\n"
        f"cameras:\n  rpi:\n    source: {video('carving_ice_rpi.mp4')}\n"
    )
    args = ["--config", str(config), "--data", str(tmp_path / "data"), "--log-level", "warning"]
    env = server_env(tmp_path / "cache", MODELS, EVENTS_URL=url)
    with ServerProcess(args, env, tmp_path / "server.log") as s:
        deadline = time.monotonic() + HANG  # a hang guard: the file is replayed at once
        while s.health()["cameras"] != "done":
            assert time.monotonic() < deadline, s.output()
            time.sleep(0.2)
        listed = httpx.get(s.url + "/api/events", params={"label": "carving ice"}).json()
        first = httpx.get(s.url + "/api/events", params={"limit": 1}).json()
    assert "Traceback" not in s.output() and PASSWORD not in s.output(), s.output()
    assert [(e["source"], e["label"]) for e in listed["events"]] == [("rpi", "carving ice")]
    assert not (tmp_path / "data" / "events.db").exists()  # not the data folder's file
    import psycopg

    with psycopg.connect(url) as db:
        rows = db.execute("SELECT source, label, event_id FROM events ORDER BY id").fetchall()
    assert ("rpi", "carving ice", listed["events"][0]["event_id"]) in rows
    assert first["events"][0]["id"] == max(e["id"] for e in listed["events"] + first["events"])
