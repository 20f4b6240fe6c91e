"""The trained classifier written into a copy of the base model: a streaming .tflite that
carries its labels, the rate and window it was trained with, the clips it was fitted on, and a
label file beside it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..errors import VidclsError
from ..writers import write_bytes
from . import graph
from .fit import SoftmaxClassifier
from .head import Head, activate
from .seen import TrainedOn


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
    fitted: SoftmaxClassifier | Head,
    classes: list[str],
    fps: float | None,
    train_features: np.ndarray,
    out: Path,
    window: float = 0.0,
    fit: str = "squash",
    trained_on: TrainedOn | None = None,
) -> Path:
    """Write ``base`` with ``fitted`` as its classifier (or both head convs) to ``out`` and the
    label file beside it; returns the label file. The int8 ranges of the hidden tensors are
    those on ``train_features`` (the rows ``fitted`` reads), the logits' range theirs plus 10 %
    margin; ``fps`` (None: every frame) goes into the file as the rate to feed, ``window``
    (seconds, 0: none) as the default window to classify with, ``fit`` as the way pictures
    meet the model's shape, ``trained_on`` (None: nothing recorded) as the clips it was fitted
    on."""
    data = base.read_bytes()
    logits = fitted.logits(train_features)
    margin = 0.1 * (logits.max() - logits.min())
    output_range = (float(logits.min() - margin), float(logits.max() + margin))
    if isinstance(fitted, Head):
        model = graph.load(data)
        conv = graph.find_first_conv(model, graph.find_head(model, str(base)), str(base))
        exported = graph.replace_head(
            data,
            (fitted.w1, fitted.b1),
            calibration_ranges(conv, fitted, train_features),
            fitted.w2,
            fitted.b2,
            output_range=output_range,
            labels=classes,
            path=str(base),
        )
    else:
        exported = graph.replace_classifier(
            data,
            fitted.weight,
            fitted.bias,
            output_range=output_range,
            labels=classes,
            path=str(base),
        )
    config = {"fps": fps, "classes": classes, "window": window or None, "fit": fit}
    files = {}
    if trained_on is not None:
        config["trained_on"] = trained_on.config()
        files = trained_on.files()
    files["vidcls.json"] = json.dumps(config)
    write_bytes(out, graph.with_files(exported, files))
    return write_bytes(labels_path(out), ("\n".join(classes) + "\n").encode())


def calibration_ranges(
    conv: graph.FirstConv, fitted: Head, pooled: np.ndarray
) -> dict[int, tuple[float, float]]:
    """The (min, max) of each tensor between the first conv and the classifier on ``pooled``
    (the sigmoid's fixed grid is left as it is)."""
    pre = fitted.pre_activation(pooled)
    act = activate(pre, fitted.activation)
    values = {
        "pre": (float(pre.min()), float(pre.max())),
        "act": (float(act.min()), float(act.max())),
    }
    return {t: values[kind] for t, kind in conv.chain if kind in values}
