"""A folder of labelled clips: one subfolder per class; contiguous or explicit splits."""

from __future__ import annotations

import logging
import os
import re
import stat
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import VidclsError

log = logging.getLogger("vidcls")
SPLITS = ("all", "val")
VIDEO_EXTENSIONS = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".gif"}
UNLABELLED = "unlabelled"  # DIR/unlabelled/: clips waiting for a label, never a class
MAX_LABEL = 100  # characters of a label: its folder's name, and a line of the label file
MAX_LABEL_BYTES = 200  # the same in UTF-8 (a file name has at most 255 bytes)


def label_problem(label: object) -> str | None:
    """Why ``label`` (already stripped) cannot be a class, or None. The one rule for a label,
    wherever it comes from (annotations, the teaching page, a class folder): text, a plain
    folder name (no ``/``, ``\\``, leading ``.``), no control characters or line breaks (a
    label is one line of the model's label file), at most MAX_LABEL characters."""
    if not isinstance(label, str):
        return f"must be text, not {type(label).__name__}"
    if not label:
        return "empty"
    if len(label) > MAX_LABEL or len(label.encode("utf-8", "replace")) > MAX_LABEL_BYTES:
        return f"over {MAX_LABEL} characters"
    if label.startswith(".") or "/" in label or "\\" in label:
        return "must be a plain folder name: no '/', '\\' or leading '.'"
    if any(unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") for c in label):
        return "has a line break or a control character"
    if label == UNLABELLED:
        return f"{UNLABELLED!r} is for clips still to label"
    return None


def check_label(label: object, where: str | os.PathLike | None = None) -> str:
    """``label`` stripped, if it can be a class (see :func:`label_problem`); else VidclsError
    naming ``where``."""
    if isinstance(label, str):
        label = label.strip()
    problem = label_problem(label)
    if problem is not None:
        shown = repr(label) if len(repr(label)) <= 60 else repr(label)[:50] + "..."
        raise VidclsError(f"not a label: {shown} ({problem})", where)
    return label


@dataclass(frozen=True)
class Clip:
    """One labelled clip."""

    path: Path
    label: str
    index: int  # class index


@dataclass
class Dataset:
    """The classes (sorted folder names), the clips of each part, and what was skipped."""

    classes: list[str]
    train: list[Clip]
    val: list[Clip]
    skipped: list[str] = field(default_factory=list)  # what scanning passed over, and why
    folders: bool = False  # the split is train/ and val/ folders, not a fraction held out

    def counts(self) -> dict[str, dict[str, int]]:
        """``{class: {"train": clips, "val": clips}}``."""
        return {
            c: {
                "train": sum(x.label == c for x in self.train),
                "val": sum(x.label == c for x in self.val),
            }
            for c in self.classes
        }


def natural_key(path: Path) -> list:
    """``clip_2`` before ``clip_10``."""
    return [int(s) if s.isdigit() else s.lower() for s in re.split(r"(\d+)", path.name)]


def scan_classes(
    root: str | os.PathLike, skipped: list[str] | None = None
) -> dict[str, list[Path]]:
    """``{class: [clip paths, naturally sorted]}``. Empty class folders, and entries named like
    clips that are not regular files (folders, FIFOs, broken links), folders whose name
    cannot be a label (``unlabelled/``, line breaks, too long) and links to folders outside
    ``root`` are skipped with a warning and added to ``skipped``; nothing is opened, so
    nothing can hang."""
    root = Path(root)
    if not root.is_dir():
        problem = "not a folder" if os.path.lexists(root) else "dataset folder not found"
        raise VidclsError(problem, root)
    notes = [] if skipped is None else skipped
    found = {}
    inside = root.resolve()
    for folder in _entries(root):
        if folder.name.startswith(".") or not folder.is_dir():
            continue
        problem = label_problem(folder.name) or _outside(folder, inside)
        if problem:
            notes.append(f"{folder}: {problem}")
            log.warning("skipping %s", notes[-1])
            continue
        clips = []
        for p in _entries(folder):
            if p.suffix.lower() not in VIDEO_EXTENSIONS:
                continue
            problem = not_a_clip(p)
            if problem:
                notes.append(f"{p}: {problem}")
                log.warning("skipping %s", notes[-1])
            else:
                clips.append(p)
        if not clips:
            notes.append(f"{folder}: no video clips in it")
            log.warning("skipping %s", notes[-1])
            continue
        found[folder.name] = sorted(clips, key=natural_key)
    return found


def _outside(folder: Path, root: Path) -> str | None:
    """Why a class folder that is a symbolic link is not counted (it leads outside ``root``)."""
    if not folder.is_symlink():
        return None
    try:
        inside = folder.resolve(strict=True).is_relative_to(root)
    except (OSError, RuntimeError):
        inside = False
    return None if inside else "a symbolic link to a folder outside the dataset"


def not_a_clip(path: Path) -> str | None:
    """Why ``path`` cannot be a clip (it is not a regular file), or None."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "broken symbolic link"
    except OSError as e:  # a symlink loop, a name too long, ...
        return f"cannot be read ({e.strerror or e})"
    if stat.S_ISDIR(mode):
        return "a folder, not a video file"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe), not a video file"
    if not stat.S_ISREG(mode):
        return "not a regular file"
    return None


def _entries(folder: Path) -> list[Path]:
    """The folder's entries, sorted; VidclsError naming it when it cannot be listed."""
    try:
        return sorted(folder.iterdir())
    except OSError as e:
        raise VidclsError(f"cannot list folder ({e.strerror or e})", folder) from None


def load_dataset(
    root: str | os.PathLike, val_fraction: float = 0.3, classes: list[str] | None = None
) -> Dataset:
    """Clips under ``root``, split for validation.

    With ``root/train`` and ``root/val`` folders, those are the split. Otherwise the last
    ``val_fraction`` of each class's clips (in natural order) is held out: neighbouring clips
    often come from the same source video, so a random split would leak.
    """
    root = Path(root)
    skipped: list[str] = []
    if split_folders(root):
        train_c = scan_classes(root / "train", skipped)
        val_c = scan_classes(root / "val", skipped)
        names = classes or sorted(train_c)
        _check_classes(names, root)
        missing = [c for c in val_c if c not in names]
        if missing:
            raise VidclsError(f"validation classes not in training: {', '.join(missing)}", root)
        return Dataset(names, _clips(train_c, names), _clips(val_c, names), skipped, True)
    found = scan_classes(root, skipped)
    names = classes or sorted(found)
    _check_classes(names, root)
    train, val = split_contiguous(found, names, val_fraction)
    return Dataset(names, train, val, skipped)


def split_contiguous(
    found: dict[str, list[Path]], names: list[str], val_fraction: float
) -> tuple[list[Clip], list[Clip]]:
    """Training and validation clips: the last ``val_fraction`` of each class's clips held
    out (at least one when the class has two or more)."""
    if not 0 <= val_fraction < 1:
        raise VidclsError(f"validation fraction must be in [0, 1), not {val_fraction}")
    train, val = {}, {}
    for c in names:
        clips = found.get(c, [])
        n_val = round(len(clips) * val_fraction)
        if val_fraction > 0 and len(clips) >= 2:
            n_val = max(1, n_val)
        train[c], val[c] = clips[: len(clips) - n_val], clips[len(clips) - n_val :]
    return _clips(train, names), _clips(val, names)


def split_folders(root: str | os.PathLike) -> bool:
    """Whether ``root`` has ``train/`` and ``val/`` folders (an explicit split)."""
    root = Path(root)
    return (root / "train").is_dir() and (root / "val").is_dir()


def _check_classes(names: list[str], root: Path) -> None:
    if len(names) < 2:
        raise VidclsError(
            f"need at least 2 class folders with clips, found {len(names)}"
            + (f" ({names[0]})" if names else ""),
            root,
        )


def _clips(by_class: dict[str, list[Path]], names: list[str]) -> list[Clip]:
    return [Clip(p, c, names.index(c)) for c in names for p in by_class.get(c, [])]


def labelled_clips(
    root: str | os.PathLike,
    split: str = "all",
    val_fraction: float = 0.3,
    skipped: list[str] | None = None,
) -> tuple[list[str], list[Clip]]:
    """The classes and clips to evaluate on: every clip (``split="all"``; with ``train/`` and
    ``val/`` folders, both), or the held-out part as :func:`load_dataset` splits it. What was
    skipped while scanning is added to ``skipped``."""
    if split not in SPLITS:
        raise VidclsError(f"split must be 'all' or 'val', not {split!r}")
    root = Path(root)
    explicit = split_folders(root)
    if explicit:  # the split is the folders: val, or train and val together
        found: dict[str, list[Path]] = {}
        for part in ["val"] if split == "val" else ["train", "val"]:
            for c, paths in scan_classes(root / part, skipped).items():
                found.setdefault(c, []).extend(paths)
    else:
        found = scan_classes(root, skipped)
    if not found:
        raise VidclsError("no class folders with clips", root)
    names = sorted(found)
    if split == "val" and not explicit:
        return names, split_contiguous(found, names, val_fraction)[1]
    return names, _clips(found, names)
