"""Class labels: the bundled Kinetics-600 map, label files, and labels embedded in a model."""

from __future__ import annotations

import os
import zipfile
import zlib
from importlib import resources
from pathlib import Path

from .errors import VidclsError
from .files import LABELS_LIMIT, read_limited

KINETICS600 = "kinetics600"
_EMBEDDED_NAMES = ("labels.txt", "label_map.txt")
# What a damaged zip appended to a model can raise: it then has no embedded labels or config.
_ZIP_ERRORS = (
    OSError,
    EOFError,
    ValueError,  # includes UnicodeDecodeError and JSON errors
    RuntimeError,  # encrypted members
    NotImplementedError,  # unknown compression
    zipfile.BadZipFile,
    zlib.error,
)


def kinetics600_labels() -> list[str]:
    """The 600 Kinetics-600 class names, index = logit index."""
    text = resources.files("vidcls").joinpath("data/kinetics600_labels.txt").read_text("utf-8")
    return _parse(text)


def read_labels(path: str | os.PathLike) -> list[str]:
    """Read a label file: one class name per line, blank trailing lines ignored."""
    data = read_limited(path, "label file", LABELS_LIMIT)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise VidclsError("label file is not UTF-8 text", path) from None
    if "\x00" in text:
        raise VidclsError("label file is binary, not one label per line", path)
    labels = _parse(text)
    if not labels:
        raise VidclsError("label file is empty", path)
    return labels


def embedded_labels(model_path: str | os.PathLike) -> list[str] | None:
    """Labels packed into a .tflite as a TFLite-metadata associated file, if any."""
    try:
        if not zipfile.is_zipfile(model_path):
            return None
        with zipfile.ZipFile(model_path) as z:
            for info in z.infolist():
                if Path(info.filename).name in _EMBEDDED_NAMES:
                    if info.file_size > LABELS_LIMIT:  # a zip bomb is not a label list
                        return None
                    return _parse(z.read(info).decode("utf-8"))
    except _ZIP_ERRORS:
        return None
    return None


def embedded_config(model_path: str | os.PathLike) -> dict:
    """Settings vidcls packed into a model it trained (``vidcls.json``), or {}."""
    import json

    data = embedded_file(model_path, "vidcls.json")
    try:
        config = {} if data is None else json.loads(data)
    except ValueError:  # includes UnicodeDecodeError
        return {}
    return config if isinstance(config, dict) else {}


def embedded_file(
    model_path: str | os.PathLike, name: str, limit: int = LABELS_LIMIT
) -> bytes | None:
    """The file ``name`` packed into the model's appended zip, if there is one of at most
    ``limit`` bytes that reads whole; else None."""
    try:
        if zipfile.is_zipfile(model_path):
            with zipfile.ZipFile(model_path) as z:
                if name in z.namelist():
                    info = z.getinfo(name)
                    return z.read(info) if info.file_size <= limit else None
    except _ZIP_ERRORS:
        pass
    return None


def labels_beside(model_path: str | os.PathLike) -> Path | None:
    """A label file beside the model named <stem>.labels.txt, <stem>_labels.txt or labels.txt."""
    p = Path(model_path)
    for candidate in (
        p.with_name(p.stem + ".labels.txt"),
        p.with_name(p.stem + "_labels.txt"),
        p.with_name("labels.txt"),
    ):
        if candidate.is_file():
            return candidate
    return None


def resolve_labels(
    labels: str | os.PathLike | list[str] | None,
    model_path: str | os.PathLike,
    num_classes: int,
) -> list[str]:
    """Labels for a model with ``num_classes`` logits, checked for a matching count.

    ``labels`` may be a list, a file path, ``"kinetics600"``, or None to look for labels
    embedded in the model, then beside it, then Kinetics-600 for a 600-class model.
    """
    source: str | os.PathLike = model_path
    if isinstance(labels, list):
        names, source = list(labels), "labels"
    elif labels == KINETICS600:
        names = kinetics600_labels()
    elif labels is not None:
        names, source = read_labels(labels), labels
    else:
        names = embedded_labels(model_path)
        if names is None:
            beside = labels_beside(model_path)
            if beside is not None:
                names, source = read_labels(beside), beside
            elif num_classes == 600:
                names = kinetics600_labels()
            else:
                raise VidclsError(
                    f"model has {num_classes} classes and no labels were found; "
                    "pass a label file (--labels)",
                    model_path,
                )
    if len(names) != num_classes:
        raise VidclsError(
            f"label count {len(names)} does not match the model's {num_classes} classes", source
        )
    return names


def _parse(text: str) -> list[str]:
    lines = [line.strip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return lines
