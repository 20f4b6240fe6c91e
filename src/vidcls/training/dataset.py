"""A folder of labelled clips: one subfolder per class; contiguous or explicit splits."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import VidclsError

log = logging.getLogger("vidcls")
SPLITS = ("all", "val")
VIDEO_EXTENSIONS = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".gif"}


@dataclass(frozen=True)
class Clip:
    """One labelled clip."""

    path: Path
    label: str
    index: int  # class index


@dataclass
class Dataset:
    """The classes (sorted folder names) and the clips of each part."""

    classes: list[str]
    train: list[Clip]
    val: list[Clip]

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


def scan_classes(root: str | os.PathLike) -> dict[str, list[Path]]:
    """``{class: [clip paths, naturally sorted]}``; empty class folders are warned about."""
    root = Path(root)
    if not root.is_dir():
        raise VidclsError("dataset folder not found", root)
    found = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        clips = sorted(
            (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS),
            key=natural_key,
        )
        if not clips:
            log.warning("skipping %s: no video clips in it", folder)
            continue
        found[folder.name] = clips
    return found


def load_dataset(
    root: str | os.PathLike, val_fraction: float = 0.3, classes: list[str] | None = None
) -> Dataset:
    """Clips under ``root``, split for validation.

    With ``root/train`` and ``root/val`` folders, those are the split. Otherwise the last
    ``val_fraction`` of each class's clips (in natural order) is held out: neighbouring clips
    often come from the same source video, so a random split would leak.
    """
    root = Path(root)
    explicit = [root / "train", root / "val"]
    if all(p.is_dir() for p in explicit):
        train_c, val_c = scan_classes(explicit[0]), scan_classes(explicit[1])
        names = classes or sorted(train_c)
        _check_classes(names, root)
        missing = [c for c in val_c if c not in names]
        if missing:
            raise VidclsError(f"validation classes not in training: {', '.join(missing)}", root)
        return Dataset(names, _clips(train_c, names), _clips(val_c, names))
    found = scan_classes(root)
    names = classes or sorted(found)
    _check_classes(names, root)
    if not 0 <= val_fraction < 1:
        raise VidclsError(f"validation fraction must be in [0, 1), not {val_fraction}")
    train, val = {}, {}
    for c in names:
        clips = found.get(c, [])
        n_val = round(len(clips) * val_fraction)
        if val_fraction > 0 and len(clips) >= 2:
            n_val = max(1, n_val)
        train[c], val[c] = clips[: len(clips) - n_val], clips[len(clips) - n_val :]
    return Dataset(names, _clips(train, names), _clips(val, names))


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
    root: str | os.PathLike, split: str = "all", val_fraction: float = 0.3
) -> tuple[list[str], list[Clip]]:
    """The classes and clips to evaluate on: every clip (``split="all"``; with ``train/`` and
    ``val/`` folders, both), or the held-out part as :func:`load_dataset` splits it."""
    if split not in SPLITS:
        raise VidclsError(f"split must be 'all' or 'val', not {split!r}")
    root = Path(root)
    explicit = (root / "train").is_dir() and (root / "val").is_dir()
    if explicit:  # the split is the folders: val, or train and val together
        found: dict[str, list[Path]] = {}
        for part in ["val"] if split == "val" else ["train", "val"]:
            for c, paths in scan_classes(root / part).items():
                found.setdefault(c, []).extend(paths)
    else:
        found = scan_classes(root)
    if not found:
        raise VidclsError("no class folders with clips", root)
    names = sorted(found)
    if split == "val" and not explicit:
        return names, load_dataset(root, val_fraction, classes=names).val
    return names, _clips(found, names)
