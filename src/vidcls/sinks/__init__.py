"""Event sinks: segment starts and ends of live sources, delivered where people use them.

:class:`WebhookSink` POSTs each event as JSON; :class:`MqttSink` publishes it to an MQTT
broker (with a retained current action and status per source, for Home Assistant and the
like). Neither ever blocks the caller: ``event`` only enqueues, delivery runs in a thread.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..events import event_doc as payload  # its old name here
from ..events import iso_utc
from .base import EventSink, close_all
from .mqtt import MqttSink, parse_url, require_paho, topic_level
from .webhook import WebhookSink, plain_url

__all__ = [
    "EventSink",
    "MqttSink",
    "WebhookSink",
    "close_all",
    "iso_utc",
    "open_sinks",
    "parse_url",
    "payload",
    "topic_level",
]


def open_sinks(
    webhooks: Sequence[str] = (),
    mqtt: Sequence[str] = (),
    prefix: str = "vidcls",
    discovery: bool = False,
) -> list[EventSink]:
    """A sink per webhook URL and per MQTT broker URL (``--webhook``, ``--mqtt``). Every URL
    is checked before any sink starts; a bad one is a VidclsError naming it."""
    for url in webhooks:
        plain_url(url)
    for url in mqtt:
        parse_url(url, prefix)
    if mqtt:
        require_paho()
    sinks: list[EventSink] = [WebhookSink(url) for url in webhooks]
    sinks += [MqttSink(url, prefix=prefix, discovery=discovery) for url in mqtt]
    return sinks
