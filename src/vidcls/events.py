"""The JSON shapes of what a live run tells the world, made here and nowhere else.

:func:`event_doc` is a segment event's document: stdout and ``-o`` (JSON Lines), the webhook
and MQTT payloads, the events database and ``GET /api/events`` all carry it. :func:`frame_doc`
is a frame result's JSON Lines line (live and ``classify``), :func:`status_doc` a source's
``online``/``offline`` change, :func:`listed_doc` a finished event as the events API lists it.
Fields are only ever added, never renamed: Home Assistant automations, MQTT subscribers and the
events page read them.
"""

from __future__ import annotations

import datetime
import time

from .ids import new_id
from .results import FrameResult, SegmentEvent, named


def event_doc(source: str, event: SegmentEvent) -> dict:
    """One segment event: ``source`` (and ``zone`` for a zone's view), ``event`` (``start`` or
    ``end``), ``event_id``, ``time`` (seconds since the source started), ``wall_time``
    (ISO-8601 UTC), ``segment`` (so far, for a start); an end adds ``start_id`` (its start's
    ``event_id``) and ``interrupted``, and with event clips ``clip`` and ``snapshot`` (paths)."""
    doc = {
        **named(source),
        "event": event.kind,
        "event_id": event.id,
        "time": round(event.time, 3),
        "wall_time": iso_utc(event.wall_time),
        "segment": event.segment.to_dict(),
    }
    if event.clip is not None:
        doc["clip"] = event.clip
    if event.snapshot is not None:
        doc["snapshot"] = event.snapshot
    if event.kind == "end":
        doc["start_id"] = event.start_id
        doc["interrupted"] = event.interrupted
    return doc


def frame_doc(source: str, frame: FrameResult) -> dict:
    """One frame result's line: ``source`` (and ``zone``), ``time``, ``top``, the timings."""
    return {**named(source), **frame.to_dict()}


def status_doc(source: str, online: bool, wall_time: float | None = None) -> dict:
    """A source coming up or being lost, shaped like an event: ``event`` is ``online`` or
    ``offline``, with its own ``event_id`` and ``wall_time`` (default now)."""
    t = time.time() if wall_time is None else wall_time
    return {
        **named(source),
        "event": "online" if online else "offline",
        "event_id": new_id(t),
        "wall_time": iso_utc(t),
    }


def listed_doc(row_id: int, doc: dict, start: float, end: float) -> dict:
    """A finished event as ``GET /api/events`` lists it: its :func:`event_doc` ``doc`` and
    the list's own fields: ``zone`` (always), ``id`` (the row, for paging), ``label``,
    ``start`` and ``end`` (ISO-8601, from the wall-clock ``start`` and ``end`` seconds),
    ``duration`` and ``peak``."""
    segment = doc["segment"]
    return {
        **doc,
        "zone": doc.get("zone"),  # None: a camera's whole frame
        "id": row_id,
        "label": segment["label"],
        "start": _iso(start),
        "end": _iso(end),
        "duration": round(end - start, 2),
        "peak": segment["peak"],
    }


def segment_span(event: SegmentEvent) -> tuple[float, float]:
    """The event's segment's start and end on the wall clock (seconds since the epoch)."""
    s = event.segment
    return event.wall_time - (event.time - s.start), event.wall_time - (event.time - s.end)


def iso_utc(t: float | None = None) -> str:
    """``t`` (seconds since the epoch, default now) as ``2025-01-31T12:00:00.123Z``."""
    return _iso(time.time() if t is None else t).replace("+00:00", "Z")


def _iso(t: float) -> str:
    stamp = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
    return stamp.isoformat(timespec="milliseconds")
