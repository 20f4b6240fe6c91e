"""An MPEG-TS clip as a camera sends it: frame by frame, looped without jumping back."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from ...errors import VidclsError

TS = 188  # bytes in an MPEG-TS packet
TICKS = 90_000  # MPEG-TS timestamps per second
WRAP = 2**33  # they count modulo this


class TsClip:
    """An MPEG-TS clip cut into frames (each with the tables sent just before it), with their
    times and keyframes; :meth:`loop` gives its bytes as sent the ``k``-th time round."""

    def __init__(self, path: Path) -> None:
        data = path.read_bytes()
        packets = np.frombuffer(data, np.uint8)[: len(data) // TS * TS].reshape(-1, TS)
        if not len(packets) or (packets[:, 0] != 0x47).any():
            raise VidclsError("not an MPEG-TS file", path)
        self.path, self.data = path, data[: packets.size]
        self.pid = (packets[:, 1].astype(np.int64) & 0x1F) << 8 | packets[:, 2]
        control = packets[:, 3] >> 4 & 3  # bit 1: an adaptation field, bit 0: a payload
        fields = np.where(control & 2 > 0, packets[:, 4], 0)  # adaptation field lengths
        flags = np.where(fields > 0, packets[:, 5], 0)
        self.pcrs = np.nonzero(flags & 0x10)[0] * TS + 6  # where the clock references are
        # How much each pid's continuity counter goes up in one time round (null packets: 0).
        counts = np.bincount(self.pid, weights=control & 1, minlength=0x2000).astype(np.int64)
        counts[0x1FFF] = 0
        self.cc_steps = counts[self.pid] % 16
        payloads = 4 + np.where(control & 2 > 0, 1 + fields, 0)
        self._index(packets, payloads, flags)
        self._loops: dict[int, bytes] = {}
        self._lock = threading.Lock()

    def _index(self, packets: np.ndarray, payloads: np.ndarray, flags: np.ndarray) -> None:
        """Each video frame's first byte, its time and whether it is a keyframe; where the PTS
        and DTS fields are; the clip's period."""
        self.starts, self.keys, stamps, dts = [], [], [], []
        video, last = None, -1
        for n in map(int, np.nonzero(packets[:, 1] & 0x40)[0]):
            at = int(payloads[n])
            head = packets[n, at : at + 19]
            if len(head) < 14 or bytes(head[:3]) != b"\0\0\1" or not 0xE0 <= head[3] <= 0xEF:
                continue  # not the start of a video frame
            video = self.pid[n] if video is None else video
            has_dts = bool(head[7] & 0x40) and len(head) == 19
            if self.pid[n] != video or not head[7] & 0x80:
                continue
            first = n  # the frame's bytes begin with the tables sent just before it
            while first > last + 1 and self.pid[first - 1] != video:
                first -= 1
            self.starts.append(first * TS if self.starts else 0)
            # Any client may start at a keyframe; the clip's first frame is one.
            self.keys.append(bool(flags[n] & 0x40) or not self.keys)
            stamps += [n * TS + at + 9] + ([n * TS + at + 14] if has_dts else [])
            dts.append(int(_stamps(head[14:19] if has_dts else head[9:14])))
            last = n
        if len(dts) < 2:
            raise VidclsError("fewer than two video frames in the MPEG-TS file", self.path)
        self.starts.append(len(self.data))
        self.stamps = np.array(stamps)
        self.times = [(t - dts[0]) / TICKS for t in dts]
        self.period = dts[-1] - dts[0] + int(np.median(np.diff(dts)))  # ticks
        self.duration = self.period / TICKS

    def loop(self, k: int) -> bytes:
        """The clip's bytes the ``k``-th time round: timestamps later by ``k`` periods and
        continuity counters carried on, so the stream never jumps back."""
        with self._lock:
            if k not in self._loops:
                self._loops = {j: b for j, b in self._loops.items() if k - 2 <= j <= k + 2}
                self._loops[k] = self._shifted(k)
            return self._loops[k]

    def _shifted(self, k: int) -> bytes:
        flat = np.frombuffer(self.data, np.uint8).copy()
        cc = flat[3::TS]
        flat[3::TS] = (cc & 0xF0) | ((cc + self.cc_steps * k) & 0x0F)
        shift = k * self.period
        at = self.stamps[:, None] + np.arange(5)
        flat[at] = _stamp_bytes(flat[at], (_stamps(flat[at]) + shift) % WRAP)
        at = self.pcrs[:, None] + np.arange(5)
        flat[at] = _pcr_bytes(flat[at], (_pcr_bases(flat[at]) + shift) % WRAP)
        return flat.tobytes()


def _stamps(b: np.ndarray) -> np.ndarray:
    """PTS or DTS values from their 5-byte fields (the last axis)."""
    b = b.astype(np.int64)
    high = (b[..., 0] >> 1 & 7) << 30 | b[..., 1] << 22 | (b[..., 2] >> 1) << 15
    return high | b[..., 3] << 7 | b[..., 4] >> 1


def _stamp_bytes(old: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The 5-byte PTS or DTS fields ``old`` holding ``t`` instead."""
    first = (old[:, 0] & 0xF1) | (t >> 29 & 0x0E)
    return np.stack([first, t >> 22, t >> 14 | 1, t >> 7, t << 1 | 1], axis=-1) & 0xFF


def _pcr_bases(b: np.ndarray) -> np.ndarray:
    """The 90 kHz part of program clock references (their first 5 bytes)."""
    b = b.astype(np.int64)
    return b[:, 0] << 25 | b[:, 1] << 17 | b[:, 2] << 9 | b[:, 3] << 1 | b[:, 4] >> 7


def _pcr_bytes(old: np.ndarray, base: np.ndarray) -> np.ndarray:
    """The first 5 bytes of program clock references ``old`` with ``base`` instead."""
    last = (old[:, 4] & 0x7F) | (base & 1) << 7
    return np.stack([base >> 25, base >> 17, base >> 9, base >> 1, last], axis=-1) & 0xFF
