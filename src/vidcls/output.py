"""Write classification results as a readable table, JSON, JSON Lines or CSV."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from . import _files
from .classifier import Category
from .classify import VideoResult

FORMATS = ("table", "json", "jsonl", "csv")
CSV_FIELDS = ("source", "kind", "time", "rank", "label", "index", "score", "end")


def format_time(seconds: float) -> str:
    """``m:ss.ss`` (or ``h:mm:ss.ss`` past an hour)."""
    m, s = divmod(seconds, 60)
    h, m = divmod(int(m), 60)
    return f"{h}:{m:02d}:{s:05.2f}" if h else f"{m}:{s:05.2f}"


def _top_text(top: list[Category]) -> str:
    return "  ".join(f"{c.label} {c.score:.3f}" for c in top) or "(nothing above threshold)"


def render(results: Iterable[VideoResult], fmt: str, frames: bool = True) -> str:
    """All results in one format, as text."""
    results = list(results)
    if fmt == "json":
        docs = [_json_doc(r, frames) for r in results]
        return json.dumps(docs[0] if len(docs) == 1 else docs, indent=2) + "\n"
    return "".join(render_one(r, fmt, frames, header=(i == 0)) for i, r in enumerate(results))


def render_one(result: VideoResult, fmt: str, frames: bool = True, header: bool = True) -> str:
    """One video's results, for formats that stream file by file (table, jsonl, csv)."""
    if fmt == "table":
        return _table(result, frames)
    if fmt == "jsonl":
        return _jsonl(result, frames)
    if fmt == "csv":
        return _csv(result, frames, header)
    raise ValueError(f"format {fmt!r} does not stream; use render()")


def _json_doc(result: VideoResult, frames: bool) -> dict:
    doc = result.to_dict()
    if not frames:
        doc["frames"] = []
    return doc


def _table(r: VideoResult, frames: bool) -> str:
    fps = r.fps if isinstance(r.fps, str) else f"{r.fps:g} fps"
    lines = [f"{r.source}  (model {r.model}, {fps}, {len(r.frames)} frames fed)"]
    if frames:
        lines += [f"  {format_time(f.time):>9}  {_top_text(f.top)}" for f in r.frames]
    lines.append(f"  {'summary':>9}  {_top_text(r.summary)}")
    if r.segments is not None:
        lines.append(f"  segments ({len(r.segments)})")
        lines += [
            f"  {format_time(s.start):>9} - {format_time(s.end):<9} {s.label} (peak {s.peak:.2f})"
            for s in r.segments
        ]
    return "\n".join(lines) + "\n\n"


def _jsonl(r: VideoResult, frames: bool) -> str:
    rows = []
    if frames:
        rows += [{"source": r.source, **f.to_dict()} for f in r.frames]
    d = r.to_dict()
    rows += [{"source": r.source, "segment": s} for s in d.get("segments", [])]
    rows.append({"source": r.source, "model": r.model, "fps": r.fps, "summary": d["summary"]})
    return "".join(json.dumps(row) + "\n" for row in rows)


def _csv(r: VideoResult, frames: bool, header: bool) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if header:
        w.writerow(CSV_FIELDS)
    if frames:
        for f in r.frames:
            for rank, c in enumerate(f.top, 1):
                row = [r.source, "frame", f"{f.time:.4f}", rank, c.label, c.index, f"{c.score:.6f}"]
                w.writerow([*row, ""])
    for s in r.segments or []:
        w.writerow(
            [
                r.source,
                "segment",
                f"{s.start:.4f}",
                "",
                s.label,
                s.index,
                f"{s.peak:.6f}",
                f"{s.end:.4f}",
            ]
        )
    for rank, c in enumerate(r.summary, 1):
        w.writerow([r.source, "summary", "", rank, c.label, c.index, f"{c.score:.6f}", ""])
    return buf.getvalue()


def write_atomic(path: str | os.PathLike, text: str) -> None:
    """Replace ``path`` with ``text`` in one step: a reader never sees a half-written file."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent or ".", prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        _files.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
