"""The classifier: its options, the category filters, and a classifier fed one frame at a time."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace

import numpy as np

from . import zoo
from .errors import VidclsError
from .labels import embedded_config, resolve_labels
from .model import Stream, StreamModel
from .options import FITS, ClassifierOptions
from .preprocess import Preprocessor
from .results import Category
from .window import DecayedStream, WindowedStreams, windowed_stream


@dataclass
class _Filter:
    """Deny/allow lists turned into one mask over class indices, plus threshold and top-k."""

    mask: np.ndarray
    threshold: float
    top_k: int
    _order: np.ndarray = field(init=False, repr=False)

    @classmethod
    def from_options(cls, options: ClassifierOptions, labels: list[str]) -> _Filter:
        mask = np.ones(len(labels), bool)
        index = {}
        for i, name in enumerate(labels):
            index.setdefault(name, []).append(i)
        for kind, names in (("deny", options.deny), ("allow", options.allow)):
            if names is None:
                continue
            unknown = [n for n in names if n not in index]
            if unknown:
                raise VidclsError(f"unknown label(s) in the {kind} list: {', '.join(unknown)}")
            chosen = np.zeros(len(labels), bool)
            for n in names:
                chosen[index[n]] = True
            mask &= ~chosen if kind == "deny" else chosen
        return cls(mask, float(options.threshold), int(options.top_k))

    def __post_init__(self) -> None:
        self._order = np.arange(self.mask.size)

    def top(self, probs: np.ndarray, labels: list[str]) -> list[Category]:
        keep = self.mask & (probs >= self.threshold)
        idx = self._order[keep]  # ascending, so equal scores rank by class index
        k = self.top_k
        if 0 < k < idx.size:  # only the k best, and any tied with the k-th, are sorted
            scores = probs[idx]
            kth = np.partition(scores, idx.size - k)[idx.size - k]
            idx = idx[scores >= kth]
        idx = idx[np.argsort(-probs[idx], kind="stable")][: k or None]
        return [Category(labels[i], int(i), float(probs[i])) for i in idx]


def _model_fps(name: str | os.PathLike, path: os.PathLike) -> float | None:
    """The rate to feed: 5 for MoViNet; for a model vidcls trained, the rate it was trained
    with (None: every frame)."""
    key = os.fspath(name).lower()
    if key in zoo.MODELS:
        return zoo.MODELS[key].fps
    fps = embedded_config(path).get("fps", 5.0)
    if fps is None or (isinstance(fps, (int, float)) and 0 < fps < math.inf):
        return fps
    raise VidclsError(f"the model's embedded vidcls.json has a bad fps ({fps!r})", path)


def model_window(model: str | os.PathLike) -> float | None:
    """The window (seconds) a model vidcls trained was trained with, from its embedded
    vidcls.json: the default ``--window`` of ``classify`` and ``live`` for it. None for zoo
    models, models without one, and paths that are not files (loading reports those)."""
    if os.fspath(model).lower() in zoo.MODELS or not os.path.isfile(model):
        return None
    window = embedded_config(model).get("window")
    if window is None:
        return None
    if isinstance(window, (int, float)) and not isinstance(window, bool) and 0 < window < math.inf:
        return float(window)
    raise VidclsError(f"the model's embedded vidcls.json has a bad window ({window!r})", model)


def model_fit(model: str | os.PathLike) -> str | None:
    """How a model vidcls trained fits pictures to its input (``squash``, ``crop`` or
    ``letterbox``), from its embedded vidcls.json: the default ``fit`` for it. None for zoo
    models, models without one, and paths that are not files."""
    if os.fspath(model).lower() in zoo.MODELS or not os.path.isfile(model):
        return None
    fit = embedded_config(model).get("fit")
    if fit is None or fit in FITS:
        return fit
    raise VidclsError(f"the model's embedded vidcls.json has a bad fit ({fit!r})", model)


def softmax(logits: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Numerically stable softmax of a 1-D array (into ``out`` when given)."""
    out = np.subtract(logits, logits.max(), out=out)
    np.exp(out, out=out)
    out /= out.sum()
    return out


class VideoClassifier:
    """Classifies a video stream one RGB frame at a time, carrying the model's state."""

    def __init__(
        self,
        model: StreamModel,
        labels: list[str],
        options: ClassifierOptions | None = None,
    ) -> None:
        self.options = options or ClassifierOptions(model=model.path)
        self.model = model
        self.labels = labels
        self._filter = _Filter.from_options(self.options, labels)
        lay = model.layout
        if self.options.fit is None:
            self.options = replace(self.options, fit=model_fit(self.options.model) or "squash")
        self.preprocessor = Preprocessor(
            lay.height, lay.width, self.options.resize, self.options.fit
        )
        self.fps = _model_fps(self.options.model, model.path)
        self._stream = self._new_stream(self.fps or 5.0)
        self.probabilities = np.zeros(lay.num_classes, np.float32)

    @classmethod
    def create_from_options(cls, options: ClassifierOptions) -> VideoClassifier:
        """Load the model (fetching a zoo model if needed) and its labels."""
        path = zoo.resolve_model(options.model)
        model = StreamModel(path, num_threads=options.threads, backend=options.backend)
        labels = resolve_labels(options.labels, path, model.layout.num_classes)
        return cls(model, labels, options)

    @property
    def model_name(self) -> str:
        """The zoo name when the model came from the zoo, else the file path."""
        name = os.fspath(self.options.model)
        return name.lower() if name.lower() in zoo.MODELS else str(self.model.path)

    @property
    def logits(self) -> np.ndarray:
        """The latest frame's raw logits (overwritten by the next frame)."""
        return self._stream.logits

    @property
    def stream(self) -> Stream | WindowedStreams | DecayedStream:
        """The model stream(s) this classifier feeds (for benchmarks of the low-level steps)."""
        return self._stream

    @property
    def frames_seen(self) -> int:
        """Frames fed since creation or the last reset."""
        return self._stream.frames

    def _new_stream(self, feed_fps: float) -> Stream | WindowedStreams | DecayedStream:
        if self.options.window is None:
            return self.model.new_stream()
        frames = max(2, round(self.options.window * feed_fps))
        return windowed_stream(self.model, frames, self.options.window_mode)

    def set_feed_rate(self, fps: float) -> None:
        """Frames per second actually fed (sizes the window in frames); resets the state."""
        self._stream = self._new_stream(fps)
        self.probabilities[:] = 0

    def classify(self, frame: np.ndarray) -> list[Category]:
        """Feed one RGB uint8 ``[h, w, 3]`` frame; categories sorted by score."""
        return self.classify_prepared(self.preprocessor.from_array(frame))

    def classify_prepared(self, image: np.ndarray) -> list[Category]:
        """Feed one frame already prepared as float32 ``[H, W, 3]`` in [0, 1]."""
        logits = self._stream.step(image)
        softmax(logits, out=self.probabilities)
        return self._filter.top(self.probabilities, self.labels)

    def top(self, probabilities: np.ndarray | None = None) -> list[Category]:
        """The filtered categories for ``probabilities`` (default: the latest frame's)."""
        p = self.probabilities if probabilities is None else probabilities
        return self._filter.top(p, self.labels)

    def reset(self) -> None:
        """Forget everything seen so far: the next frame starts a new clip."""
        self._stream.reset()
        self.probabilities[:] = 0

    def new_stream(self, **changes) -> VideoClassifier:
        """Another classifier on the same loaded model, with its own state; ``changes`` to
        options that need no reload (``top_k``, ``threshold``, ``allow``, ``deny``,
        ``window``, ``window_mode``, ``resize``, ``fit``)."""
        fixed = {"model", "labels", "threads", "backend"} & set(changes)
        if fixed:
            raise ValueError(f"a new stream cannot change {', '.join(sorted(fixed))}")
        if changes.get("crop"):
            changes.setdefault("fit", "crop")
        elif "fit" in changes:
            changes.setdefault("crop", False)
        options = replace(self.options, **changes) if changes else self.options
        return VideoClassifier(self.model, self.labels, options)

    def __repr__(self) -> str:
        return f"VideoClassifier(model={self.model_name!r}, classes={len(self.labels)})"
