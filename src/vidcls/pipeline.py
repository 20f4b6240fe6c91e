"""The one frame loop: pictures in, :class:`~vidcls.results.FrameResult` out.

A :class:`Pipeline` is one stream of a classifier plus, optionally, action segments. Its
``feed`` takes one picture (a decoded PyAV frame, an RGB array, or a prepared model input); its
``video`` generator feeds it from a file. Every front end runs on it: ``classify``, the live
engine (:mod:`vidcls.live`, one pipeline per source), the server's file endpoint and browser
streams, ``batch``, ``evaluate`` and training's verification. The top-level functions here
(:func:`load_classifier`, :func:`classify_video`, :func:`iter_video`) are what ``vidcls
classify`` mirrors.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator

import av
import numpy as np

from .classifier import VideoClassifier
from .errors import VidclsError
from .media import VideoFile
from .options import ClassifierOptions, SegmentOptions
from .prefetch import prefetched
from .results import FrameResult, SegmentEvent, VideoInfo, VideoResult
from .segments import Segmenter

Picture = av.VideoFrame | np.ndarray


class Pipeline:
    """One stream on a classifier, with optional segments: feed it pictures in time order.

    ``segments`` turns on action segments (a :class:`SegmentOptions`, or True for the
    defaults); ``keep_probabilities`` keeps every class's probability on each result;
    ``timed`` records each result's ``infer_ms``.
    """

    def __init__(
        self,
        classifier: VideoClassifier,
        *,
        segments: SegmentOptions | bool | None = None,
        keep_probabilities: bool = False,
        timed: bool = False,
    ) -> None:
        self.classifier = classifier
        self.timed = timed  # results carry infer_ms (live results always do)
        if segments is True:
            segments = SegmentOptions()
        self.segmenter = Segmenter(classifier.labels, segments) if segments else None
        self.keep_probabilities = keep_probabilities
        self.info: VideoInfo | None = None  # of the file ``video`` read last

    # -- one frame -------------------------------------------------------------------------

    def feed(self, time_s: float, picture: Picture) -> FrameResult:
        """Classify one picture presented at ``time_s`` seconds."""
        t0 = time.perf_counter()
        pre = self.classifier.preprocessor
        image = (
            pre.from_array(picture) if isinstance(picture, np.ndarray) else pre.from_frame(picture)
        )
        return self.feed_prepared(time_s, image, t0)

    def feed_prepared(
        self, time_s: float, image: np.ndarray, started: float | None = None
    ) -> FrameResult:
        """Classify one prepared model input (float32 ``[H, W, 3]`` in [0, 1])."""
        t0 = time.perf_counter() if started is None else started
        top = self.classifier.classify_prepared(image)
        probabilities = self.classifier.probabilities
        result = FrameResult(time_s, top)
        if self.timed:
            result.infer_ms = 1e3 * (time.perf_counter() - t0)
        if self.keep_probabilities:
            result.probabilities = probabilities.copy()
        if self.segmenter is not None:
            result.events = self.segmenter.update(time_s, probabilities)
        return result

    def start(self, fps: float | None, fallback_fps: float | None = None) -> None:
        """Begin a new input fed at ``fps`` (None: every frame, at about ``fallback_fps``)."""
        if self.classifier.options.window is not None:
            self.classifier.set_feed_rate(fps or fallback_fps or 5.0)
        self.reset()

    def reset(self, interrupted: bool = False) -> list[SegmentEvent]:
        """Forget the state (a new clip, or a source that was reopened after a loss:
        ``interrupted``); closes open segments."""
        self.classifier.reset()
        return self.segmenter.reset(interrupted) if self.segmenter is not None else []

    def finish(self, interrupted: bool = False) -> list[SegmentEvent]:
        """End of input (``interrupted``: the source was lost); closes the open segment."""
        return self.segmenter.finish(interrupted) if self.segmenter is not None else []

    @property
    def segments(self):
        """The segments found so far (None without segments)."""
        return None if self.segmenter is None else self.segmenter.segments

    # -- a file ----------------------------------------------------------------------------

    def video(
        self,
        path: str | os.PathLike,
        fps: float | None = None,
        *,
        prefetch: int = 0,
        skip_nonref: bool = False,
        progress: bool = False,
    ) -> Iterator[FrameResult]:
        """Results for a video file from its start, frames fed at ``fps`` (None: the model's
        rate; 0: every decoded frame). ``prefetch`` > 0 decodes that many frames ahead in a
        thread; ``skip_nonref`` skips decoding B-frames (see :meth:`VideoFile.frames`). The
        last result carries the end events of the segments still open at the end."""
        file = VideoFile(path)
        self.info = file.info
        return self.read(file, fps, prefetch=prefetch, skip_nonref=skip_nonref, progress=progress)

    def video_result(
        self, path: str | os.PathLike, frames: list[FrameResult], fps: float | None = None
    ) -> VideoResult:
        """The :class:`VideoResult` of the file just read: its ``frames``, the summary (the
        prediction after the last one) and the segments."""
        clf = self.classifier
        return VideoResult(
            os.fspath(path),
            clf.model_name,
            feed_rate(clf, fps),
            frames,
            summary=clf.top(),
            window=clf.options.window,
            segments=self.segments,
            info=self.info,
            labels=clf.labels,
        )

    def read(
        self,
        file: VideoFile,
        fps: float | None = None,
        *,
        prefetch: int = 0,
        skip_nonref: bool = False,
        progress: bool = False,
    ) -> Iterator[FrameResult]:
        """As :meth:`video`, on a file already open (closed at the end)."""
        rate = feed_rate(self.classifier, fps)
        with file:
            self.start(rate, file.info.fps)
            bar = _progress(file.info, progress)
            frames = file.frames(rate, skip_nonref)
            # With segments, each result is held back one frame, so that the last one can
            # carry the end events of the segments still open at the end.
            hold = self.segmenter is not None
            previous = None
            try:
                for t, image in prefetched(frames, self.classifier.preprocessor, prefetch):
                    if previous is not None:
                        yield previous
                    previous = self.feed_prepared(t, image)
                    bar.update(t - bar.n) if bar.total else bar.update(1)
                    if not hold:
                        yield previous
                        previous = None
            except VidclsError as e:  # name the file in errors that do not
                raise VidclsError(e.message, e.path or file.path) from None
            finally:
                bar.close()
            if previous is not None:
                previous.events += self.finish()
                yield previous


def feed_rate(classifier: VideoClassifier, fps: float | None) -> float | None:
    """The rate to feed: ``fps``, the model's own rate when None, every frame (None) for 0."""
    if fps is None:
        return classifier.fps
    if not fps >= 0:
        raise ValueError(f"fps must be 0 (every frame) or positive, not {fps}")
    return float(fps) or None


def load_classifier(model: str | os.PathLike = "a0", **options) -> VideoClassifier:
    """Load a model (a zoo name, fetched once, or a .tflite path) with its labels.

    Keyword arguments are :class:`ClassifierOptions` fields: ``labels``, ``top_k``,
    ``threshold``, ``allow``, ``deny``, ``threads``, ``resize``, ``crop``, ``window``,
    ``window_mode``.
    """
    return VideoClassifier.create_from_options(ClassifierOptions(model=model, **options))


def _classifier(classifier: VideoClassifier | None, options: dict) -> VideoClassifier:
    if classifier is None:
        return load_classifier(**options)
    if options:
        raise TypeError("pass either a classifier or classifier options, not both")
    return classifier


def iter_video(
    path: str | os.PathLike,
    *,
    classifier: VideoClassifier | None = None,
    fps: float | None = None,
    segments: SegmentOptions | bool | None = None,
    keep_probabilities: bool = False,
    prefetch: int = 0,
    skip_nonref: bool = False,
    **options,
) -> tuple[Iterator[FrameResult], VideoInfo]:
    """A video file's results frame by frame, as they are computed, and what the file is.

    Returns ``(results, info)``: ``results`` is a lazy generator of
    :class:`~vidcls.results.FrameResult` (the last one carries the end events of segments
    still open at the end), ``info`` the file's :class:`~vidcls.results.VideoInfo`. The
    file is opened (and checked) at once. ``fps``: None feeds the model's own rate (5 for
    MoViNet), 0 every decoded frame. Other keyword arguments load a classifier (see
    :func:`load_classifier`) unless ``classifier`` is given; its state is reset first.
    """
    pipeline = Pipeline(
        _classifier(classifier, options), segments=segments, keep_probabilities=keep_probabilities
    )
    results = pipeline.video(path, fps, prefetch=prefetch, skip_nonref=skip_nonref)
    return results, pipeline.info


def classify_video(
    path: str | os.PathLike,
    *,
    classifier: VideoClassifier | None = None,
    fps: float | None = None,
    segments: SegmentOptions | bool | None = None,
    keep_probabilities: bool = False,
    prefetch: int = 0,
    skip_nonref: bool = False,
    progress: bool = False,
    **options,
) -> VideoResult:
    """Classify a whole video file: per-frame results, the summary (the prediction after the
    last frame) and, with ``segments``, the actions. Arguments as :func:`iter_video`;
    ``progress`` shows a bar on stderr."""
    clf = _classifier(classifier, options)
    pipeline = Pipeline(clf, segments=segments, keep_probabilities=keep_probabilities)
    frames = list(
        pipeline.video(path, fps, prefetch=prefetch, skip_nonref=skip_nonref, progress=progress)
    )
    return pipeline.video_result(path, frames, fps)


def _progress(info: VideoInfo, enabled: bool):
    from tqdm import tqdm

    duration = info.duration
    return tqdm(
        total=round(duration, 1) if duration else None,
        desc=os.path.basename(info.path),
        unit="s",
        disable=not enabled,
        file=sys.stderr,
        leave=False,
        bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total_fmt} s [{elapsed}<{remaining}]"
        if duration
        else None,
    )
