"""The classifier: options, categories, and a classifier fed one RGB frame at a time."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np

from . import zoo
from .errors import VidclsError
from .labels import embedded_config, resolve_labels
from .model import Stream, StreamModel
from .preprocess import RESIZES, Preprocessor
from .window import WindowedStreams


@dataclass
class ClassifierOptions:
    """How to build a :class:`VideoClassifier`.

    ``model`` is a zoo name (``a0``, ``a1``, ``a2``, ...) or a .tflite path. ``labels`` is a
    label file, a list, or None (labels embedded in or beside the model, else Kinetics-600).
    Filters apply in the official example's order: deny list, allow list, score threshold,
    max results (``max_results <= 0`` keeps all). ``window`` (seconds) makes predictions follow
    the content of long videos: see :mod:`vidcls.window`; None is cumulative, as the model is.
    """

    model: str | os.PathLike = zoo.DEFAULT_MODEL
    labels: str | os.PathLike | list[str] | None = None
    max_results: int = 5
    score_threshold: float = 0.0
    label_allow_list: list[str] | None = None
    label_deny_list: list[str] | None = None
    num_threads: int = 1
    resize: str = "bilinear"
    center_crop: bool = False
    backend: str = "auto"
    window: float | None = None


@dataclass(frozen=True)
class Category:
    """One class and its probability."""

    label: str
    index: int
    score: float

    def to_dict(self) -> dict:
        return {"label": self.label, "index": self.index, "score": round(self.score, 6)}


@dataclass
class _Filter:
    """Deny/allow lists turned into one mask over class indices, plus threshold and top-k."""

    mask: np.ndarray
    threshold: float
    max_results: int
    _order: np.ndarray = field(init=False, repr=False)

    @classmethod
    def from_options(cls, options: ClassifierOptions, labels: list[str]) -> _Filter:
        mask = np.ones(len(labels), bool)
        index = {}
        for i, name in enumerate(labels):
            index.setdefault(name, []).append(i)
        for kind, names in (("deny", options.label_deny_list), ("allow", options.label_allow_list)):
            if names is None:
                continue
            unknown = [n for n in names if n not in index]
            if unknown:
                raise VidclsError(f"unknown label(s) in the {kind} list: {', '.join(unknown)}")
            chosen = np.zeros(len(labels), bool)
            for n in names:
                chosen[index[n]] = True
            mask &= ~chosen if kind == "deny" else chosen
        return cls(mask, float(options.score_threshold), int(options.max_results))

    def __post_init__(self) -> None:
        self._order = np.arange(self.mask.size)

    def top(self, probs: np.ndarray, labels: list[str]) -> list[Category]:
        keep = self.mask & (probs >= self.threshold)
        idx = self._order[keep]
        k = self.max_results
        if 0 < k < idx.size:
            idx = idx[np.argpartition(-probs[idx], k - 1)[:k]]
        idx = idx[np.argsort(-probs[idx], kind="stable")]
        return [Category(labels[i], int(i), float(probs[i])) for i in idx]


def _model_fps(name: str | os.PathLike, path: os.PathLike) -> float | None:
    """The rate to feed: 5 for MoViNet; for a model vidcls trained, the rate it was trained
    with (None: every frame)."""
    key = os.fspath(name).lower()
    if key in zoo.MODELS:
        return zoo.MODELS[key].fps
    config = embedded_config(path)
    return config.get("fps", 5.0)


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
        if self.options.resize not in RESIZES:
            raise VidclsError(f"unknown resize '{self.options.resize}' (choose from {RESIZES})")
        self.model = model
        self.labels = labels
        self._filter = _Filter.from_options(self.options, labels)
        lay = model.layout
        self.preprocessor = Preprocessor(
            lay.height, lay.width, self.options.resize, self.options.center_crop
        )
        self.fps = _model_fps(self.options.model, model.path)
        self._stream = self._new_stream(self.fps or 5.0)
        self.probabilities = np.zeros(lay.num_classes, np.float32)

    @classmethod
    def create_from_options(cls, options: ClassifierOptions) -> VideoClassifier:
        """Load the model (fetching a zoo model if needed) and its labels."""
        path = zoo.resolve_model(options.model)
        model = StreamModel(path, num_threads=options.num_threads, backend=options.backend)
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
    def frames_seen(self) -> int:
        """Frames fed since creation or the last reset."""
        return self._stream.frames

    def _new_stream(self, feed_fps: float) -> Stream | WindowedStreams:
        if self.options.window is None:
            return self.model.new_stream()
        if not (self.options.window > 0 and math.isfinite(self.options.window)):
            raise VidclsError(
                f"window must be a positive number of seconds, not {self.options.window}"
            )
        return WindowedStreams(self.model, max(2, round(self.options.window * feed_fps)))

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

    def new_stream(self) -> VideoClassifier:
        """Another classifier on the same loaded model, with its own state."""
        return VideoClassifier(self.model, self.labels, self.options)

    def __repr__(self) -> str:
        return f"VideoClassifier(model={self.model_name!r}, classes={len(self.labels)})"
