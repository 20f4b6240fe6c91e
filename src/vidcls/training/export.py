"""The trained classifier written into a copy of the base model: a streaming .tflite that
carries its labels, the rate and window it was trained with, and a label file beside it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..errors import VidclsError
from ..writers import write_bytes
from . import head as heads
from .fit import SoftmaxHead


def check_target(out: str | os.PathLike) -> Path:
    """``out`` as a Path, if it names a .tflite in a folder that exists; else VidclsError."""
    out = Path(out)
    if out.suffix != ".tflite":
        raise VidclsError("the output must be a .tflite file", out)
    if not out.parent.is_dir():
        raise VidclsError("output folder does not exist", out.parent)
    if out.is_dir():
        raise VidclsError("is a folder, not a file to write", out)
    return out


def labels_path(out: Path) -> Path:
    """Where the label file of model ``out`` goes: ``<stem>.labels.txt`` beside it."""
    return out.with_name(out.stem + ".labels.txt")


def export_model(
    base: Path,
    fitted: SoftmaxHead,
    classes: list[str],
    fps: float | None,
    train_logits: np.ndarray,
    out: Path,
    window: float = 0.0,
) -> Path:
    """Write ``base`` with ``fitted`` as its classifier to ``out`` and the label file beside
    it; returns the label file. The logits' int8 range is the training logits' plus 10 %
    margin; ``fps`` (None: every frame) goes into the file as the rate to feed, ``window``
    (seconds, 0: none) as the default window to classify with."""
    margin = 0.1 * (train_logits.max() - train_logits.min())
    exported = heads.replace_classifier(
        base.read_bytes(),
        fitted.weight,
        fitted.bias,
        output_range=(float(train_logits.min() - margin), float(train_logits.max() + margin)),
        labels=classes,
        path=str(base),
    )
    config = json.dumps({"fps": fps, "classes": classes, "window": window or None})
    write_bytes(out, heads.with_files(exported, {"vidcls.json": config}))
    return write_bytes(labels_path(out), ("\n".join(classes) + "\n").encode())
