"""Clips gathered into a dataset folder (``DIR/<label>/<clip>.mp4``, what ``vidcls train`` and
``evaluate`` read): cut from long videos by their annotations, or imported from the event
clips ``vidcls live --clips`` records (into ``DIR/unlabelled/``).

Annotations are a CSV of ``video,start,end,label`` (times in seconds; a header row is
optional; ``video`` names one of the videos given, by path or file name, or a path relative to
the CSV), or the JSON that ``vidcls classify --format json --segments`` prints (one object, a
list of them, or one per line: each its ``source`` and ``segments``).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..errors import VidclsError
from ..files import read_text
from ..media.cut import Cut, cut_clip
from .dataset import VIDEO_EXTENSIONS
from .progress import Progress, count

UNLABELLED = "unlabelled"
ANNOTATIONS_LIMIT = 64 * 1024 * 1024  # bytes of an annotation file read at most


@dataclass(frozen=True)
class Annotation:
    """A labelled span of a video; ``line``: where the annotation file says so."""

    video: Path
    start: float
    end: float
    label: str
    line: int


def read_annotations(path: str | os.PathLike, videos: list[str | os.PathLike]) -> list[Annotation]:
    """The annotations in ``path`` (CSV or segment JSON), each naming one of ``videos`` or a
    file relative to ``path``; VidclsError naming the file and line of the first bad one."""
    path, text = read_text(path, "annotations", ANNOTATIONS_LIMIT)
    given = [Path(v) for v in videos]
    is_json = text.lstrip().startswith(("{", "["))
    rows = _json_rows(text, path) if is_json else _csv_rows(text, path)
    out = []
    for line, (video, start, end, label) in rows:
        where = f"{path}:{line}"
        start_s, end_s = _seconds(start, where), _seconds(end, where)
        if not start_s < end_s:
            raise VidclsError(f"start ({start_s:g}) is not before end ({end_s:g})", where)
        label = str(label).strip()
        if not label or label.startswith(".") or re.search(r"[/\\\0]", label):
            raise VidclsError(f"a label must be a plain folder name, not {label!r}", where)
        out.append(Annotation(_video(str(video), given, path, where), start_s, end_s, label, line))
    if not out:
        raise VidclsError("no annotations", path)
    return out


def _csv_rows(text: str, path: Path) -> list[tuple[int, tuple]]:
    rows = []
    for n, row in enumerate(csv.reader(io.StringIO(text)), 1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        if n == 1 and [c.strip().lower() for c in row] == ["video", "start", "end", "label"]:
            continue
        if len(row) != 4:
            raise VidclsError(
                f"expected 4 columns (video,start,end,label), found {len(row)}", f"{path}:{n}"
            )
        rows.append((n, tuple(c.strip() for c in row)))
    return rows


def _json_rows(text: str, path: Path) -> list[tuple[int, tuple]]:
    try:
        docs = json.loads(text)
        docs = docs if isinstance(docs, list) else [docs]
    except json.JSONDecodeError:
        try:  # one JSON object per line
            docs = [json.loads(x) for x in text.splitlines() if x.strip()]
        except json.JSONDecodeError as e:
            raise VidclsError(f"not CSV or JSON ({e.msg} at line {e.lineno})", path) from None
    rows = []
    for n, doc in enumerate(docs, 1):
        if not isinstance(doc, dict) or not isinstance(doc.get("segments"), list):
            raise VidclsError("each JSON object needs 'source' and 'segments'", f"{path}: #{n}")
        for seg in doc["segments"]:
            if not isinstance(seg, dict):
                raise VidclsError("a segment must be an object", f"{path}: #{n}")
            rows.append(
                (n, (doc.get("source", ""), seg.get("start"), seg.get("end"), seg.get("label")))
            )
    return rows


def _seconds(value, where: str) -> float:
    try:
        t = float(value)
    except (TypeError, ValueError):
        raise VidclsError(f"not a time in seconds: {value!r}", where) from None
    if not (math.isfinite(t) and t >= 0):
        raise VidclsError(f"not a time in seconds: {value!r}", where)
    return t


def _video(name: str, given: list[Path], annotations: Path, where: str) -> Path:
    """The video an annotation names: one given (same path or file name), else a file beside
    the annotations; VidclsError when neither."""
    for v in given:
        if name in (str(v), v.name) or (v.exists() and Path(name).exists() and v.samefile(name)):
            return v
    beside = annotations.parent / name
    if name and beside.is_file():
        return beside
    raise VidclsError(f"the video {name!r} is neither given nor beside the annotations", where)


def clip_name(a: Annotation) -> str:
    """``<video>_<start>-<end>.mp4``, times in milliseconds: unique per video and span."""
    return f"{a.video.stem}_{round(a.start * 1000):07d}-{round(a.end * 1000):07d}.mp4"


def cut_annotations(
    annotations: list[Annotation], out: str | os.PathLike, copy: bool = False, progress=None
) -> list[Cut]:
    """One clip per annotation as ``out/<label>/<clip>.mp4`` (see :mod:`vidcls.media.cut`);
    one phase, advancing per clip. A clip that cannot be cut stops the run with its
    annotation's line; the clips already written stay."""
    out = Path(out)
    done = []
    detail = f"{count(len(annotations), 'clip')} into {out}"
    with Progress(progress).phase("cutting", detail, "cut", len(annotations), "clip") as phase:
        for a in annotations:
            try:
                done.append(cut_clip(a.video, a.start, a.end, out / a.label / clip_name(a), copy))
            except VidclsError as e:
                raise VidclsError(f"{e.message} (annotation at line {a.line})", a.video) from None
            phase.advance()
        copied = sum(c.mode == "copy" for c in done)
        phase.note = f"{copied} stream-copied, {len(done) - copied} re-encoded"
    return done


def import_events(
    clips_dir: str | os.PathLike, out: str | os.PathLike
) -> tuple[list[Path], list[Path]]:
    """Copy the event clips under ``clips_dir`` (``<source>/<start>_<label>.mp4``, as
    ``vidcls live --clips`` writes them) into ``out/unlabelled/`` as
    ``<source>_<start>_<label>.mp4``; ``(copied, already there)``."""
    clips_dir, target = Path(clips_dir), Path(out) / UNLABELLED
    if not clips_dir.is_dir():
        raise VidclsError("not a folder of event clips", clips_dir)
    found = sorted(
        p
        for p in clips_dir.rglob("*")
        if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file() and not p.name.startswith(".")
    )
    if not found:
        raise VidclsError("no event clips found", clips_dir)
    target.mkdir(parents=True, exist_ok=True)
    copied, present = [], []
    for p in found:
        parts = p.relative_to(clips_dir).parts
        name = "_".join(parts)
        dest = target / name
        if dest.exists():
            present.append(dest)
            continue
        part = dest.with_name(f".{name}.part")
        shutil.copyfile(p, part)
        os.replace(part, dest)
        copied.append(dest)
    return copied, present
