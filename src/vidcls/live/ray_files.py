"""Files that travel between the driver and the Ray group actors (see :mod:`.ray_groups`):
the model (and the labels beside it) out to every actor, whatever its node, and each clip
and snapshot an actor records back to the driver's clips folder.

A model goes as a bundle, put in Ray's object store for each actor started
(:func:`model_files`): the file's bytes under its own name, and a label file found beside
it under its own name too, so that an actor that writes them into a folder of its own
(:func:`unpack_model`) finds the same labels the driver does (embedded in the model first,
then beside it). Labels given as a file are sent as their list.

A recorded file comes back as a message ``("f", target, data)``: ``target`` is
``("clip", relative path)`` for a file under the clips folder, or ``("record", path)`` for a
clip the driver asked for at ``path``. :class:`Landing` writes it on the driver (``.part``,
then renamed): a snapshot before the event that names it is handed on, a clip once written
(the event has gone on by then, as on one box).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from pathlib import Path, PurePosixPath

from ..labels import KINETICS600, embedded_labels, labels_beside, read_labels

log = logging.getLogger("vidcls")


def model_files(options) -> dict:
    """The bundle of ``options``' model (a :class:`~vidcls.classifier.ClassifierOptions`):
    ``name``, ``files`` (name: bytes) and ``labels`` (None, ``kinetics600`` or a list)."""
    from ..zoo import resolve_model

    path = Path(resolve_model(options.model))
    files = {path.name: path.read_bytes()}
    labels = options.labels
    if labels is not None and not isinstance(labels, list) and labels != KINETICS600:
        labels = read_labels(labels)
    elif labels is None and embedded_labels(path) is None:
        beside = labels_beside(path)
        if beside is not None:
            files[beside.name] = beside.read_bytes()
    return {"name": path.name, "files": files, "labels": labels}


def model_key(model) -> tuple:
    """What identifies a model file's contents for the cache of bundles: its path, size and
    time of change."""
    from ..zoo import resolve_model

    path = Path(resolve_model(model)).resolve()
    st = path.stat()
    return (str(path), st.st_size, st.st_mtime_ns)


def unpack_model(bundle: dict, folder: Path) -> Path:
    """Write ``bundle``'s files into ``folder`` (made); the model's path there."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in bundle["files"].items():
        (folder / name).write_bytes(data)
    return folder / bundle["name"]


def local_options(options, bundle: dict, folder: Path):
    """``options`` with the model unpacked into ``folder`` and the bundle's labels."""
    path = unpack_model(bundle, folder)
    return dataclasses.replace(options, model=str(path), labels=bundle["labels"])


def relative(path: str | os.PathLike, folder: Path) -> str | None:
    """``path`` under ``folder`` as a relative POSIX path (None: not under it)."""
    try:
        return Path(path).relative_to(folder).as_posix()
    except ValueError:
        return None


class Landing:
    """Where the driver writes the files the actors send: ``folder`` (the clips folder,
    None without clips) and the paths of clips asked for (:meth:`expect`). Past a file it
    prunes the folder as the config keeps it (``keep_days``, ``keep_gb``)."""

    def __init__(self, clips) -> None:
        self.clips = clips
        self.folder = None if clips is None else Path(clips.folder)
        self._asked: set[str] = set()

    def expect(self, path: str) -> None:
        """A clip asked for at ``path`` may come."""
        self._asked.add(os.fspath(path))

    def write(self, target: tuple, data: bytes) -> Path | None:
        """Write one file sent (see the module's docstring); None when it cannot (logged)."""
        kind, where = target
        if kind == "record" and where in self._asked:
            self._asked.discard(where)
            path = Path(where)
        elif kind == "clip" and self.folder is not None and _inside(where):
            path = self.folder / where
        else:
            log.warning("a group sent a file the driver did not expect (%s)", where)
            return None
        part = path.with_name(f".{path.name}.part")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            part.write_bytes(data)
            os.replace(part, path)
        except OSError as e:
            with contextlib.suppress(OSError):
                part.unlink(missing_ok=True)
            log.warning("cannot write %s (%s)", path, e.strerror or e)
            return None
        if kind == "clip":
            self._prune()
        return path

    def _prune(self) -> None:
        from .clips import keep_within

        keep_within(self.folder, self.clips)


def _inside(relative: str) -> bool:
    """Whether ``relative`` names a file under a folder (no absolute path, no ``..``)."""
    p = PurePosixPath(relative)
    return bool(p.parts) and not p.is_absolute() and ".." not in p.parts
