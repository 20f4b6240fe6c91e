"""Event sinks against real servers: a mosquitto broker started here, and a local HTTP server."""

from __future__ import annotations

import argparse
import base64
import datetime
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from vidcls.cli.flags import add_sinks, sinks_of
from vidcls.errors import VidclsError
from vidcls.events import event_doc
from vidcls.results import Segment, SegmentEvent
from vidcls.sinks import MqttSink, WebhookSink, close_all, parse_url, topic_level

ROOT = Path(__file__).resolve().parents[1]
MOSQUITTO = shutil.which("mosquitto") or (
    "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").is_file() else None
)


HANG = (
    60.0  # seconds: a guard only a call blocked for good (on a network that never answers) reaches
)


def returns(call) -> float:
    """Seconds ``call()`` took on a thread of its own; it must return (within HANG: a call
    that blocked on the network would otherwise hang the suite). How soon is the machine's
    speed, so only lower bounds are asserted on it."""
    done, failed = threading.Event(), []

    def run() -> None:
        try:
            call()
        except BaseException as e:  # noqa: BLE001 - raised again on the test's thread
            failed.append(e)
        done.set()

    t0 = time.monotonic()
    threading.Thread(target=run, daemon=True).start()
    assert done.wait(HANG), f"{call} blocked"
    if failed:
        raise failed[0]
    return time.monotonic() - t0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def events(label: str = "running", start: float = 2.0) -> tuple[SegmentEvent, SegmentEvent]:
    seg = Segment(label, 3, start - 1.0, start, 0.8)
    first = SegmentEvent("start", start, seg)
    return first, SegmentEvent("end", start + 1.5, seg, start_id=first.id)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    """Loopback servers are reached directly even where a proxy is configured."""
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")


# -- MQTT ------------------------------------------------------------------------------------


class Mosquitto:
    """A real mosquitto broker on a loopback port."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder, self.port, self.proc = folder, port, None
        self.url = f"mqtt://127.0.0.1:{port}"

    def start(self) -> None:
        conf = self.folder / "mosquitto.conf"
        conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n")
        self.log = open(self.folder / "mosquitto.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stderr=self.log)
        deadline = time.monotonic() + HANG
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        self.stop()
        pytest.fail(f"mosquitto did not start: {(self.folder / 'mosquitto.log').read_text()}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(5)
            self.log.close()


def needs_mosquitto() -> None:
    if MOSQUITTO is None:
        pytest.skip("mosquitto is not installed (Debian: apt-get install mosquitto)")


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    needs_mosquitto()
    b = Mosquitto(tmp_path_factory.mktemp("mosquitto"), free_port())
    b.start()
    yield b
    b.stop()


class Listener:
    """A paho client subscribed to ``topic``, recording ``(topic, text, retained)``."""

    def __init__(self, port: int, topic: str) -> None:
        self.messages: list[tuple[str, str, bool]] = []
        self.cond = threading.Condition()
        subscribed = threading.Event()
        self.client = c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        c.on_message = self._on_message
        c.on_subscribe = lambda *args: subscribed.set()
        c.connect("127.0.0.1", port)
        c.subscribe(topic, qos=1)
        c.loop_start()
        assert subscribed.wait(HANG), f"could not subscribe to {topic}"

    def _on_message(self, client, userdata, m) -> None:
        with self.cond:
            try:
                text = m.payload.decode()
            except UnicodeDecodeError:  # a snapshot: JPEG bytes
                text = bytes(m.payload)
            self.messages.append((m.topic, text, bool(m.retain)))
            self.cond.notify_all()

    def wait_for(self, topic: str, text: str | None = None, timeout: float = HANG) -> list:
        """Every message so far, once one on ``topic`` (with ``text``) has arrived."""

        def seen() -> bool:
            return any(t == topic and text in (None, x) for t, x, _ in self.messages)

        with self.cond:
            assert self.cond.wait_for(seen, timeout), f"no {topic} {text}: {self.messages}"
            return list(self.messages)

    def on(self, topic: str) -> list[str]:
        with self.cond:
            return [x for t, x, _ in self.messages if t == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def retained(port: int, topic: str) -> str:
    """What a new subscriber to ``topic`` gets at once: its retained message."""
    new = Listener(port, topic)
    try:
        (message,) = new.wait_for(topic)
        assert message[2], f"{message} is not retained"
        return message[1]
    finally:
        new.close()


def test_mqtt_events_and_the_retained_current_action(broker):
    sink = MqttSink(broker.url, prefix="t1")
    watch = Listener(broker.port, "t1/#")
    start, end = events("running")
    source, level = "Front door/cam +1", "Front_door_cam_1"
    sink.event(source, start)
    watch.wait_for(f"t1/{level}/action", "running")
    assert retained(broker.port, f"t1/{level}/action") == "running"
    sink.event(source, end)
    watch.wait_for(f"t1/{level}/action", "none")
    assert retained(broker.port, f"t1/{level}/action") == "none"
    docs = [json.loads(x) for x in watch.on(f"t1/{level}/event")]
    assert [(d["source"], d["event"], d["time"]) for d in docs] == [
        (source, "start", 2.0),
        (source, "end", 3.5),
    ]
    assert docs[1]["segment"] == start.segment.to_dict()
    assert [d["event_id"] for d in docs] == [start.id, end.id]  # the ids the events were made with
    assert (docs[1]["start_id"], docs[1]["interrupted"]) == (start.id, False)
    assert docs[1] == event_doc(source, end)  # the one shape
    assert watch.on(f"t1/{level}/status") == ["online"]  # implied by the first event
    assert retained(broker.port, "t1/status") == "online"
    sink.close(2)
    watch.wait_for("t1/status", "offline")
    assert watch.on(f"t1/{level}/status")[-1] == "offline"
    assert retained(broker.port, "t1/status") == "offline"
    assert (sink.dropped, sink.failed) == (0, 0) and sink.sent >= 8
    watch.close()


def test_mqtt_publishes_the_end_events_snapshot_retained_and_its_paths(broker, tmp_path):
    import dataclasses

    import cv2
    import numpy as np

    jpeg = tmp_path / "door.jpg"
    ok, data = cv2.imencode(".jpg", np.full((48, 64, 3), 200, np.uint8))
    jpeg.write_bytes(data.tobytes())
    sink = MqttSink(broker.url, prefix="t5")
    watch = Listener(broker.port, "t5/#")
    start, end = events("running")
    end = dataclasses.replace(end, clip=str(tmp_path / "door.mp4"), snapshot=str(jpeg))
    sink.event("door", start)
    sink.event("door", end)
    watch.wait_for("t5/door/snapshot")
    assert watch.on("t5/door/snapshot") == [jpeg.read_bytes()]
    assert retained(broker.port, "t5/door/snapshot") == jpeg.read_bytes()
    doc = json.loads(watch.on("t5/door/event")[-1])
    assert (doc["clip"], doc["snapshot"]) == (str(tmp_path / "door.mp4"), str(jpeg))
    assert "clip" not in json.loads(watch.on("t5/door/event")[0])
    sink.close(2)
    watch.close()


def test_mqtt_source_status_and_home_assistant_discovery(broker):
    sink = MqttSink(broker.url + "/home/t2", discovery=True)  # the URL's path is the prefix
    watch = Listener(broker.port, "#")
    sink.status("cam2", True)
    watch.wait_for("home/t2/cam2/status", "online")
    sink.status("cam2", False)
    watch.wait_for("home/t2/cam2/status", "offline")
    assert retained(broker.port, "home/t2/cam2/status") == "offline"
    (config,) = watch.on("homeassistant/sensor/home_t2_cam2/config")  # announced once
    config = json.loads(config)
    assert config["state_topic"] == "home/t2/cam2/action"
    assert [a["topic"] for a in config["availability"]] == ["home/t2/status", "home/t2/cam2/status"]
    sink.close(2)
    sink.close(2)  # idempotent
    watch.close()


def test_mqtt_last_will_when_the_process_dies(broker):
    watch = Listener(broker.port, "t3/status")
    code = (
        "import sys, time\n"
        "from vidcls.sinks import MqttSink\n"
        "MqttSink(sys.argv[1], prefix='t3')\n"
        "time.sleep(30)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen([sys.executable, "-c", code, broker.url], env=env)
    try:
        watch.wait_for("t3/status", "online")
    finally:
        proc.kill()
        proc.wait()
    watch.wait_for("t3/status", "offline")  # the broker's last will, no goodbye from vidcls
    watch.close()


def test_mqtt_events_wait_in_paho_queue_while_the_broker_is_down(tmp_path):
    needs_mosquitto()
    down = Mosquitto(tmp_path, free_port())
    sink = MqttSink(down.url, prefix="t4", reconnect=(0.75, 0.75))
    sent = [*events("running", 2.0), *events("jumping", 5.0)[:1]]
    # Queued, never waiting for the broker: one that waited would wait for good, as the
    # broker only starts once they have all returned.
    took = [returns(lambda e=e: sink.event("cam", e)) for e in sent]
    print(f"event() with the broker down: max {max(took) * 1000:.2f} ms")
    down.start()
    try:
        watch = Listener(down.port, "t4/#")
        assert not sink.connected, "the sink reconnected before the test subscribed"
        watch.wait_for("t4/cam/action", "jumping")
        docs = [json.loads(x) for x in watch.on("t4/cam/event")]
        assert [(d["event"], d["segment"]["label"]) for d in docs] == [
            ("start", "running"),
            ("end", "running"),
            ("start", "jumping"),
        ]
        assert retained(down.port, "t4/cam/action") == "jumping"
        sink.close(2)
        watch.close()
    finally:
        down.stop()


def test_mqtt_close_without_a_broker_keeps_its_timeout():
    sink = MqttSink(f"mqtt://127.0.0.1:{free_port()}", prefix="t5")
    sink.event("cam", events()[0])
    took = returns(lambda: sink.close(0.3))  # without its timeout it would wait for good
    assert took >= 0.3, took  # it waited for delivery that long, no less
    assert sink.dropped >= 3  # status, event, action (and vidcls' offline) never went


@pytest.mark.parametrize(
    ("source", "level"),
    [
        ("kitchen", "kitchen"),
        ("Front door", "Front_door"),
        ("a/b+c#d", "a_b_c_d"),
        ("rtsp://admin:secret@cam.local:554/live/ch1", "cam.local_554_live_ch1"),
        ("/videos/gym.mp4", "videos_gym.mp4"),
        ("///", "_"),
    ],
)
def test_source_names_become_one_readable_topic_level(source, level):
    assert topic_level(source) == level


def test_mqtt_urls():
    b = parse_url("mqtts://user:p%40ss@broker.lan")
    assert (b.host, b.port, b.tls, b.username, b.password, b.prefix) == (
        "broker.lan",
        8883,
        True,
        "user",
        "p@ss",
        "vidcls",
    )
    assert parse_url("mqtt://h:1884/site/", "x").prefix == "site"
    bad_urls = ("http://h", "mqtt://", "mqtt://h:port", "mqtt://h/a+b", "mqtt://h/#", "broker:1883")
    for bad in bad_urls:
        with pytest.raises(VidclsError, match="MQTT"):
            parse_url(bad)
    with pytest.raises(VidclsError) as e:
        MqttSink("tcp://me:secret@h")
    assert "tcp://me:***@h" in str(e.value) and "secret" not in str(e.value)


def test_mqtt_without_paho_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "paho.mqtt.client", None)
    with pytest.raises(VidclsError, match=r"pip install 'vidcls\[mqtt\]'"):
        MqttSink("mqtt://127.0.0.1")


# -- webhook ---------------------------------------------------------------------------------


class _Hook(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        srv = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with srv.cond:
            srv.requests.append((self.path, dict(self.headers), body))
            code = srv.answers.pop(0) if srv.answers else 200
            srv.cond.notify_all()
        srv.hold.wait(10)
        self.send_response(code)
        if 300 <= code < 400:
            self.send_header("Location", "/elsewhere")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST  # a redirected POST would arrive as a GET without a body

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def hook():
    """A local HTTP server recording POSTs; ``answers`` are its status codes (then 200)."""
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    srv.requests, srv.answers, srv.cond = [], [], threading.Condition()
    srv.hold = threading.Event()
    srv.hold.set()
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True).start()
    yield srv
    srv.hold.set()
    srv.shutdown()
    srv.server_close()


def bodies(srv) -> list[dict]:
    return [json.loads(body) for _, _, body in srv.requests]


def test_webhook_posts_each_event_in_order(hook):
    url = hook.url.replace("//", "//me:p%40ss@") + "/hook?id=1"
    sink = WebhookSink(url, headers={"X-Token": "abc"})
    sent = [e for label in ("a", "b", "c") for e in events(label, len(label) * 2.0)]
    for e in sent:
        sink.event("cam 1", e)
        e.segment.end += 100  # later changes do not reach an event already queued
    sink.close(5)
    assert sink.sent == 6 and (sink.dropped, sink.failed) == (0, 0)
    docs = bodies(hook)
    assert [(d["source"], d["event"], d["segment"]["label"]) for d in docs] == [
        ("cam 1", kind, label) for label in "abc" for kind in ("start", "end")
    ]
    assert docs[0]["time"] == 2.0 and docs[0]["segment"]["end"] == 2.0
    assert [d["event_id"] for d in docs] == [e.id for e in sent]
    assert [d["start_id"] for d in docs[1::2]] == [e.id for e in sent[::2]]
    wall = datetime.datetime.fromisoformat(docs[0]["wall_time"].replace("Z", "+00:00"))
    assert abs(wall - datetime.datetime.now(datetime.timezone.utc)).total_seconds() < 60
    path, headers, _ = hook.requests[0]
    assert path == "/hook?id=1"
    assert headers["Content-Type"] == "application/json" and headers["X-Token"] == "abc"
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"me:p@ss").decode()
    assert sink.shown == url.replace("p%40ss", "***")


def test_webhook_retries_5xx_and_429_then_delivers(hook):
    hook.answers[:] = [500, 429]
    sink = WebhookSink(hook.url, backoff=0.01)
    sink.event("cam", events()[0])
    sink.close(5)
    assert len(hook.requests) == 3 and len({body for _, _, body in hook.requests}) == 1
    assert (sink.sent, sink.failed) == (1, 0)


def test_webhook_gives_up_a_400_or_a_redirect_at_once(hook, caplog):
    hook.answers[:] = [400, 302]
    sink = WebhookSink(hook.url, backoff=0.01)
    start, end = events()
    with caplog.at_level(logging.WARNING, "vidcls"):
        for e in (start, end, start):
            sink.event("cam", e)
        sink.close(5)
    assert [d["event"] for d in bodies(hook)] == ["start", "end", "start"]  # none retried
    assert (sink.sent, sink.failed) == (1, 2)
    assert "HTTP 400" in caplog.text


def test_webhook_never_blocks_on_a_server_that_does_not_answer():
    silent = socket.create_server(("127.0.0.1", 0))  # accepts connections, never replies
    try:
        for url in (
            f"http://127.0.0.1:{silent.getsockname()[1]}",
            f"http://127.0.0.1:{free_port()}",
        ):
            # A request would wait an hour for the silent server: only queueing returns.
            sink = WebhookSink(url, timeout=3600, backoff=0.05)
            for e in events():
                returns(lambda e=e, sink=sink: sink.event("cam", e))
            assert returns(lambda sink=sink: sink.close(0.3)) >= 0.3  # its timeout, not the hour
            assert sink.sent == 0 and sink.dropped >= 1
    finally:
        silent.close()


def test_webhook_full_queue_drops_the_oldest(hook):
    hook.hold.clear()
    sink = WebhookSink(hook.url, queue_size=3)
    sink.event("cam", SegmentEvent("start", 0.0, events()[0].segment))
    with hook.cond:
        assert hook.cond.wait_for(lambda: hook.requests, HANG)  # the first is on its way
    for i in range(1, 6):
        sink.event("cam", SegmentEvent("start", float(i), events()[0].segment))
    assert sink.dropped == 2
    hook.hold.set()
    sink.close(5)
    assert [d["time"] for d in bodies(hook)] == [0.0, 3.0, 4.0, 5.0]


@pytest.mark.parametrize("url", ["ftp://h/x", "localhost:8080/hook", "http://", "http://h:port/"])
def test_webhook_refuses_other_urls(url):
    with pytest.raises(VidclsError, match="webhook URL") as e:
        WebhookSink(url)
    assert url in str(e.value)


def test_sink_flags(hook):
    p = argparse.ArgumentParser()
    add_sinks(p)
    port = free_port()
    args = p.parse_args(
        ["--webhook", hook.url, "--mqtt", f"mqtt://127.0.0.1:{port}", "--mqtt-prefix", "x"]
    )
    sinks = sinks_of(args)
    assert [type(s) for s in sinks] == [WebhookSink, MqttSink] and sinks[1].prefix == "x"
    sinks[0].event("cam", events()[0])
    returns(lambda: close_all(sinks, 0.5))  # (closed side by side: test_live_outputs.py)
    assert sinks[1].dropped >= 1  # vidcls' own offline never reached a broker
    assert len(hook.requests) == 1
    bad = p.parse_args(["--webhook", hook.url, "--mqtt", "mqtt://h/a+b"])
    with pytest.raises(VidclsError, match="prefix"):
        sinks_of(bad)


# -- end to end: `vidcls live` with several sources --------------------------------------------


def test_live_sends_every_sources_events_to_mqtt_and_the_webhook(broker, hook):
    """Two real clips watched at once: each source's segment start and end reach the webhook
    and MQTT under its name, and the retained action is back to `none` after the end."""
    from cli_run import run
    from conftest import video

    clip = video("carving_ice_rpi.mp4")
    if not clip.exists():
        pytest.skip("the shared clips are not here")
    listener = Listener(broker.port, "vidcls/#")
    try:
        done = run(
            "live",
            f"ice={clip}",
            f"ice2={clip}",
            "--mqtt",
            f"mqtt://127.0.0.1:{broker.port}",
            "--webhook",
            hook.url + "/actions",
            "--replay",
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        posted = bodies(hook)
        for name in ("ice", "ice2"):
            actions = listener.on(f"vidcls/{name}/action")
            assert "carving ice" in actions and actions[1::2] == ["none"] * (len(actions) // 2)
            events = [json.loads(x) for x in listener.on(f"vidcls/{name}/event")]
            assert [e["event"] for e in events] == ["start", "end"] * (len(events) // 2)
            assert actions[::2] == [e["segment"]["label"] for e in events[::2]]
            assert retained(broker.port, f"vidcls/{name}/action") == "none"
            hooked = [(b["event"], b["segment"]["label"]) for b in posted if b["source"] == name]
            assert hooked == [(e["event"], e["segment"]["label"]) for e in events]
    finally:
        listener.close()
