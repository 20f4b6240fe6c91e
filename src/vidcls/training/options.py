"""How to train: :class:`TrainOptions`, checked once when made."""

from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass

from .. import zoo
from ..errors import OptionError
from ..options import check_fit

AUTO = "auto"
METHODS = ("classifier", "head")


@dataclass
class TrainOptions:
    """How to train; each field is the ``vidcls train`` flag of the same name.

    ``model``: the base model (zoo name or .tflite), frozen. ``val_fraction``: held out per
    class, from the end. ``views``: per training clip, the clip itself plus ``views - 1``
    augmentations. ``fps``: ``"auto"`` feeds MoViNet's 5 fps when the clips are long enough
    (median at least 2 s) and every frame otherwise; 0 feeds every frame; a number, that rate.
    ``l2``: None chooses it by cross-validation. ``epochs``: L-BFGS iterations at most.
    ``cache``: the feature cache folder (default: ``features`` in the model cache).
    ``method``: ``classifier`` (the default) trains the last conv alone; ``head`` both head
    convs, keeping the classifier alone if cross-validation prefers it.
    ``window``: seconds; clips longer than it also give each run of that many seconds (at the
    rate fed) as a sample, streamed from a zero state as ``classify --window`` and ``live``
    stream them; recorded in the model as its default window; 0: whole clips only.
    ``threads``: clips processed in parallel during extraction (one LiteRT thread each), and
    LiteRT threads when verifying. ``fit``: how pictures of another shape meet the model's
    (``squash``, ``crop``, ``letterbox``), in training and, recorded in the model, when it
    classifies.
    """

    model: str | os.PathLike = zoo.DEFAULT_MODEL
    val_fraction: float = 0.0
    views: int = 8
    fps: float | str = AUTO
    l2: float | None = None
    seed: int = 0
    threads: int = 2
    cache: str | os.PathLike | None = None
    epochs: int = 500
    method: str = "classifier"
    window: float = 4.0
    fit: str = "squash"

    def __post_init__(self) -> None:
        check_fit(self.fit)
        for name, least in (("views", 1), ("threads", 1), ("epochs", 1), ("seed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
                raise OptionError(name, f"must be a whole number of {least} or more, not {value!r}")
        if not _number(self.val_fraction) or not 0 <= self.val_fraction < 1:
            raise OptionError("val_fraction", f"must be in [0, 1), not {self.val_fraction!r}")
        if self.method not in METHODS:
            raise OptionError("method", f"must be one of {', '.join(METHODS)}, not {self.method!r}")
        if self.fps != AUTO:
            check_fps(self.fps, "'auto', ")
        if not _number(self.window) or self.window < 0:
            raise OptionError(
                "window", f"must be 0 (none) or a number of seconds, not {self.window!r}"
            )
        if self.l2 is not None and not (_number(self.l2) and self.l2 >= 0):
            raise OptionError("l2", f"must be a number of 0 or more, not {self.l2!r}")

    def to_dict(self) -> dict:
        """The options as JSON values (paths as text)."""
        doc = dict(vars(self))
        for name in ("model", "cache"):
            if doc[name] is not None:
                doc[name] = os.fspath(doc[name])
        return doc


def check_fps(fps: object, also: str = "") -> None:
    """VidclsError unless ``fps`` is 0 (every frame) or a positive rate (``also``: the other
    values allowed, for the message)."""
    if not (_number(fps) and fps >= 0):
        raise OptionError("fps", f"must be {also}0 (every frame) or a positive number, not {fps!r}")


def _number(value: object) -> bool:
    """A finite real number (not a bool)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
