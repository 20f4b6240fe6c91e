"""The one frame loop: pictures in, :class:`~vidcls.results.FrameResult` out.

A :class:`Pipeline` is one stream of a classifier plus, optionally, action segments. Its
``feed`` takes one picture (a decoded PyAV frame, an RGB array, or a prepared model input); its
``video`` and ``live`` generators feed it from a file or a live source. Every front end runs on
it: ``classify``, ``live``, the server's file endpoint and browser streams, ``batch``,
``evaluate`` and training's verification. The top-level functions here are what the CLI mirrors.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import av
import numpy as np

from .capture import Captured, FrameGrabber
from .classifier import ClassifierOptions, VideoClassifier
from .errors import VidclsError
from .media import VideoFile, open_source
from .prefetch import prefetched
from .results import FrameResult, SegmentEvent, VideoInfo, VideoResult
from .segments import Segmenter, SegmentOptions

log = logging.getLogger("vidcls")
Picture = av.VideoFrame | np.ndarray


@dataclass
class LiveStats:
    """What a live run did."""

    fed: int = 0
    captured: int = 0
    reconnects: int = 0
    seconds: float = 0.0


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
        self.stats = LiveStats()  # of the last ``live`` run

    # -- one frame -------------------------------------------------------------------------

    def feed(
        self, time_s: float, picture: Picture, captured_at: float | None = None
    ) -> FrameResult:
        """Classify one picture presented at ``time_s`` seconds (``captured_at``: the
        ``time.monotonic()`` it arrived, for live latency)."""
        t0 = time.perf_counter()
        pre = self.classifier.preprocessor
        image = (
            pre.from_array(picture) if isinstance(picture, np.ndarray) else pre.from_frame(picture)
        )
        return self.feed_prepared(time_s, image, t0, captured_at)

    def feed_prepared(
        self,
        time_s: float,
        image: np.ndarray,
        started: float | None = None,
        captured_at: float | None = None,
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
        if captured_at is not None:
            result.latency_ms = 1e3 * (time.monotonic() - captured_at)
        if self.segmenter is not None:
            result.events = self.segmenter.update(time_s, probabilities)
        return result

    def start(self, fps: float | None, fallback_fps: float | None = None) -> None:
        """Begin a new input fed at ``fps`` (None: every frame, at about ``fallback_fps``)."""
        if self.classifier.options.window is not None:
            self.classifier.set_feed_rate(fps or fallback_fps or 5.0)
        self.reset()

    def reset(self) -> list[SegmentEvent]:
        """Forget the state (a new clip, or a source that was reopened); closes open segments."""
        self.classifier.reset()
        return self.segmenter.reset() if self.segmenter is not None else []

    def finish(self) -> list[SegmentEvent]:
        """End of input: closes the open segment."""
        return self.segmenter.finish() if self.segmenter is not None else []

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
        thread; ``skip_nonref`` skips decoding B-frames (see :meth:`VideoFile.frames`)."""
        rate = feed_rate(self.classifier, fps)
        with VideoFile(path) as file:
            self.info = file.info
            self.start(rate, file.info.fps)
            bar = _progress(file.info, progress)
            frames = file.frames(rate, skip_nonref)
            try:
                for t, image in prefetched(frames, self.classifier.preprocessor, prefetch):
                    yield self.feed_prepared(t, image)
                    bar.update(t - bar.n) if bar.total else bar.update(1)
            except VidclsError as e:  # name the file in errors that do not
                raise VidclsError(e.message, e.path or file.path) from None
            finally:
                bar.close()

    # -- a live source ---------------------------------------------------------------------

    def live(
        self,
        source: str,
        fps: float | None = None,
        *,
        duration: float | None = None,
        loop: bool = False,
        preview: Callable[[Captured, FrameResult | None], bool] | None = None,
    ) -> Iterator[FrameResult]:
        """Results for a camera, network stream or file played at its real speed: every
        ``1/fps`` seconds the freshest frame is fed. Ends when the source ends or after
        ``duration`` seconds. A source reopened after a loss resets the state (the first
        result after it carries the segment events that closes). ``preview(captured, latest)``
        sees every captured frame (a window); returning False stops."""
        rate = feed_rate(self.classifier, fps)
        period = 1.0 / rate if rate else 0.0  # no rate: every new frame
        grabber = FrameGrabber(open_source(source, realtime=True, loop=loop))
        self.stats = stats = LiveStats()
        self.timed = True
        self.start(rate, 30.0)
        grabber.start()
        start = next_tick = time.monotonic()
        used, generation, last, pending = -1, 0, None, []
        try:
            while duration is None or time.monotonic() - start < duration:
                if preview is None:  # sleep to the next tick, then take the freshest frame
                    time.sleep(max(0.0, next_tick - time.monotonic()))
                got = grabber.latest(after=used, timeout=0.5)
                if got is None:
                    if grabber.ended:
                        break
                    continue
                used = got.index
                now = time.monotonic()
                if preview is not None and now < next_tick:  # show it, classify later
                    if not preview(got, last):
                        break
                    continue
                next_tick = max(next_tick + period, now)
                if got.generation != generation:
                    generation = got.generation
                    pending += self.reset()
                    log.warning("state reset after the source was reopened")
                last = self.feed(now - start, got.frame, captured_at=got.captured_at)
                last.input_fps = grabber.input_fps
                last.events, pending = pending + last.events, []
                stats.fed += 1
                yield last
                if preview is not None and not preview(got, last):
                    break
        finally:
            grabber.stop()
            stats.captured, stats.reconnects = grabber.captured, grabber.reconnects
            stats.seconds = time.monotonic() - start
        if grabber.error is not None and stats.fed == 0:
            raise grabber.error
        if grabber.error is not None:
            log.warning("%s", grabber.error)


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
) -> Iterator[FrameResult]:
    """Results for a video file, frame by frame, as they are computed (a lazy generator).

    ``fps``: None feeds the model's own rate (5 for MoViNet), 0 every decoded frame. Other
    keyword arguments load a classifier (see :func:`load_classifier`) unless ``classifier``
    is given; its state is reset first.
    """
    pipeline = Pipeline(
        _classifier(classifier, options), segments=segments, keep_probabilities=keep_probabilities
    )
    yield from pipeline.video(path, fps, prefetch=prefetch, skip_nonref=skip_nonref)
    if pipeline.segmenter is not None:  # segments still open at the end: their end events
        events = pipeline.finish()
        if events:
            yield FrameResult(pipeline.segmenter.last_time or 0.0, [], events=events)


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
    pipeline.finish()
    return VideoResult(
        os.fspath(path),
        clf.model_name,
        feed_rate(clf, fps),
        frames,
        summary=clf.top(),
        window=clf.options.window,
        segments=pipeline.segments,
        info=pipeline.info,
        labels=clf.labels,
    )


def classify_live(
    source: str,
    *,
    classifier: VideoClassifier | None = None,
    fps: float | None = None,
    segments: SegmentOptions | bool | None = None,
    duration: float | None = None,
    loop: bool = False,
    **options,
) -> Iterator[FrameResult]:
    """Results for a live source (camera index or device, stream URL, or a file played at
    its real speed) as they happen; ``break`` to stop. ``options`` as :func:`load_classifier`
    (``window=4`` follows recent content, as ``vidcls live`` does by default)."""
    pipeline = Pipeline(_classifier(classifier, options), segments=segments)
    yield from pipeline.live(source, fps, duration=duration, loop=loop)


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
