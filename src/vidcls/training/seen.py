"""What a trained model was fitted on: the content hashes of its training clips and the split
that chose them, packed into the model so that ``evaluate --split val`` holds out exactly the
clips it never saw, wherever they are now and whatever they are called.

The model's ``vidcls.json`` says ``"trained_on": {"clips", "held_out", "val_fraction",
"hashes"}`` (``val_fraction`` None: ``train/`` and ``val/`` folders made the split); the member
it names holds one hash a line: the first :data:`DIGEST` hex digits of the clip file's SHA-256.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass

from .. import zoo
from ..labels import embedded_config, embedded_file
from .dataset import Dataset

HASHES = "training-clips.txt"  # the member of the model's zip with the hashes
DIGEST = 16  # hex digits kept: 64 bits, no collision in any dataset of a realistic size
HASHES_LIMIT = 32 * 1024 * 1024  # bytes of hashes read back: 2 million clips


def clip_hash(path: str | os.PathLike) -> str | None:
    """The clip file's content hash, or None when it cannot be read."""
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()[:DIGEST]
    except OSError:
        return None


@dataclass(frozen=True)
class TrainedOn:
    """The clips a model was fitted on (their hashes) and how many were held out of them."""

    hashes: frozenset[str]
    held_out: int = 0  # clips kept for validation, never fitted
    val_fraction: float | None = None  # held out per class; None: train/ and val/ folders

    @classmethod
    def of(cls, dataset: Dataset, val_fraction: float | None) -> TrainedOn:
        """The record of a model fitted on ``dataset.train`` (unreadable clips left out)."""
        hashes = frozenset(h for h in map(clip_hash, (c.path for c in dataset.train)) if h)
        return cls(hashes, len(dataset.val), val_fraction)

    def saw(self, path: str | os.PathLike) -> bool:
        """Whether the clip at ``path`` (by its content) was one the model was fitted on."""
        return clip_hash(path) in self.hashes

    def config(self) -> dict:
        """The entry of the model's ``vidcls.json``."""
        return {
            "clips": len(self.hashes),
            "held_out": self.held_out,
            "val_fraction": self.val_fraction,
            "hashes": HASHES,
        }

    def files(self) -> dict[str, str]:
        """The members to pack beside ``vidcls.json``."""
        return {HASHES: "".join(f"{h}\n" for h in sorted(self.hashes))}


def trained_on(model_path: str | os.PathLike) -> TrainedOn | None:
    """What the model records of its training clips; None when it records nothing (the
    official models, fine-tunes from elsewhere, vidcls models older than the record)."""
    if os.fspath(model_path).lower() in zoo.MODELS or not os.path.isfile(model_path):
        return None
    entry = embedded_config(model_path).get("trained_on")
    if not isinstance(entry, dict) or entry.get("hashes") != HASHES:
        return None
    data = embedded_file(model_path, HASHES, HASHES_LIMIT)
    if data is None:
        return None
    try:
        hashes = frozenset(_hashes(data.decode("ascii").split()))
    except (UnicodeDecodeError, ValueError):
        return None
    fraction, held_out = entry.get("val_fraction"), entry.get("held_out", 0)
    fraction = float(fraction) if isinstance(fraction, int | float) else None
    return TrainedOn(hashes, held_out if isinstance(held_out, int) else 0, fraction)


def _hashes(words: Iterable[str]) -> Iterable[str]:
    """The words, each checked to be a hash as :func:`clip_hash` writes them."""
    for w in words:
        if len(w) != DIGEST or any(c not in "0123456789abcdef" for c in w):
            raise ValueError(f"not a clip hash: {w[:40]!r}")
        yield w
