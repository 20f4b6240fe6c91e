"""Live classification: feed the freshest frame of a live source at the model's frame rate."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .classifier import Category, VideoClassifier
from .errors import VidclsError
from .segments import Segmenter, SegmentEvent, SegmentOptions
from .sources import Captured, FrameGrabber, open_source

log = logging.getLogger("vidcls")
WINDOW_NAME = "vidcls"
MIN_DISPLAY_HEIGHT = 480


@dataclass
class LiveResult:
    """The prediction after one fed frame."""

    time: float  # seconds since the run started
    top: list[Category]
    infer_ms: float  # preprocess + model step + postprocess
    input_fps: float  # rate frames arrive from the source
    latency_ms: float  # from the frame's capture to this result
    generation: int  # source (re)connection the frame came from

    def to_dict(self) -> dict:
        return {
            "time": round(self.time, 3),
            "top": [c.to_dict() for c in self.top],
            "infer_ms": round(self.infer_ms, 2),
            "input_fps": round(self.input_fps, 1),
            "latency_ms": round(self.latency_ms, 1),
        }


@dataclass
class LiveStats:
    """What a run did."""

    fed: int = 0
    captured: int = 0
    reconnects: int = 0
    seconds: float = 0.0
    segments: list = field(default_factory=list)


def run_live(
    source: str,
    classifier: VideoClassifier,
    on_result: Callable[[LiveResult], bool | None],
    on_segment: Callable[[SegmentEvent], None] | None = None,
    *,
    fps: float | None = None,
    duration: float | None = None,
    segments: SegmentOptions | None = None,
    display: bool = False,
    loop: bool = False,
) -> LiveStats:
    """Classify ``source`` until it ends, ``duration`` passes, ``on_result`` returns False,
    ``q`` is pressed in the window, or Ctrl-C.

    ``on_result(result)`` is called for every fed frame, ``on_segment(event)`` when an action
    segment starts or ends. When the source is reopened after a loss, the classifier and the
    segments are reset.
    """
    rate = fps or classifier.fps
    period = 1.0 / rate if rate else 0.0  # no rate: every new frame
    grabber = FrameGrabber(open_source(source, realtime=True, loop=loop))
    segmenter = Segmenter(classifier.labels, segments or SegmentOptions())
    stats = LiveStats()
    window = _Window() if display else None

    def emit(events: list[SegmentEvent]) -> None:
        for event in events:
            if on_segment is not None:
                on_segment(event)

    classifier.reset()
    grabber.start()
    start = time.monotonic()
    next_tick = start
    used, generation = -1, 0
    last: LiveResult | None = None
    try:
        while duration is None or time.monotonic() - start < duration:
            if window is None:  # sleep to the next tick, then take the freshest frame
                delay = next_tick - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            got = grabber.latest(after=used, timeout=0.5)
            if got is None:
                if grabber.ended:
                    break
                continue
            now = time.monotonic()
            if window is not None and now < next_tick:  # show it, classify later
                if not window.show(got, last, segmenter, classifier, grabber):
                    break
                used = got.index
                continue
            used = got.index
            next_tick = max(next_tick + period, now)
            if got.generation != generation:
                generation = got.generation
                classifier.reset()
                emit(segmenter.reset())
                log.warning("state reset after the source was reopened")
            t0 = time.perf_counter()
            top = classifier.classify_prepared(_prepare(classifier, got))
            infer_ms = 1e3 * (time.perf_counter() - t0)
            t = time.monotonic() - start
            events = segmenter.update(t, classifier.probabilities)
            last = LiveResult(
                t,
                top,
                infer_ms,
                grabber.input_fps,
                1e3 * (time.monotonic() - got.captured_at),
                got.generation,
            )
            stats.fed += 1
            if on_result(last) is False:
                break
            emit(events)
            if window is not None and not window.show(got, last, segmenter, classifier, grabber):
                break
    except KeyboardInterrupt:
        pass
    finally:
        grabber.stop()
        if window is not None:
            window.close()
    emit(segmenter.finish())
    if grabber.error is not None and stats.fed == 0:
        raise grabber.error
    if grabber.error is not None:
        log.warning("%s", grabber.error)
    stats.captured = grabber.captured
    stats.reconnects = grabber.reconnects
    stats.seconds = time.monotonic() - start
    stats.segments = segmenter.segments
    return stats


def _prepare(classifier: VideoClassifier, got: Captured) -> np.ndarray:
    if isinstance(got.frame, np.ndarray):  # OpenCV camera frame, BGR
        return classifier.preprocessor.from_array(got.frame[:, :, ::-1])
    return classifier.preprocessor.from_frame(got.frame)


class _Window:
    """An OpenCV window showing the frames with the latest results; q quits, r resets."""

    def __init__(self) -> None:
        import cv2

        self.cv2 = cv2
        try:
            cv2.namedWindow(WINDOW_NAME, cv2.WINDOW_AUTOSIZE)
        except cv2.error:
            raise VidclsError(
                "cannot open a window: this OpenCV has no GUI (opencv-python-headless) or there "
                "is no display; use --headless, or install opencv-python"
            ) from None

    def show(self, got: Captured, result, segmenter, classifier, grabber) -> bool:
        from .overlay import draw_results

        frame = got.frame
        bgr = frame if isinstance(frame, np.ndarray) else frame.to_ndarray(format="bgr24")
        h, w = bgr.shape[:2]
        if h < MIN_DISPLAY_HEIGHT:  # small sources are enlarged so the text reads
            size = (round(w * MIN_DISPLAY_HEIGHT / h), MIN_DISPLAY_HEIGHT)
            bgr = self.cv2.resize(bgr, size, interpolation=self.cv2.INTER_LINEAR)
        rgb = np.ascontiguousarray(bgr[:, :, ::-1])
        top = result.top[:3] if result else []
        status = None
        if result is not None:
            status = f"{result.infer_ms:.1f} ms  {grabber.input_fps:.1f} fps in"
        active = segmenter.active
        draw_results(rgb, top, segment=active.label if active else None, status=status)
        self.cv2.imshow(WINDOW_NAME, rgb[:, :, ::-1])
        key = self.cv2.waitKey(1) & 0xFF
        if key == ord("q"):
            return False
        if key == ord("r"):
            classifier.reset()
            segmenter.reset()
        return True

    def close(self) -> None:
        self.cv2.destroyAllWindows()
