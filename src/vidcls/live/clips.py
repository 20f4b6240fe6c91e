"""What an event shows: a clip of the source around it and a snapshot of its best moment.

:class:`EventClips` follows a live run's results and events (on the thread that hands them to
the outputs). When a segment starts it asks the source for a clip (its own packets, remuxed
without re-encoding, ``pre_roll`` seconds before the start to ``post_roll`` after the end;
see :mod:`vidcls.media.record`); while the segment is the source's leading class it keeps the
full-size picture where its label scored highest; at the end it writes that picture as a JPEG
with the label, score and time drawn, and the end event carries ``clip`` and ``snapshot``.
Files go to ``FOLDER/<source>/<start>_<label>.mp4|.jpg`` (start: local time of the segment's
start; ``<start>_<zone>_<label>`` for a zone); the oldest go first past ``keep_days`` or
``keep_gb`` (a clip's browser copy, made by the server, counts and goes with it). A folder
that cannot be written costs the clip or snapshot (one warning line), never the event or the
source.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import VidclsError
from ..media import RecordOptions
from ..media.playable import clip_of, copy_path
from ..results import FrameResult, SegmentEvent
from .capture import FrameSource

log = logging.getLogger("vidcls")
KINDS = (".mp4", ".jpg")
LEADING = 0.3  # a leading score below this is not a segment's beginning (enter is 0.5)


@dataclass(frozen=True)
class ClipOptions:
    """Where event clips and snapshots go and how much of them is kept."""

    folder: str | os.PathLike
    pre_roll: float = 5.0
    post_roll: float = 3.0
    max_clip: float = 120.0
    keep_days: float | None = None
    keep_gb: float | None = None
    snapshots: bool = True

    def __post_init__(self) -> None:
        self.record  # noqa: B018 - checks the seconds
        for name in ("keep_days", "keep_gb"):
            value = getattr(self, name)
            if value is not None and not (0 < value < float("inf")):
                raise ValueError(f"{name} must be a positive number, got {value!r}")

    @property
    def record(self) -> RecordOptions:
        """What each source's recorder keeps."""
        return RecordOptions(self.pre_roll, self.post_roll, self.max_clip)


def make_folder(folder: str | os.PathLike) -> Path:
    """The clips folder, made if missing; VidclsError naming it when it is not a folder (a
    file by that name) or cannot be made or written, before anything starts."""
    path = Path(folder)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise VidclsError("is a file, not a folder for the clips", folder) from None
    except (OSError, ValueError) as e:
        why = getattr(e, "strerror", None) or str(e)
        raise VidclsError(f"cannot make the clips folder ({why})", folder) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise VidclsError("cannot write in the clips folder (permission denied)", folder)
    return path


@dataclass
class _Open:
    """A source's segment being recorded, and its best picture so far."""

    label: str
    stem: str  # FOLDER/<source>/<start>_<label>, without the suffix
    clip: bool  # whether the source records one
    score: float = -1.0
    picture: np.ndarray | None = None
    time: float = 0.0


class EventClips:
    """Clips and snapshots for the segments of ``sources`` (name: source); ``started(name)``
    is the time on ``clock`` (the engine's) a source's times count from."""

    def __init__(
        self,
        options: ClipOptions,
        sources: dict[str, FrameSource],
        started: Callable[[str], float | None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.options, self.sources, self.started = options, sources, started
        self._epoch = time.time() - clock()  # wall time = epoch + clock time
        self.folder = Path(options.folder)
        self._open: dict[str, _Open] = {}
        self._stems: set[str] = set()
        self._leading: dict[str, tuple[str, float, np.ndarray | None, float]] = {}

    def result(self, name: str, result: FrameResult) -> None:
        """Keep the best picture of the source's leading label (of its open segment)."""
        if not self.options.snapshots or not result.top:
            return
        current = self._open.get(name)
        if current is not None:
            score = next((c.score for c in result.top if c.label == current.label), None)
            if score is not None and score > current.score:
                current.score, current.time = score, result.time
                current.picture = self._picture(name, current.picture)
            return
        top = result.top[0]  # before a segment is announced: its label leads
        if top.score < LEADING:  # no segment is near: no full-size picture fetched
            return
        label, score, picture, _ = self._leading.get(name, ("", -1.0, None, 0.0))
        if top.label != label:
            label, score, picture = top.label, -1.0, None
        if top.score > score:
            picture = self._picture(name, picture)
            score = top.score
            self._leading[name] = (label, score, picture, result.time)

    def event(self, name: str, event: SegmentEvent) -> SegmentEvent:
        """The event, the end of a segment with its ``clip`` and ``snapshot``."""
        segment = event.segment
        if event.kind == "start":
            self._begin(name, event)
            return event
        current = self._open.pop(name, None)
        if current is None or current.label != segment.label:
            return event
        origin = self.started(name)
        clip = current.stem + ".mp4" if current.clip and origin is not None else None
        if clip is not None:
            try:
                self.sources[name].clip(clip, origin + segment.start, origin + segment.end)
            except Exception as e:  # noqa: BLE001 - a clip is never worth the event
                log.warning("cannot ask %s for a clip (%s)", name, e)
                clip = None
        if current.picture is None and self.options.snapshots:  # no frame seen leading it
            current.picture, current.score = self._picture(name, None), segment.peak
            current.time = segment.end
        snapshot = self._snapshot(current, segment.peak)
        self._prune()
        return dataclasses.replace(event, clip=clip, snapshot=snapshot)

    def _begin(self, name: str, event: SegmentEvent) -> None:
        segment, origin = event.segment, self.started(name)
        wall = time.time() if origin is None else self._epoch + origin + segment.start
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(wall))
        source, zone = getattr(name, "source", name), getattr(name, "zone", None)
        label = _safe(segment.label) if zone is None else f"{_safe(zone)}_{_safe(segment.label)}"
        stem = str(self.folder / _safe(source) / f"{stamp}_{label}")
        if stem in self._stems or Path(stem + ".mp4").exists():  # same second, same label
            stem += f"-{len(self._stems)}"
        self._stems.add(stem)
        clip = False
        if origin is not None:
            try:
                clip = self.sources[name].clip(stem + ".mp4", origin + segment.start)
            except Exception as e:  # noqa: BLE001 - a clip is never worth the event
                log.warning("cannot ask %s for a clip (%s)", name, e)
        current = _Open(segment.label, stem, clip)
        label, score, picture, at = self._leading.pop(name, ("", -1.0, None, 0.0))
        if label == segment.label:
            current.score, current.picture, current.time = score, picture, at
        self._open[name] = current

    def _picture(self, name: str, fallback: np.ndarray | None) -> np.ndarray | None:
        try:
            picture = self.sources[name].picture()
        except Exception as e:  # noqa: BLE001 - a source going away: keep the last one
            log.debug("no picture from %s: %s", name, e)
            return fallback
        return fallback if picture is None else picture

    def _snapshot(self, current: _Open, peak: float) -> str | None:
        if not self.options.snapshots or current.picture is None:
            return None
        import cv2

        from ..overlay import draw_results
        from ..results import Category

        bgr = cv2.cvtColor(current.picture, cv2.COLOR_RGB2BGR)
        draw_results(
            bgr, [Category(current.label, 0, current.score)], status=f"t {current.time:.1f} s"
        )
        path = Path(current.stem + ".jpg")
        part = path.with_name(f".{path.name}.part")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 85])
            if not ok:
                raise OSError("JPEG encoding failed")
            part.write_bytes(data.tobytes())
            os.replace(part, path)
        except OSError as e:
            with contextlib.suppress(OSError):
                part.unlink(missing_ok=True)
            log.warning("cannot write snapshot %s (%s)", path, e.strerror or e)
            return None
        return str(path)

    def _prune(self) -> None:
        keep_within(self.folder, self.options)


def keep_within(folder: Path, options: ClipOptions) -> None:
    """Prune ``folder`` to ``options``' ``keep_days`` and ``keep_gb`` (if set); a folder that
    cannot be pruned is a warning, never an error."""
    if options.keep_days is None and options.keep_gb is None:
        return
    try:
        prune(folder, options.keep_days, options.keep_gb)
    except OSError as e:
        log.warning("cannot prune %s (%s)", folder, e.strerror or e)


def prune(folder: Path, keep_days: float | None, keep_gb: float | None) -> list[Path]:
    """Delete the oldest clips and snapshots under ``folder``: those older than ``keep_days``,
    then more until they take at most ``keep_gb``; returns what was deleted. A clip's browser
    copy (:func:`~vidcls.media.playable.copy_path`) counts with its clip and goes with it; a
    copy whose clip is gone is deleted."""
    files = []
    for path in folder.glob("*/*"):
        if path.suffix in KINDS and not path.name.startswith("."):
            st = path.stat()
            copy = copy_path(path) if path.suffix == ".mp4" else None
            size = st.st_size + _size(copy)
            files.append((st.st_mtime, size, path, copy))
        elif (clip := clip_of(path)) is not None and not clip.exists():
            path.unlink(missing_ok=True)  # the copy of a clip deleted by hand
    files.sort()
    now, total = time.time(), sum(size for _, size, _, _ in files)
    deleted = []
    for mtime, size, path, copy in files:
        old = keep_days is not None and now - mtime > keep_days * 86400
        big = keep_gb is not None and total > keep_gb * 1e9
        if not (old or big):
            break
        path.unlink(missing_ok=True)
        if copy is not None:
            copy.unlink(missing_ok=True)
        total -= size
        deleted.append(path)
    return deleted


def _size(path: Path | None) -> int:
    """A file's size; 0 for none or one that is not there."""
    try:
        return 0 if path is None else path.stat().st_size
    except OSError:
        return 0


def _safe(text: str) -> str:
    """A name for a file: letters, digits, ``-``, ``.`` and ``_`` (spaces become ``-``)."""
    return re.sub(r"[^\w.-]+", "-", text).strip("-.") or "source"
