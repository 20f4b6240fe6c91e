"""Event ids: 128-bit, globally unique and time-ordered, in the UUID version 7 layout
(RFC 9562: 48 bits of Unix milliseconds, 12 bits of the millisecond's fraction, 62 random
bits), written as the usual 36-character string."""

from __future__ import annotations

import secrets
import time
import uuid

_VERSION, _VARIANT = 0x7 << 76, 0b10 << 62


def new_id(wall_time: float | None = None) -> str:
    """A new id for something that happened at ``wall_time`` (seconds since the epoch, default
    now): ids made later sort after (to a 1/4096 of a millisecond)."""
    t = time.time() if wall_time is None else wall_time
    return _layout(t, secrets.randbits(62))


def id_from(wall_time: float, number: int) -> str:
    """The id of an old record made from its time and its ``number`` (unique among such
    records, below 2**62): the same record always gets the same id."""
    return _layout(wall_time, number & ((1 << 62) - 1))


def id_time(event_id: str) -> float:
    """The wall time (seconds since the epoch, to the millisecond) an id was made for."""
    return (uuid.UUID(event_id).int >> 80) / 1000.0


def _layout(t: float, low: int) -> str:
    ticks = max(round(t * 1000 * 4096), 0)  # 1/4096 ms
    ms, fraction = (ticks >> 12) & ((1 << 48) - 1), ticks & 0xFFF
    return str(uuid.UUID(int=ms << 80 | _VERSION | fraction << 64 | _VARIANT | low))
