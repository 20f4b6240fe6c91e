"""Event clips without re-encoding: a live source's recent compressed packets, remuxed into an
MP4 around each event (stream copy: the camera's codec and size; nothing decoded or encoded).

A :class:`ClipRecorder` sees every packet its source demuxes, with the time (``monotonic``)
it stands for, and keeps the last ``pre_roll`` seconds from a keyframe, or more while a clip
asks for them. :meth:`ClipRecorder.request` asks for a clip from ``pre_roll`` before a start
(from the keyframe at or before it) to ``post_roll`` after an end; the clip is written, in a
writer thread, once the source has passed that point (``max_clip`` caps a long one), when the
source ends or when the recorder closes. A clip is written whole under a temporary name and
then renamed, so a process killed midway leaves no partial file under a final name.
"""

from __future__ import annotations

import collections
import contextlib
import io
import logging
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import av

log = logging.getLogger("vidcls")
MAX_BYTES = 64 * 1024 * 1024  # a source's packets kept at most, whatever the clips ask for
_writer: ThreadPoolExecutor | None = None
_writer_lock = threading.Lock()
INF = float("inf")
REORDER = 0.5  # seconds a packet may come before frames shown earlier (B-frames)


@dataclass(frozen=True)
class RecordOptions:
    """Seconds of video kept before an event's start and after its end; the longest clip."""

    pre_roll: float = 5.0
    post_roll: float = 3.0
    max_clip: float = 120.0

    def __post_init__(self) -> None:
        for name in ("pre_roll", "post_roll", "max_clip"):
            value = getattr(self, name)
            if not (0 <= value < float("inf")):
                raise ValueError(f"{name} must be a number of seconds >= 0, got {value!r}")


@dataclass
class _Request:
    path: Path
    start: float
    end: float | None


class ClipRecorder:
    """One source's recent packets and the clips asked of them; thread-safe."""

    def __init__(self, options: RecordOptions) -> None:
        self.options = options
        self._lock = threading.Lock()
        self._stream = None  # the parameters of the stream the packets belong to
        self._packets: collections.deque = collections.deque()  # (seq, when, packet)
        self._keys: collections.deque = collections.deque()  # (seq, when) of keyframes
        self._seq = self._bytes = 0
        self._requests: dict[Path, _Request] = {}
        self._done: collections.deque[Path] = collections.deque(maxlen=256)  # paths written
        self._pending: list[Future] = []
        self.ended = False  # the source gives no more packets
        self.written: list[Path] = []

    def begin(self, stream) -> None:
        """A (re)opened input: clips asked so far get what there is; packets start anew."""
        with self._lock:
            self._write_due(INF, flush=True)
            self._stream = _template(stream)
            self._packets.clear()
            self._keys.clear()
            self._bytes = 0
            self.ended = False

    def add(self, packet: av.Packet, when: float) -> None:
        """One demuxed packet standing for time ``when``."""
        with self._lock:
            self._seq += 1
            self._packets.append((self._seq, when, packet))
            self._bytes += packet.size
            if packet.is_keyframe:
                self._keys.append((self._seq, when))
            self._write_due(when)
            self._trim(when)

    def request(self, path: str | os.PathLike, start: float, end: float | None = None) -> None:
        """Ask for the clip ``path`` around ``start``..``end`` (None: not ended yet; asked
        again with its end later)."""
        path = Path(path)
        with self._lock:
            if path in self._done:  # written already (at max_clip)
                return
            request = self._requests.get(path)
            if request is None:
                request = self._requests[path] = _Request(path, start, end)
            request.end = end
            if self.ended:
                self._write_due(INF)

    def finish(self) -> None:
        """The source ended: clips that have their end are written now, the others when
        their end is asked for."""
        with self._lock:
            self.ended = True
            self._write_due(INF)

    def close(self, timeout: float = 10.0) -> None:
        """Write every clip asked for with what there is, and wait for the writes."""
        with self._lock:
            self.ended = True
            self._write_due(INF, flush=True)
            pending, self._pending = self._pending, []
        for future in pending:
            try:
                future.result(timeout)
            except Exception as e:  # noqa: BLE001 - logged by the writer; never raised here
                log.debug("clip write: %s", e)

    # -- with the lock held ----------------------------------------------------------------

    def _write_due(self, now: float, flush: bool = False) -> None:
        """Write the clips whose end plus ``post_roll`` has passed (a long one at
        ``max_clip``); with ``flush``, every clip asked for."""
        o = self.options
        for path, r in list(self._requests.items()):
            last = r.start + o.max_clip if r.end is None else min(r.end, r.start + o.max_clip)
            if not flush and (now < last + o.post_roll + REORDER or (r.end is None and now == INF)):
                continue  # not yet; or the source ended and the clip's end is still to come
            del self._requests[path]
            self._done.append(path)
            packets = self._select(r.start - o.pre_roll, last + o.post_roll)
            if not packets or self._stream is None:
                log.warning("no video recorded for %s", path.name)
                continue
            self._pending = [f for f in self._pending if not f.done()]
            self._pending.append(_submit(self._stream, packets, path, self.written))

    def _select(self, first: float, last: float) -> list[av.Packet]:
        """Packets in decoding order from the keyframe at or before ``first`` (else the first
        kept) until one stands for a time past ``last`` and the frames it may reorder."""
        start = self._keys[0][0] if self._keys else None
        for seq, when in self._keys:
            if when > first:
                break
            start = seq
        if start is None:
            return []
        out = []
        for seq, when, p in self._packets:
            if seq < start:
                continue
            if when > last + REORDER:
                break
            out.append(p)
        return out

    def _trim(self, now: float) -> None:
        """Keep ``pre_roll`` seconds from a keyframe, and what the clips asked for need."""
        cut = now - self.options.pre_roll
        for r in self._requests.values():
            cut = min(cut, r.start - self.options.pre_roll)
        keys, packets = self._keys, self._packets
        while len(keys) >= 2 and (keys[1][1] <= cut or self._bytes > MAX_BYTES):
            keys.popleft()
            while packets and packets[0][0] < keys[0][0]:
                self._bytes -= packets.popleft()[2].size
        while not keys and packets and packets[0][1] < cut:  # no keyframe yet: nothing to cut from
            self._bytes -= packets.popleft()[2].size


def _template(stream):
    """A copy of ``stream``'s codec parameters that outlives its container (a source closes
    its input at its end, before the clips asked of it are written): a stream of an MP4
    container in memory that is never written."""
    holder = av.open(io.BytesIO(), "w", format="mp4")
    return holder, holder.add_stream_from_template(stream)  # the holder lives with its stream


def _submit(template, packets: list[av.Packet], path: Path, written: list[Path]) -> Future:
    global _writer
    with _writer_lock:
        if _writer is None:
            _writer = ThreadPoolExecutor(1, thread_name_prefix="vidcls-clips")
    return _writer.submit(_write_logged, template, packets, path, written)


def _write_logged(template, packets: list[av.Packet], path: Path, written: list[Path]) -> None:
    try:
        write_clip(template[1], packets, path)
        written.append(path)
    except (OSError, av.FFmpegError, ValueError) as e:
        log.warning("cannot write clip %s (%s)", path, getattr(e, "strerror", None) or e)


def write_clip(stream, packets: list[av.Packet], path: str | os.PathLike) -> Path:
    """``packets`` of ``stream`` (the first a keyframe) remuxed into the MP4 ``path``, its
    first frame at time 0; written under a temporary name, then renamed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f".{path.name}.part")
    offset = packets[0].pts if packets[0].pts is not None else packets[0].dts
    last_dts = None
    try:
        with av.open(str(part), "w", format="mp4") as out:
            target = out.add_stream_from_template(stream)
            for p in packets:
                if p.dts is None or (last_dts is not None and p.dts <= last_dts):
                    continue  # the muxer needs rising decode times
                last_dts = p.dts
                copy = av.Packet(bytes(p))
                copy.pts = None if p.pts is None else p.pts - offset
                copy.dts = p.dts - offset
                copy.time_base, copy.is_keyframe, copy.stream = p.time_base, p.is_keyframe, target
                out.mux(copy)
        os.replace(part, path)
    except BaseException:
        with contextlib.suppress(OSError):
            part.unlink(missing_ok=True)
        raise
    return path
