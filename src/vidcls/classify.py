"""Classify a whole video file: the top-level function that ``vidcls classify`` mirrors."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

import numpy as np

from .classifier import Category, ClassifierOptions, VideoClassifier
from .prefetch import prefetched
from .segments import Segment, Segmenter, SegmentOptions
from .video import VideoFile

NATIVE = "native"


@dataclass
class FrameResult:
    """The top categories after feeding the frame presented at ``time`` seconds."""

    time: float
    top: list[Category]

    def to_dict(self) -> dict:
        return {"time": round(self.time, 4), "top": [c.to_dict() for c in self.top]}


@dataclass
class VideoResult:
    """Per-frame results and the summary (the prediction after the last frame fed)."""

    source: str
    model: str
    fps: float | str
    frames: list[FrameResult] = field(default_factory=list)
    summary: list[Category] = field(default_factory=list)
    window: float | None = None
    segments: list[Segment] | None = None
    labels: list[str] = field(default_factory=list, repr=False)
    probabilities: np.ndarray | None = field(default=None, repr=False)  # [frames, classes]

    def to_dict(self) -> dict:
        doc = {
            "source": self.source,
            "model": self.model,
            "fps": self.fps,
            "frames": [f.to_dict() for f in self.frames],
            "summary": {"top": [c.to_dict() for c in self.summary]},
        }
        if self.window is not None:
            doc["window"] = self.window
        if self.segments is not None:
            doc["segments"] = [s.to_dict() for s in self.segments]
        return doc

    @property
    def times(self) -> np.ndarray:
        return np.array([f.time for f in self.frames], np.float64)


def parse_fps(value: float | str | None) -> float | None:
    """``"native"`` or None -> None (every decoded frame); else a positive number."""
    if value is None or (isinstance(value, str) and value.lower() == NATIVE):
        return None
    fps = float(value)
    if not fps > 0:
        raise ValueError(f"fps must be positive or 'native', not {value}")
    return fps


def classify_video(
    path: str | os.PathLike,
    model: str | os.PathLike = "a0",
    *,
    fps: float | str | None = None,
    classifier: VideoClassifier | None = None,
    segments: SegmentOptions | bool | None = None,
    keep_probabilities: bool = False,
    progress: bool = False,
    prefetch: int = 0,
    skip_nonref: bool = False,
    **options,
) -> VideoResult:
    """Classify a video file from its start, feeding frames at ``fps``.

    ``fps`` defaults to the model's own rate (5 for MoViNet); ``"native"`` feeds every decoded
    frame. Other keyword arguments are :class:`ClassifierOptions` fields (``max_results``,
    ``score_threshold``, ``label_allow_list``, ...). Pass ``classifier`` to reuse a loaded
    model across files; its state is reset first. ``segments`` (True or options) adds action
    segments; ``keep_probabilities`` keeps every frame's full probability vector (for plots).
    ``prefetch`` > 0 decodes that many frames ahead in a background thread. ``skip_nonref``
    skips decoding frames nothing depends on (see :meth:`VideoFile.frames`).
    """
    if classifier is None:
        classifier = VideoClassifier.create_from_options(ClassifierOptions(model=model, **options))
    elif options:
        raise TypeError("pass either a classifier or classifier options, not both")
    rate = classifier.fps if fps is None else parse_fps(fps)  # None: every frame
    result = VideoResult(
        os.fspath(path),
        classifier.model_name,
        rate if rate else NATIVE,
        window=classifier.options.window,
        labels=classifier.labels,
    )
    if segments is True:
        segments = SegmentOptions()
    segmenter = Segmenter(classifier.labels, segments) if segments else None
    kept: list[np.ndarray] = []
    pre = classifier.preprocessor
    with VideoFile(path) as video:
        if classifier.options.window is not None:
            classifier.set_feed_rate(rate or video.info.fps or 5.0)
        classifier.reset()
        bar = _progress(video, progress)
        for t, image in prefetched(video.frames(rate, skip_nonref), pre, prefetch):
            top = classifier.classify_prepared(image)
            result.frames.append(FrameResult(t, top))
            if segmenter is not None:
                segmenter.update(t, classifier.probabilities)
            if keep_probabilities:
                kept.append(classifier.probabilities.copy())
            bar.update(t - bar.n) if bar.total else bar.update(1)
        bar.close()
    result.summary = classifier.top()
    if segmenter is not None:
        segmenter.finish()
        result.segments = segmenter.segments
    if keep_probabilities:
        result.probabilities = np.array(kept).reshape(len(kept), len(classifier.labels))
    return result


def _progress(video: VideoFile, enabled: bool):
    from tqdm import tqdm

    duration = video.info.duration
    return tqdm(
        total=round(duration, 1) if duration else None,
        desc=os.path.basename(video.path),
        unit="s",
        disable=not enabled,
        file=sys.stderr,
        leave=False,
        bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total_fmt} s [{elapsed}<{remaining}]"
        if duration
        else None,
    )
