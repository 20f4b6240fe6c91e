"""Many live streams on one box: one model, a state per stream, fed fairly at the model's rate.

A :class:`Scheduler` owns a few worker threads sharing one or more copies of the model (LiteRT
runs one invocation at a time per copy, so while one worker's model runs, another fetches and
prepares its next frame). Every stream added to it gets its own
:class:`~vidcls.pipeline.Pipeline` (state, window, segments) on the least loaded worker. A worker
serves its streams earliest-deadline-first: when a stream is due it takes that stream's freshest
frame (never a queue of old ones), feeds it, and hands the result to the stream's callback.
When the worker cannot keep up, every stream falls behind alike and the ticks it could not serve
are dropped and counted per stream, so latency stays low and no stream starves.

A stream's frames come from a *slot*: anything with ``latest(after, timeout)``, ``ended`` and
``input_fps`` as :class:`~vidcls.capture.FrameGrabber` has (a camera, network stream or file),
or :class:`FrameSlot` for frames pushed in by their producer (a browser over a WebSocket): a
push wakes the worker (no polling), tells the producer which unfed frame it replaced, and a
stream added with ``slack`` feeds a client's slightly early frames at once, at the model's rate
on average.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .capture import Captured
from .classifier import VideoClassifier
from .model import StreamModel
from .pipeline import Pipeline, feed_rate
from .results import FrameResult, SegmentEvent
from .segments import SegmentOptions

log = logging.getLogger("vidcls")
POLL = 0.005  # seconds between looks at a due stream that has no new frame
IDLE = 1.0  # the same for a slot that wakes its worker when a frame comes (a safety net)
LATENCIES = 4096  # recent capture-to-result latencies kept per stream


def default_copies() -> int:
    """Model copies run at once: half the cores, at least one (the other half decodes: a
    30 fps camera costs about as much to decode as its 5 model runs a second). On the 2-core
    machine this was measured on, two copies ran no faster together than one."""
    return max(1, (os.cpu_count() or 1) // 2)


class FrameSlot:
    """The freshest pushed frame of one stream: ``put`` replaces it, ``latest`` takes it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: Captured | None = None
        self._taken = -1  # index of the last frame ``latest`` handed out
        self.captured = 0
        self.ended = False
        self.input_fps = 0.0  # set by the producer when it knows (0: unknown)
        self.generation = 0
        self.wake: Callable[[], None] | None = None  # set by the scheduler: a frame came

    def put(self, frame, captured_at: float | None = None) -> Captured | None:
        """Offer a new frame (a PyAV frame or an RGB array). An older one never taken is
        dropped and returned (so its producer can account for it); else None."""
        now = time.monotonic() if captured_at is None else captured_at
        with self._lock:
            old = self._latest
            dropped = old if old is not None and old.index > self._taken else None
            self._latest = Captured(frame, now, self.captured, self.generation)
            self.captured += 1
        if self.wake is not None:
            self.wake()
        return dropped

    def latest(self, after: int = -1, timeout: float = 0.0) -> Captured | None:
        """The freshest frame with index > ``after``, or None (never waits)."""
        with self._lock:
            got = self._latest
            if got is None or got.index <= after:
                return None
            self._taken = max(self._taken, got.index)
            return got

    def close(self) -> None:
        """No more frames: the stream ends once this is seen."""
        self.ended = True
        if self.wake is not None:
            self.wake()


@dataclass
class StreamStats:
    """What the scheduler did for one stream."""

    fed: int = 0  # results produced
    dropped: int = 0  # ticks at the model's rate not served because the workers were behind
    resets: int = 0  # state resets after the source was reopened
    ended: float | None = None  # when the stream ended
    latencies: np.ndarray = field(default_factory=lambda: np.zeros(LATENCIES, np.float32))

    def record(self, latency_ms: float) -> None:
        self.latencies[self.fed % LATENCIES] = latency_ms
        self.fed += 1

    def latency_percentiles(self, *qs: float) -> list[float]:
        """Percentiles of the recent capture-to-result latencies (ms); NaN before any."""
        kept = self.latencies[: min(self.fed, LATENCIES)]
        return [float(np.percentile(kept, q)) if kept.size else float("nan") for q in qs]


class Stream:
    """One stream in a :class:`Scheduler`: a slot, a pipeline on a worker, a callback."""

    def __init__(self, name, slot, pipeline, period, on_result, on_end, worker) -> None:
        self.name = name
        self.slot = slot
        self.pipeline = pipeline
        self.period = period  # seconds between fed frames; 0: every new frame
        self.slack = 0.0  # see Scheduler.add
        self.on_result = on_result
        self.on_end = on_end
        self.worker = worker
        self.stats = StreamStats()
        self.start = time.monotonic()
        self.next_due = self.start
        self.tick = self.start  # with slack: when the next frame is due on average
        self.used = -1  # index of the last frame fed
        self.last_fed = self.start
        self.generation = 0
        self.pending: list[SegmentEvent] = []  # events to send with the next result
        self.closed = False
        self.waiting = False  # due, and waiting for its slot to wake the worker

    def serve(self, now: float) -> bool:
        """Feed the freshest frame if there is a new one; False when the stream has ended."""
        got = self.slot.latest(self.used, 0.0)
        if got is None:
            if self.slot.ended:
                return False
            self.worker.wait_for_frame(self, now)  # due, but nothing new yet
            return True
        period = self.period
        if period and self.slack:  # a virtual clock: early frames spend slack, late ones wait
            self.tick = max(self.tick, now) + period
            self.next_due = self.tick - self.slack
        elif period:
            late = now - self.next_due
            if late >= period:  # the workers fell behind: those ticks are dropped, not queued
                skipped = int(late // period)
                self.stats.dropped += skipped
                self.next_due += skipped * period
            self.next_due += period
            fps = self.slot.input_fps
            if 0 < fps * period < 2:  # a source about as slow as the model: due when frames come
                self.next_due -= 0.5 * min(now - got.captured_at, 0.5 * period)
        else:
            self.next_due = now
        self.last_fed = now
        self.used = got.index
        if got.generation != self.generation:
            self.generation = got.generation
            self.pending += self.pipeline.reset()
            self.stats.resets += 1
        result = self.pipeline.feed(now - self.start, got.frame, captured_at=got.captured_at)
        result.input_fps = self.slot.input_fps
        if self.pending:
            result.events, self.pending = self.pending + result.events, []
        self.stats.record(result.latency_ms)
        self.on_result(self, result)
        return True

    def finish(self) -> list[SegmentEvent]:
        """Close the stream's open segment (end of input or shutdown); its end events."""
        events, self.pending = self.pending + self.pipeline.finish(), []
        return events


class _Worker(threading.Thread):
    """Serves its streams earliest-deadline-first on its copy of the model (shared with other
    workers; invocations take turns)."""

    def __init__(self, scheduler: Scheduler, classifier: VideoClassifier, index: int) -> None:
        super().__init__(name=f"vidcls-worker-{index}", daemon=True)
        self.scheduler = scheduler
        self.classifier = classifier
        self.streams: list[Stream] = []
        self.cond = threading.Condition()
        self.stopping = False
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            self._loop()
        except Exception as e:  # a model failure ends this worker's streams, reported by stop()
            self.error = e
            log.error("%s", e)
            for stream in list(self.streams):
                self.scheduler._end(stream)

    def wait_for_frame(self, stream: Stream, now: float) -> None:
        """``stream`` is due but has no new frame: look again soon or, if its slot wakes us
        (:class:`FrameSlot`), when a frame comes."""
        with self.cond:
            if getattr(stream.slot, "wake", None) is None:
                stream.next_due = now + POLL
            elif stream.slot.captured - 1 > stream.used or stream.slot.ended:
                stream.next_due = now  # it came meanwhile
            else:
                stream.waiting, stream.next_due = True, now + IDLE

    def wake(self, stream: Stream) -> None:
        """A frame came in ``stream``'s slot (or it ended): serve it now if it waits."""
        with self.cond:
            if stream.waiting:
                stream.waiting, stream.next_due = False, time.monotonic()
                self.cond.notify()

    def _loop(self) -> None:
        clock = time.monotonic
        while True:
            with self.cond:
                while not self.stopping and not self.streams:
                    self.cond.wait()
                if self.stopping:
                    return
                stream = min(self.streams, key=_due)
                delay = stream.next_due - clock()
                if delay > 0:
                    self.cond.wait(delay)  # woken early by a new stream or stop
                    continue
            if not stream.serve(clock()):
                self.scheduler._end(stream)


def _due(stream: Stream) -> float:
    return stream.next_due


class Scheduler:
    """Feeds any number of streams on copies of one classifier's model.

    ``fps``: the rate each stream is fed (None: the model's own, 0: every new frame);
    ``segments``: action segments per stream; ``copies``: copies of the model that run at
    once (default :func:`default_copies`); ``workers``: threads feeding streams, sharing the
    copies in turn (default two per copy: one fetches and prepares a frame while the other's
    model runs).
    """

    def __init__(
        self,
        classifier: VideoClassifier,
        *,
        fps: float | None = None,
        segments: SegmentOptions | bool | None = None,
        workers: int | None = None,
        copies: int | None = None,
    ) -> None:
        self.classifier = classifier
        self.rate = feed_rate(classifier, fps)
        self.segments = segments
        copies = max(1, copies or default_copies())
        count = max(1, workers or 2 * copies)
        models = [classifier]
        for _ in range(1, min(copies, count)):  # the file was vetted when first loaded
            model = StreamModel(
                classifier.model.path,
                num_threads=classifier.model.num_threads,
                backend=classifier.model.backend,
                isolate=False,
            )
            models.append(VideoClassifier(model, classifier.labels, classifier.options))
        self.workers = [_Worker(self, models[i % len(models)], i) for i in range(count)]
        self._lock = threading.Lock()
        self.streams: list[Stream] = []
        self.ended: list[Stream] = []
        self._started = False

    def start(self) -> Scheduler:
        if not self._started:
            self._started = True
            for w in self.workers:
                w.start()
        return self

    def add(
        self,
        name: str,
        slot,
        on_result: Callable[[Stream, FrameResult], None],
        on_end: Callable[[Stream, list[SegmentEvent]], None] | None = None,
        slack: float = 0.0,
        **changes,
    ) -> Stream:
        """Start feeding ``slot`` as stream ``name``; ``on_result(stream, result)`` is called
        on a worker thread for each result (keep it quick), ``on_end(stream, events)`` once
        when the slot ends or the stream is removed. ``slack``: seconds a frame may come
        before its tick and still be fed at once, the rate kept on average (frames pushed
        by a client that paces itself, with timer and network jitter); 0: on the ticks.
        ``changes``: per-stream classifier options (``top_k``, ``threshold``, ``allow``,
        ``deny``, ``window``)."""
        with self._lock:
            worker = min(self.workers, key=lambda w: len(w.streams))
            pipeline = Pipeline(worker.classifier.new_stream(**changes), segments=self.segments)
            pipeline.timed = True
            pipeline.start(self.rate, 30.0)
            period = 1.0 / self.rate if self.rate else 0.0
            stream = Stream(name, slot, pipeline, period, on_result, on_end, worker)
            stream.slack = slack
            if isinstance(slot, FrameSlot):
                slot.wake = functools.partial(worker.wake, stream)
            if not slack:  # streams added together spread over the period: work interleaves
                stream.next_due = stream.start + period * (len(self.streams) * 0.618034 % 1.0)
            self.streams.append(stream)
        with worker.cond:
            worker.streams.append(stream)
            worker.cond.notify()
        return stream

    def remove(self, stream: Stream) -> None:
        """Stop feeding ``stream`` (its open segment is closed and passed to ``on_end``)."""
        self._end(stream)

    def _end(self, stream: Stream) -> None:
        worker = stream.worker
        with worker.cond:
            if stream.closed:
                return
            stream.closed = True
            stream.stats.ended = time.monotonic()
            if stream in worker.streams:
                worker.streams.remove(stream)
        with self._lock:
            if stream in self.streams:
                self.streams.remove(stream)
            self.ended.append(stream)
        events = stream.finish()
        if stream.on_end is not None:
            stream.on_end(stream, events)

    def stop(self) -> None:
        """Stop every worker (after its current frame) and end every stream."""
        for w in self.workers:
            with w.cond:
                w.stopping = True
                w.cond.notify_all()
        for w in self.workers:
            if w.is_alive():
                w.join(timeout=10)
        for stream in list(self.streams):
            self._end(stream)

    @property
    def error(self) -> Exception | None:
        """The first worker failure, if any."""
        return next((w.error for w in self.workers if w.error is not None), None)

    def __enter__(self) -> Scheduler:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
