"""Clips gathered into a dataset folder (``DIR/<label>/<clip>.mp4``, what ``vidcls train`` and
``evaluate`` read): cut from long videos by their annotations, or imported from the event
clips ``vidcls live --clips`` records (into ``DIR/unlabelled/``; :mod:`.importing`).

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
from dataclasses import dataclass
from pathlib import Path

from ..errors import VidclsError
from ..files import is_regular, read_text
from ..media.cut import MAX_SECONDS, Cut, cut_clip
from .dataset import UNLABELLED, check_label
from .importing import Imported, import_events
from .progress import Progress, count

__all__ = ["UNLABELLED", "Annotation", "Imported", "cut_annotations", "import_events"]
ANNOTATIONS_LIMIT = 64 * 1024 * 1024  # bytes of an annotation file read at most
MAX_JSON_DEPTH = 32  # nested lists and objects in JSON annotations (classify's: 4)


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
        label = check_label(label, where)
        if not isinstance(video, str):
            raise VidclsError(f"a video is named by text, not {type(video).__name__}", where)
        out.append(Annotation(_video(video, given, path, where), start_s, end_s, label, line))
    if not out:
        raise VidclsError("no annotations", path)
    return out


def _csv_rows(text: str, path: Path) -> list[tuple[int, tuple]]:
    rows, n = [], 0
    try:
        for n, row in enumerate(csv.reader(io.StringIO(text)), 1):
            rows += _csv_row(n, row, path)
    except csv.Error as e:  # a field over csv's size limit, ...
        raise VidclsError(f"not CSV ({e})", f"{path}:{n + 1}") from None
    return rows


def _csv_row(n: int, row: list[str], path: Path) -> list[tuple[int, tuple]]:
    """Row ``n`` as ``[(n, (video, start, end, label))]``; ``[]`` for a blank line, a
    comment or the header."""
    if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
        return []
    if n == 1 and [c.strip().lower() for c in row] == ["video", "start", "end", "label"]:
        return []
    if len(row) != 4:
        raise VidclsError(
            f"expected 4 columns (video,start,end,label), found {len(row)}", f"{path}:{n}"
        )
    return [(n, tuple(c.strip() for c in row))]


def _json_depth(text: str, most: int = MAX_JSON_DEPTH) -> int:
    """How deep the lists and objects of a JSON text nest (counted up to just past ``most``),
    without parsing (the parser recurses once per level) and without a regular expression
    (whose backtracking grows with a string's escapes): brackets outside strings, a megabyte
    at a time."""
    import numpy as np

    kinds = np.zeros(256, np.int8)  # 1 opens, -1 closes, 2 a quote, 3 a backslash
    kinds[[91, 123]], kinds[[93, 125]], kinds[34], kinds[92] = 1, -1, 2, 3
    data = np.frombuffer(text.encode("utf-8", "replace"), np.uint8)
    depth = deepest = 0
    quoted = backslashes = 0  # carried over: inside a string; backslashes just before
    for start in range(0, len(data), 1 << 20):
        kind = kinds[data[start : start + (1 << 20)]]
        quote = kind == 2
        if backslashes or (kind == 3).any():  # a quote after an odd run of them is text
            at = np.arange(len(kind), dtype=np.int32)
            last = np.maximum.accumulate(np.where(kind != 3, at, -1))  # last non-backslash
            before = np.concatenate(([-1], last[:-1]))
            run = at - 1 - before + np.where(before == -1, backslashes, 0)
            quote &= run % 2 == 0
            backslashes = int(len(kind) - 1 - last[-1]) + (backslashes if last[-1] < 0 else 0)
        quotes = np.cumsum(quote, dtype=np.int32) + quoted
        step = np.where((quotes % 2 == 0) & (kind < 2), kind, 0)
        running = depth + np.cumsum(step, dtype=np.int32)
        deepest, depth = max(deepest, int(running.max())), int(running[-1])
        quoted = int(quotes[-1]) % 2
        if deepest > most:
            break
    return deepest


def _json_rows(text: str, path: Path) -> list[tuple[int, tuple]]:
    if _json_depth(text) > MAX_JSON_DEPTH:
        raise VidclsError(f"JSON nested more than {MAX_JSON_DEPTH} deep", path)
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
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:30] + "..."
    try:
        if isinstance(value, bool):
            raise TypeError
        t = float(value)
    except (TypeError, ValueError, OverflowError):
        raise VidclsError(f"not a time in seconds: {shown}", where) from None
    if not (math.isfinite(t) and t >= 0):
        raise VidclsError(f"not a time in seconds: {shown}", where)
    if t > MAX_SECONDS:
        raise VidclsError(f"{t:g} s is past any video (at most {MAX_SECONDS:g} s)", where)
    return t


def _video(name: str, given: list[Path], annotations: Path, where: str) -> Path:
    """The video an annotation names: one given (same path or file name), else a file beside
    the annotations; VidclsError when neither (a name with a NUL or too long is neither)."""
    for v in given:
        if name in (str(v), v.name) or _same_file(v, name):
            return v
    beside = annotations.parent / name
    if name and is_regular(beside):
        return beside
    shown = repr(name) if len(name) <= 80 else repr(name[:60]) + "..."
    raise VidclsError(f"the video {shown} is neither given nor beside the annotations", where)


def _same_file(a: Path, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):  # missing, a NUL, a name too long
        return False


def clip_name(a: Annotation) -> str:
    """``<video>_<start>-<end>.mp4``, times in milliseconds: unique per video and span (a
    long video name is shortened, so that the clip's name fits in a file name)."""
    stem = a.video.stem.encode("utf-8", "replace")[:150].decode("utf-8", "ignore")
    return f"{stem}_{round(a.start * 1000):07d}-{round(a.end * 1000):07d}.mp4"


def cut_annotations(
    annotations: list[Annotation], out: str | os.PathLike, copy: bool = False, progress=None
) -> list[Cut]:
    """One clip per annotation as ``out/<label>/<clip>.mp4`` (see :mod:`vidcls.media.cut`);
    one phase, advancing per clip. Every video is opened, every span checked against its
    video's length and every folder to write checked before the first clip is cut (so those
    errors come before any progress); a clip that cannot be cut then stops the run with its
    annotation's line, and the clips already written stay."""
    out = Path(out)
    check_cuts(annotations, out)
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


def check_cuts(annotations: list[Annotation], out: Path) -> None:
    """VidclsError, before anything is cut, for a video that cannot be read, a span shorter
    than one of its frames or starting after its end, or an output folder (``out`` or
    ``out/<label>``) that is not a folder, is a symbolic link (not written through) or cannot
    be made."""
    from ..media import VideoFile

    lengths: dict[Path, tuple[float | None, float]] = {}
    for a in annotations:
        if a.video not in lengths:
            try:
                with VideoFile(a.video) as v:
                    lengths[a.video] = (v.info.duration, 1 / (v.info.fps or 30.0))
            except VidclsError as e:
                raise VidclsError(f"{e.message} (annotation at line {a.line})", a.video) from None
        length, interval = lengths[a.video]
        if a.end - a.start < interval:
            raise VidclsError(
                f"the span {a.start:g}-{a.end:g} s is shorter than one frame ({interval:.3f} s):"
                f" no clip (annotation at line {a.line})",
                a.video,
            )
        if length is not None and a.start >= length:
            raise VidclsError(
                f"the span {a.start:g}-{a.end:g} s starts after the video's end ({length:.2f} s)"
                f" (annotation at line {a.line})",
                a.video,
            )
    make_folder(out)
    for label in sorted({a.label for a in annotations}):
        folder = out / label
        if folder.is_symlink() or (os.path.lexists(folder) and not folder.is_dir()):
            what = "a symbolic link" if folder.is_symlink() else "not a folder"
            raise VidclsError(f"is {what}: clips of {label!r} are not written there", folder)


def make_folder(folder: Path) -> None:
    """``folder`` made if missing; VidclsError naming it when it cannot be."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise VidclsError("is a file, not a folder", folder) from None
    except OSError as e:
        raise VidclsError(f"cannot make the folder ({e.strerror or e})", folder) from None
