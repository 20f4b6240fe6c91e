"""Every output vidcls writes: one registry of formats, and one way to write a file atomically.

Text formats (``table``, ``json``, ``jsonl``, ``csv``, ``srt``) come from :func:`get_writer`;
each writes whole videos (``classify``) and single results and events as they happen
(``live``). Row formats (``jsonl``, ``parquet``) hold one row per video or per frame
(``batch``). Files are written by :func:`atomic_path`: to a temporary name beside the target,
then renamed over it, so a reader never sees half a file and a failure leaves the old one.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import VidclsError
from .events import event_doc, frame_doc
from .results import Category, FrameResult, Segment, SegmentEvent, VideoResult

# -- atomic files ------------------------------------------------------------------------------


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``target`` (same suffix) that replaces it when the block ends
    without error, with the mode a new file gets (or ``target``'s own); removed otherwise.
    An OSError in making or placing it (no such folder, disk full) is a VidclsError."""
    target = Path(target)
    try:
        fd, name = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=f".tmp{target.suffix}"
        )
        os.close(fd)
    except OSError as e:
        raise write_error(e, target) from None
    tmp = Path(name)
    try:
        yield tmp
        try:
            os.chmod(tmp, _mode_for(target))
            os.replace(tmp, target)
        except OSError as e:
            raise write_error(e, target) from None
    finally:
        tmp.unlink(missing_ok=True)


def _mode_for(target: Path) -> int:
    try:
        return target.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def write_error(e: OSError, target: str | os.PathLike) -> VidclsError:
    """The one-line error for an OSError while writing ``target``."""
    return VidclsError(f"cannot write ({e.strerror or e})", target)


def write_text(target: str | os.PathLike, text: str) -> Path:
    """Replace ``target`` with ``text`` (UTF-8) in one step."""
    return write_bytes(target, text.encode("utf-8"))


def write_bytes(target: str | os.PathLike, data: bytes) -> Path:
    """Replace ``target`` with ``data`` in one step, flushed to disk first."""
    try:
        with atomic_path(target) as tmp, open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise write_error(e, target) from None
    return Path(target)


def dumps(doc: object, indent: int | None = None) -> str:
    """JSON as every vidcls output writes it (UTF-8 text, not escaped)."""
    return json.dumps(doc, indent=indent, ensure_ascii=False)


# -- text formats ------------------------------------------------------------------------------


def format_time(seconds: float) -> str:
    """``m:ss.ss`` (or ``h:mm:ss.ss`` past an hour)."""
    m, s = divmod(seconds, 60)
    h, m = divmod(int(m), 60)
    return f"{h}:{m:02d}:{s:05.2f}" if h else f"{m}:{s:05.2f}"


def top_text(top: list[Category]) -> str:
    """``label score  label score ...``."""
    return "  ".join(f"{c.label} {c.score:.3f}" for c in top) or "(nothing above threshold)"


class Writer:
    """One text format. ``start``, then ``video`` per video, then ``end``; or, live,
    ``frame`` and ``event`` as they happen. Each returns the text to write."""

    name = ""
    live = False  # whether frame() and event() are meaningful

    def start(self) -> str:
        return ""

    def video(self, result: VideoResult, frames: bool = True) -> str:
        raise NotImplementedError

    def end(self) -> str:
        return ""

    def frame(self, frame: FrameResult, source: str) -> str:
        raise ValueError(f"{self.name} does not write live results")

    def event(self, event: SegmentEvent, source: str) -> str:
        raise ValueError(f"{self.name} does not write live results")


class TableWriter(Writer):
    """For people: the time and the top categories of each frame, the summary, segments."""

    name, live = "table", True

    def video(self, r: VideoResult, frames: bool = True) -> str:
        fps = "native" if r.fps is None else f"{r.fps:g} fps"
        count = len(r.frames)
        lines = [f"{r.source}  (model {r.model}, {fps}, {count} frame{'s' * (count != 1)} fed)"]
        if frames:
            lines += [f"  {format_time(f.time):>9}  {top_text(f.top)}" for f in r.frames]
        lines.append(f"  {'summary':>9}  {top_text(r.summary)}")
        if r.segments is not None:
            lines.append(f"  segments ({len(r.segments)})")
            lines += [
                f"  {format_time(s.start):>9} - {format_time(s.end):<9} {s.label} "
                f"(peak {s.peak:.2f})"
                for s in r.segments
            ]
        return "\n".join(lines) + "\n\n"

    def frame(self, f: FrameResult, source: str) -> str:
        top = "  ".join(f"{c.label} {c.score:.3f}" for c in f.top) or "-"
        status = [f"{f.infer_ms:.1f} ms"] if f.infer_ms is not None else []
        if f.input_fps is not None:
            status.append(f"{f.input_fps:.1f} fps in")
        if f.latency_ms is not None:
            status.append(f"{f.latency_ms:.0f} ms late")
        tail = f"  [{', '.join(status)}]" if status else ""
        return f"{format_time(f.time):>9}  {top}{tail}\n"

    def event(self, e: SegmentEvent, source: str) -> str:
        media = "".join(f"  {k}: {v}" for k, v in (("clip", e.clip), ("snapshot", e.snapshot)) if v)
        return f"{format_time(e.time):>9}  -- {e.kind} {e.segment.label}{media}\n"


class JsonWriter(Writer):
    """One JSON document: an object for one video, a list for several."""

    name = "json"

    def __init__(self) -> None:
        self._docs: list[dict] = []

    def video(self, result: VideoResult, frames: bool = True) -> str:
        self._docs.append(result.to_dict(frames))
        return ""

    def end(self) -> str:
        if not self._docs:
            return ""
        return dumps(self._docs[0] if len(self._docs) == 1 else self._docs, indent=2) + "\n"


class JsonlWriter(Writer):
    """JSON Lines, for scripts: a line per frame, per segment and per summary (or live event)."""

    name, live = "jsonl", True

    def video(self, r: VideoResult, frames: bool = True) -> str:
        rows = [frame_doc(r.source, f) for f in r.frames] if frames else []
        rows += [{"source": r.source, "segment": s.to_dict()} for s in r.segments or []]
        summary = {"top": [c.to_dict() for c in r.summary]}
        rows.append({"source": r.source, "model": r.model, "fps": r.fps, "summary": summary})
        return "".join(dumps(row) + "\n" for row in rows)

    def frame(self, f: FrameResult, source: str) -> str:
        return dumps(frame_doc(source, f)) + "\n"

    def event(self, e: SegmentEvent, source: str) -> str:
        return dumps(event_doc(source, e)) + "\n"


class CsvWriter(Writer):
    """Spreadsheets: ``source,kind,time,rank,label,index,score,end``; ``kind`` is ``frame``,
    ``segment`` (``time`` its start, ``score`` its peak) or ``summary``; live, also ``start``
    and ``end`` events (``time`` when decided, ``score`` the peak so far, ``end`` the
    segment's end so far)."""

    name, live = "csv", True
    FIELDS = ("source", "kind", "time", "rank", "label", "index", "score", "end")

    def start(self) -> str:
        return ",".join(self.FIELDS) + "\n"

    def video(self, r: VideoResult, frames: bool = True) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        for f in r.frames if frames else []:
            for rank, c in enumerate(f.top, 1):
                w.writerow([r.source, "frame", f"{f.time:.4f}", rank, *_cells(c), ""])
        for s in r.segments or []:
            row = [r.source, "segment", f"{s.start:.4f}", "", s.label, s.index, f"{s.peak:.6f}"]
            w.writerow([*row, f"{s.end:.4f}"])
        for rank, c in enumerate(r.summary, 1):
            w.writerow([r.source, "summary", "", rank, *_cells(c), ""])
        return buf.getvalue()

    def frame(self, f: FrameResult, source: str) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        for rank, c in enumerate(f.top, 1):
            w.writerow([source, "frame", f"{f.time:.4f}", rank, *_cells(c), ""])
        return buf.getvalue()

    def event(self, e: SegmentEvent, source: str) -> str:
        buf = io.StringIO()
        s = e.segment
        row = [source, e.kind, f"{e.time:.4f}", "", s.label, s.index, f"{s.peak:.6f}"]
        csv.writer(buf, lineterminator="\n").writerow([*row, f"{s.end:.4f}"])
        return buf.getvalue()


def _cells(c: Category) -> list:
    return [c.label, c.index, f"{c.score:.6f}"]


class SrtWriter(Writer):
    """The action segments as SubRip subtitles."""

    name = "srt"

    def video(self, result: VideoResult, frames: bool = True) -> str:
        return to_srt(result.segments or [])


def to_srt(segments: list[Segment]) -> str:
    """Segments as SubRip subtitles."""

    def stamp(t: float) -> str:
        ms = round(t * 1000)
        h, ms = divmod(ms, 3_600_000)
        m, ms = divmod(ms, 60_000)
        s, ms = divmod(ms, 1000)
        return f"{h:02d}:{m:02d}:{s:02d},{ms:03d}"

    blocks = [
        f"{i}\n{stamp(s.start)} --> {stamp(s.end)}\n{s.label} ({s.peak:.2f})\n"
        for i, s in enumerate(segments, 1)
    ]
    return "\n".join(blocks)


WRITERS: dict[str, type[Writer]] = {
    w.name: w for w in (TableWriter, JsonWriter, JsonlWriter, CsvWriter, SrtWriter)
}
FORMATS = ("table", "json", "jsonl", "csv")  # what `vidcls classify --format` offers
LIVE_FORMATS = tuple(name for name, w in WRITERS.items() if w.live)


def get_writer(name: str) -> Writer:
    """A new writer for the format ``name``."""
    try:
        return WRITERS[name]()
    except KeyError:
        raise ValueError(f"unknown format {name!r} (choose from {', '.join(WRITERS)})") from None


def render(results: Iterable[VideoResult], fmt: str, frames: bool = True) -> str:
    """All results in one format, as text."""
    w = get_writer(fmt)
    return w.start() + "".join(w.video(r, frames) for r in results) + w.end()


# -- row formats (batch) -----------------------------------------------------------------------

ROW_FORMATS = {".parquet": "parquet", ".jsonl": "jsonl", ".json": "jsonl"}


def video_row(result: VideoResult) -> dict:
    """One row for a classified video."""
    top = result.summary
    return {
        "source": result.source,
        "status": "ok",
        "error": None,
        "model": result.model,
        "fps": result.fps,
        "frames": len(result.frames),
        "duration": round(result.frames[-1].time, 4) if result.frames else 0.0,
        "label": top[0].label if top else None,
        "score": round(top[0].score, 6) if top else None,
        "top": [c.to_dict() for c in top],
        "segments": None if result.segments is None else [s.to_dict() for s in result.segments],
    }


def error_row(source: str, model: str, message: str) -> dict:
    """One row for a video that could not be classified."""
    return {
        "source": source,
        "status": "error",
        "error": message,
        "model": model,
        "fps": None,
        "frames": 0,
        "duration": None,
        "label": None,
        "score": None,
        "top": [],
        "segments": None,
    }


def frame_rows(result: VideoResult) -> list[dict]:
    """One row per category of each frame: ``source, time, rank, label, index, score``."""
    return [
        {"source": result.source, "time": round(f.time, 4), "rank": rank, **c.to_dict()}
        for f in result.frames
        for rank, c in enumerate(f.top, 1)
    ]


def _schema(kind: str):
    import pyarrow as pa

    category = [("label", pa.string()), ("index", pa.int32()), ("score", pa.float64())]
    if kind == "frames":
        head = [("source", pa.string()), ("time", pa.float64()), ("rank", pa.int32())]
        return pa.schema([*head, *category])
    segment = pa.struct(
        [*category[:2], ("start", pa.float64()), ("end", pa.float64()), ("peak", pa.float64())]
    )
    return pa.schema(
        [
            ("source", pa.string()),
            ("status", pa.string()),
            ("error", pa.string()),
            ("model", pa.string()),
            ("fps", pa.float64()),
            ("frames", pa.int32()),
            ("duration", pa.float64()),
            ("label", pa.string()),
            ("score", pa.float64()),
            ("top", pa.list_(pa.struct(category))),
            ("segments", pa.list_(segment)),
        ]
    )


def write_rows(path: str | os.PathLike, rows: list[dict], kind: str = "videos") -> None:
    """Write rows (``kind`` ``videos`` or ``frames``) as Parquet or JSON Lines, by suffix."""
    path = Path(path)
    try:
        _write_rows(path, rows, kind)
    except OSError as e:
        raise write_error(e, path) from None


def _write_rows(path: Path, rows: list[dict], kind: str) -> None:
    with atomic_path(path) as tmp:
        if ROW_FORMATS[path.suffix.lower()] == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.Table.from_pylist(rows, schema=_schema(kind)), tmp)
        else:
            with open(tmp, "w", encoding="utf-8") as f:
                f.writelines(dumps(r) + "\n" for r in rows)
                f.flush()
                os.fsync(f.fileno())


def read_rows(path: str | os.PathLike) -> list[dict]:
    """Rows written by :func:`write_rows`."""
    path = Path(path)
    if ROW_FORMATS[path.suffix.lower()] == "parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
