"""Segment events to an MQTT broker (paho-mqtt), the way Home Assistant and Frigate integrate.

Topics under the prefix (``vidcls`` unless the URL's path or ``prefix`` says otherwise):

- ``<prefix>/<source>/event``: every segment start and end as JSON (QoS 1, not retained);
- ``<prefix>/<source>/action``: the current action, retained: the label, or ``none``;
- ``<prefix>/<source>/status``: ``online`` / ``offline``, retained;
- ``<prefix>/<source>/snapshot``: the JPEG of the camera's last event that has one
  (``--clips``; a zone's too), retained, as raw bytes (as Frigate publishes its snapshots);
- a zone's events, action and status are under ``<prefix>/<source>/<zone>/``;
- ``<prefix>/status``: ``online`` while vidcls is connected, retained; ``offline`` when it
  closes, and as its last will when it dies.

paho's network thread connects, reconnects with backoff and keeps the messages published
meanwhile (up to ``queue_size``), so an unreachable broker never blocks the caller.
"""

from __future__ import annotations

import re
import secrets
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from ..errors import VidclsError
from ..events import event_doc
from ..results import SegmentEvent
from ..writers import dumps
from .base import EventSink, Throttle, log, shown_url

MAX_SNAPSHOT = 8 * 1024 * 1024  # bytes of JPEG published at most
NO_PAHO = "MQTT needs paho-mqtt: pip install 'vidcls[mqtt]'"
URL_FORM = "MQTT URL must be mqtt://[user:pass@]host[:port][/prefix] or mqtts://..."


@dataclass(frozen=True)
class Broker:
    """Where to connect, from an ``mqtt://`` or ``mqtts://`` URL."""

    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None
    prefix: str


def parse_url(url: str, prefix: str = "vidcls") -> Broker:
    """``mqtt[s]://[user:pass@]host[:port][/prefix]``; the path, if any, replaces ``prefix``."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise VidclsError(URL_FORM, shown_url(url)) from None
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname or "#" in url or parts.query:
        raise VidclsError(URL_FORM, shown_url(url))
    tls = parts.scheme == "mqtts"
    prefix = unquote(parts.path).strip("/") or prefix.strip("/")
    if not prefix or re.search(r"[+#\x00]|//", prefix) or prefix.startswith("$"):
        raise VidclsError(f"MQTT topic prefix {prefix!r} is not a plain topic", shown_url(url))
    user = None if parts.username is None else unquote(parts.username)
    password = None if parts.password is None else unquote(parts.password)
    return Broker(parts.hostname, port or (8883 if tls else 1883), tls, user, password, prefix)


_UNSAFE = re.compile(r"[\s\x00-\x1f\x7f+#/]+")


def topic_level(source: str) -> str:
    """``source`` as one readable topic level: a URL loses its scheme and credentials, and
    ``/``, ``+``, ``#``, spaces and control characters become ``_``
    (``rtsp://admin:pw@cam.local:554/live`` is ``cam.local_554_live``)."""
    name = source.strip()
    if "://" in name:
        try:
            parts = urlsplit(name)
            port = parts.port
        except ValueError:
            parts, port = None, None
        if parts is not None and parts.hostname:
            name = parts.hostname + (f"_{port}" if port else "") + parts.path
    return _UNSAFE.sub("_", name).strip("_") or "_"


def require_paho():
    try:
        import paho.mqtt.client as mqtt
    except ImportError:
        raise VidclsError(NO_PAHO) from None
    return mqtt


class MqttSink(EventSink):
    """Publishes segment events and source status to the broker at ``url``.

    ``qos`` is the event topic's; the retained topics always use QoS 1 so that they survive
    an outage in paho's queue. A source's first event marks it ``online`` unless ``status``
    said otherwise. With ``discovery``, each source is announced once to Home Assistant as a
    sensor (``<discovery_prefix>/sensor/<prefix>_<source>/config``). The counters count
    messages: ``sent`` when the broker acknowledged them.
    """

    name = "mqtt"

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "vidcls",
        client_id: str | None = None,
        qos: int = 1,
        queue_size: int = 1000,
        discovery: bool = False,
        discovery_prefix: str = "homeassistant",
        reconnect: tuple[float, float] = (1.0, 30.0),
    ) -> None:
        super().__init__()
        mqtt = require_paho()
        self.broker = parse_url(url, prefix)
        if qos not in (0, 1, 2):
            raise VidclsError(f"MQTT QoS must be 0, 1 or 2, not {qos}")
        self.shown, self.prefix, self.qos = shown_url(url), self.broker.prefix, qos
        self.discovery, self.discovery_prefix = discovery, discovery_prefix
        self.connected = False
        self._queue_full = mqtt.MQTTErrorCode.MQTT_ERR_QUEUE_SIZE
        self._lock = threading.Lock()  # sources and their status; never held while publishing
        self._levels: dict[str, str] = {}
        self._online: dict[str, bool] = {}
        self._closed = False
        self._acks = threading.Lock()  # message ids published / acknowledged first
        self._pending: set[int] = set()
        self._acked: set[int] = set()
        self._warn_conn, self._warn_queue = Throttle(), Throttle()
        self._client = self._make_client(mqtt, client_id or f"vidcls-{secrets.token_hex(6)}")
        self._client.reconnect_delay_set(*reconnect)
        self._client.max_queued_messages_set(max(queue_size, 1))
        self._client.connect_async(self.broker.host, self.broker.port, keepalive=30)
        self._client.loop_start()

    def _make_client(self, mqtt, client_id: str):
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        if self.broker.username is not None:
            c.username_pw_set(self.broker.username, self.broker.password)
        if self.broker.tls:
            c.tls_set_context(ssl.create_default_context())
        c.will_set(self._topic("status"), "offline", qos=1, retain=True)
        c.on_connect = self._on_connect
        c.on_connect_fail = self._on_connect_fail
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        return c

    # -- the caller's side -----------------------------------------------------------------

    def event(self, source: str, event: SegmentEvent) -> None:
        if self._closed:
            with self._acks:
                self.dropped += 1
            return
        level = self._level(source)
        with self._lock:
            implied = level not in self._online
            if implied:
                self._online[level] = True
        if implied:
            self._publish(self._topic(level, "status"), "online", 1, True)
        self._publish(self._topic(level, "event"), dumps(event_doc(source, event)), self.qos, False)
        action = event.segment.label if event.kind == "start" else "none"
        self._publish(self._topic(level, "action"), action, 1, True)
        if event.snapshot is not None:
            try:
                with open(event.snapshot, "rb") as f:
                    jpeg = f.read(MAX_SNAPSHOT + 1)
            except OSError as e:
                log.warning("MQTT: cannot read snapshot %s (%s)", event.snapshot, e.strerror)
                return
            if len(jpeg) <= MAX_SNAPSHOT:  # one per camera, whole frame or zone
                camera = level.split("/", 1)[0]
                self._publish(self._topic(camera, "snapshot"), jpeg, 1, True)

    def status(self, source: str, online: bool) -> None:
        if self._closed:
            return
        level = self._level(source)
        with self._lock:
            self._online[level] = online
        self._publish(self._topic(level, "status"), "online" if online else "offline", 1, True)

    def close(self, timeout: float = 5.0) -> None:
        """Publish ``offline`` for vidcls and its online sources, wait for the broker to
        acknowledge what is outstanding (within ``timeout``), then disconnect."""
        deadline = time.monotonic() + timeout
        with self._lock:
            if self._closed:
                return
            self._closed = True
            online = [level for level, on in self._online.items() if on]
        for level in online:
            self._publish(self._topic(level, "status"), "offline", 1, True)
        self._publish(self._topic("status"), "offline", 1, True)
        while self._pending and time.monotonic() < deadline:
            time.sleep(0.01)
        with self._acks:
            left = len(self._pending)
        self._client.disconnect()
        stop = threading.Thread(target=self._client.loop_stop, name="vidcls-mqtt-stop", daemon=True)
        stop.start()
        stop.join(max(deadline - time.monotonic(), 0.05))
        if left:
            with self._acks:
                self.dropped += left
            log.warning("MQTT %s: closing with %d messages undelivered", self.shown, left)

    # -- helpers ---------------------------------------------------------------------------

    def _topic(self, *levels: str) -> str:
        return "/".join((self.prefix, *levels))

    def _level(self, source: str) -> str:
        """The topic level of ``source``; announced to Home Assistant the first time."""
        with self._lock:
            level = self._levels.get(source)
            new = level is None
            if new:
                zone = getattr(source, "zone", None)  # a zone: a level of its own
                level = topic_level(source.source if zone else source)
                if zone:
                    level += "/" + topic_level(zone)
                self._levels[source] = level
        if new and self.discovery:
            self._announce(source, level)
        return level

    def _announce(self, source: str, level: str) -> None:
        slug = re.sub(r"[^A-Za-z0-9_-]+", "_", f"{self.prefix}_{level}")
        config = {
            "name": "Action",
            "unique_id": f"{slug}_action",
            "state_topic": self._topic(level, "action"),
            "json_attributes_topic": self._topic(level, "event"),
            "availability": [
                {"topic": self._topic("status")},
                {"topic": self._topic(level, "status")},
            ],
            "availability_mode": "all",
            "icon": "mdi:run",
            "device": {"identifiers": [slug], "name": source, "manufacturer": "vidcls"},
        }
        self._publish(f"{self.discovery_prefix}/sensor/{slug}/config", dumps(config), 1, True)

    def _publish(self, topic: str, text: str | bytes, qos: int, retain: bool) -> None:
        data = text.encode("utf-8") if isinstance(text, str) else text
        info = self._client.publish(topic, data, qos=qos, retain=retain)
        if info.rc == self._queue_full or (qos == 0 and info.rc):
            with self._acks:
                self.dropped += 1
            if self._warn_queue():
                log.warning(
                    "MQTT %s: broker unreachable and %d messages queued; dropping new ones "
                    "(%d so far)",
                    self.shown,
                    self._client.max_queued_messages,
                    self.dropped,
                )
        else:  # sent (or queued) and acknowledged by on_publish, perhaps before we get here
            with self._acks:
                if info.mid in self._acked:  # acknowledged before publish() returned
                    self._acked.discard(info.mid)
                else:
                    self._pending.add(info.mid)

    # -- paho's network thread -------------------------------------------------------------

    def _on_connect(self, client, userdata, flags, reason, properties) -> None:
        if reason.is_failure:
            if self._warn_conn():
                log.warning("MQTT %s refused the connection: %s", self.shown, reason)
            return
        self.connected = True
        log.info("MQTT: connected to %s", self.shown)
        self._publish(self._topic("status"), "offline" if self._closed else "online", 1, True)

    def _on_connect_fail(self, client, userdata) -> None:
        if self._warn_conn():
            log.warning("MQTT %s: broker unreachable; retrying, events are queued", self.shown)

    def _on_disconnect(self, client, userdata, flags, reason, properties) -> None:
        self.connected = False
        if not self._closed and self._warn_conn():
            log.warning("MQTT %s: connection lost (%s); reconnecting", self.shown, reason)

    def _on_publish(self, client, userdata, mid, reason, properties) -> None:
        with self._acks:
            self.sent += 1
            if mid in self._pending:
                self._pending.discard(mid)
            else:
                self._acked.add(mid)
