"""Live sources on one box: one model, a state per source, each fed fairly at the model's rate.

A :class:`Scheduler` owns a few worker threads sharing one or more copies of the model (LiteRT
runs one invocation at a time per copy, so while one worker's model runs, another fetches and
prepares its next frame). Every source added to it becomes a :class:`Feed` with its own
:class:`~vidcls.pipeline.Pipeline` (state, window, segments) on the least loaded worker. A
worker serves its feeds earliest-deadline-first: when a feed is due it takes that source's
freshest frame (never a queue of old ones), feeds it, and hands the result to the feed's
callback. When the workers cannot keep up, every feed falls behind alike and the ticks that
could not be served are dropped and counted per feed, so latency stays low and no source
starves. Every live source runs here. Time comes from ``clock`` (``time.monotonic`` unless
given another); :meth:`Worker.serve_next` is one step of a worker's loop (driven tick by tick
without threads on a :class:`~vidcls.live.clock.VirtualClock`: :meth:`Scheduler.step` serves
what is due on its caller's thread, and each model run takes the clock's ``run_cost``).
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Callable

from ..classifier import VideoClassifier
from ..errors import VidclsError
from ..model import StreamModel
from ..options import SegmentOptions
from ..pipeline import Pipeline, feed_rate
from ..results import FrameResult, SegmentEvent
from .capture import FrameSource
from .clock import Clock, is_virtual
from .stats import SourceStats

log = logging.getLogger("vidcls")
POLL = 0.005  # seconds between looks at a due source that cannot wake its worker
IDLE = 1.0  # the same for a source that wakes its worker when a frame comes (a safety net)


def default_copies() -> int:
    """Model copies run at once: half the cores, at least one (the other half decodes: a
    30 fps camera costs about as much to decode as its 5 model runs a second). On the 2-core
    machine this was measured on, two copies ran no faster together than one."""
    return max(1, (os.cpu_count() or 1) // 2)


class Feed:
    """One source in a :class:`Scheduler`: its frames, its pipeline on a worker, when it is
    due next, and its counts (``stats``)."""

    def __init__(self, name, source, pipeline, period, on_result, on_end, worker, now) -> None:
        self.name = name
        self.source: FrameSource = source
        self.pipeline: Pipeline = pipeline
        self.period = period  # seconds between fed frames; 0: every new frame
        self.slack = 0.0  # see Scheduler.add
        self.on_result = on_result
        self.on_end = on_end
        self.worker: Worker = worker
        self.stats = SourceStats(str(name))
        self.start = self.next_due = self.tick = self.last_fed = now
        self.used = -1  # index of the last frame fed
        self.generation = 0
        self.pending: list[SegmentEvent] = []  # events to send with the next result
        self.reset_asked = False
        self.closed = False
        self.ended_at: float | None = None
        self.waiting = False  # due, and waiting for its source to wake the worker
        self.settings: tuple = ({}, None, None)  # classifier changes, segments, fps asked for
        self.replacement: tuple[Pipeline, float] | None = None  # another model's, from a switch

    def serve(self, now: float) -> bool:
        """Feed the freshest frame if there is a new one; False when the source has ended."""
        if self.replacement is not None:
            self._switch()
        got = self.source.latest(self.used)
        if got is None:
            if self.source.ended:
                return False
            self.worker.wait_for_frame(self, now)  # due, but nothing new yet
            return True
        self._advance(now, got.captured_at)
        self.last_fed, self.used = now, got.index
        if got.generation != self.generation or self.reset_asked:
            self.stats.resets += got.generation != self.generation  # reopened after a loss
            self.pending += self.pipeline.reset(interrupted=got.generation != self.generation)
            self.generation, self.reset_asked = got.generation, False
        result = self.pipeline.feed(now - self.start, got.frame)
        if self.worker.ran is not None:  # a virtual clock: the run takes its simulated time
            self.worker.ran()
        result.latency_ms = 1e3 * (self.worker.clock() - got.captured_at)
        result.input_fps = self.source.input_fps
        if self.pending:
            result.events, self.pending = self.pending + result.events, []
        self.stats.record(result.latency_ms)
        self.on_result(self, result)
        return True

    def _advance(self, now: float, captured_at: float) -> None:
        """When this feed is due next, counting the ticks missed as dropped."""
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
            fps = self.source.input_fps
            if 0 < fps * period < 2:  # a source about as slow as the model: due when frames come
                self.next_due -= 0.5 * min(now - captured_at, 0.5 * period)
        else:
            self.next_due = now

    def _switch(self) -> None:
        """Take the pipeline a model switch left for this feed (on the worker, between
        frames): the open segment closes, its end event goes with the next result."""
        with self.worker.cond:
            replacement, self.replacement = self.replacement, None
        if replacement is not None:
            self.pending += self.pipeline.finish()
            self.pipeline, self.period = replacement

    def finish(self) -> list[SegmentEvent]:
        """Close the feed's open segment (end of input, shutdown, a lost source); its end events."""
        events, self.pending = self.pending + self.pipeline.finish(self.source.lost), []
        return events


class Worker(threading.Thread):
    """Serves its feeds earliest-deadline-first on its copy of the model (shared with other
    workers; invocations take turns)."""

    def __init__(self, scheduler: Scheduler, classifier: VideoClassifier, index: int) -> None:
        super().__init__(name=f"vidcls-worker-{index}", daemon=True)
        self.scheduler = scheduler
        self.classifier = classifier
        self.clock = scheduler.clock
        self.ran = getattr(self.clock, "ran", None)
        self.feeds: list[Feed] = []
        self.cond = threading.Condition()
        self.stopping = False
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            while True:
                with self.cond:
                    while not self.stopping and not self.feeds:
                        self.cond.wait()
                    if self.stopping:
                        return
                    feed = min(self.feeds, key=_due)
                    delay = feed.next_due - self.clock()
                    if delay > 0:
                        self.cond.wait(delay)  # woken early by a new feed, a frame or stop
                        continue
                self._serve(feed)
        except Exception as e:  # a model failure ends this worker's feeds, reported by stop()
            self.error = e
            log.error("%s", e)
            for feed in list(self.feeds):
                self.scheduler._end(feed)

    def serve_next(self) -> float | None:
        """One step of the loop: serve the earliest feed if it is due; else the seconds until
        it is (None without feeds)."""
        with self.cond:
            if not self.feeds:
                return None
            feed = min(self.feeds, key=_due)
            delay = feed.next_due - self.clock()
        if delay > 0:
            return delay
        self._serve(feed)
        return 0.0

    def _serve(self, feed: Feed) -> None:
        if not feed.serve(self.clock()):
            self.scheduler._end(feed)

    def wait_for_frame(self, feed: Feed, now: float) -> None:
        """``feed`` is due but has no new frame: look again soon or, if its source wakes us,
        when a frame comes."""
        with self.cond:
            if not feed.source.wakes:
                feed.next_due = now + POLL
            elif feed.source.captured - 1 > feed.used or feed.source.ended:
                feed.next_due = now  # it came meanwhile
            else:
                feed.waiting, feed.next_due = True, now + IDLE

    def wake(self, feed: Feed) -> None:
        """A frame came to ``feed``'s source (or it ended): serve it now if it waits."""
        with self.cond:
            if feed.waiting:
                feed.waiting, feed.next_due = False, self.clock()
                self.cond.notify()


def _due(feed: Feed) -> float:
    return feed.next_due


def _copies(classifier: VideoClassifier, n: int) -> list[VideoClassifier]:
    """``classifier`` and ``n - 1`` more copies of its model (run at once, each its own)."""
    models = [classifier]
    for _ in range(1, n):  # the file was vetted when first loaded
        model = StreamModel(
            classifier.model.path,
            num_threads=classifier.model.num_threads,
            backend=classifier.model.backend,
            isolate=False,
        )
        models.append(VideoClassifier(model, classifier.labels, classifier.options))
    return models


class Scheduler:
    """Feeds any number of live sources on copies of one classifier's model.

    ``fps``: the rate each source is fed (None: the model's own, 0: every new frame);
    ``segments``: action segments per source; ``copies``: copies of the model that run at
    once (default :func:`default_copies`); ``workers``: threads feeding sources, sharing the
    copies in turn (default two per copy: one fetches and prepares a frame while the other's
    model runs); ``clock``: seconds, monotonic (a
    :class:`~vidcls.live.clock.VirtualClock`: no threads, :meth:`step` serves).
    """

    def __init__(
        self,
        classifier: VideoClassifier,
        *,
        fps: float | None = None,
        segments: SegmentOptions | bool | None = None,
        workers: int | None = None,
        copies: int | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.classifier = classifier
        self.fps = fps
        self.rate = feed_rate(classifier, fps)
        self.segments = segments
        self.clock = clock
        self.copies = max(1, copies or default_copies())
        count = max(1, workers or 2 * self.copies)
        models = _copies(classifier, min(self.copies, count))
        self.workers = [Worker(self, models[i % len(models)], i) for i in range(count)]
        self._lock = threading.Lock()
        self.feeds: list[Feed] = []
        self.ended: list[Feed] = []
        self.phase = 0  # feeds of the same engine in other schedulers (groups): ticks spread
        self._started = False

    def start(self) -> Scheduler:
        """Start the workers (feeds added before or after are served); none on a virtual
        clock (:meth:`step` serves)."""
        if not self._started:
            self._started = True
            if not is_virtual(self.clock):
                for w in self.workers:
                    w.start()
        return self

    def step(self) -> float | None:
        """Each worker serves its earliest feed if due, on this thread (a virtual clock's
        engine): 0.0 if one was, else the seconds until one is (None without feeds)."""
        waits = [wait for w in self.workers if (wait := w.serve_next()) is not None]
        return min(waits) if waits else None

    def add(
        self,
        name: str,
        source: FrameSource,
        on_result: Callable[[Feed, FrameResult], None],
        on_end: Callable[[Feed, list[SegmentEvent]], None] | None = None,
        slack: float = 0.0,
        **changes,
    ) -> Feed:
        """Start feeding ``source`` as ``name``; ``on_result(feed, result)`` is called on a
        worker thread for each result (keep it quick), ``on_end(feed, events)`` once when
        the source ends or the feed is removed, with the end events of its open segment.
        ``slack``: seconds a frame may come before its tick and still be fed at once, the
        rate kept on average (frames pushed by a client that paces itself, with timer and
        network jitter); 0: on the ticks. ``changes``: per-source classifier options
        (``top_k``, ``threshold``, ``allow``, ``deny``, ``window``), and ``segments`` and
        ``fps`` for this source instead of the scheduler's."""
        settings = (changes, changes.pop("segments", self.segments), changes.pop("fps", None))
        with self._lock:
            worker = min(self.workers, key=lambda w: len(w.feeds))
            pipeline, period = self._pipeline(worker.classifier, settings, self.rate)
            feed = Feed(name, source, pipeline, period, on_result, on_end, worker, self.clock())
            feed.slack, feed.settings = slack, settings
            if source.wakes:
                source.wake = functools.partial(worker.wake, feed)
            if not slack:  # feeds added together spread over the period: work interleaves
                feed.next_due = feed.start + period * (
                    (self.phase + len(self.feeds)) * 0.618034 % 1.0
                )
            self.feeds.append(feed)
        with worker.cond:
            worker.feeds.append(feed)
            worker.cond.notify()
        return feed

    def _pipeline(
        self, classifier: VideoClassifier, settings: tuple, rate: float | None
    ) -> tuple[Pipeline, float]:
        """A feed's pipeline on ``classifier`` with its ``settings`` (``rate``: the rate fed
        unless they say), and its period."""
        changes, segments, fps = settings
        rate = rate if fps is None else feed_rate(classifier, fps)
        pipeline = Pipeline(classifier.new_stream(**changes), segments=segments)
        pipeline.timed = True
        pipeline.start(rate, 30.0)
        return pipeline, 1.0 / rate if rate else 0.0

    def switch(self, classifier: VideoClassifier) -> None:
        """Feed every source with ``classifier``'s model from its next frame: each feed's open
        segment closes (its end event comes with the next result) and its state starts
        afresh, with its own settings; feeds added later use it too. VidclsError, with nothing
        changed, when the model takes pictures of another size or a feed's settings do not
        fit it (an allow list naming labels it does not have)."""
        old, new = self.classifier.model.layout, classifier.model.layout
        if (old.height, old.width) != (new.height, new.width):
            raise VidclsError(
                f"the new model takes {new.width}x{new.height} pictures, the running one "
                f"{old.width}x{old.height}: restart to switch",
                classifier.model.path,
            )
        models = _copies(classifier, min(self.copies, len(self.workers)))
        rate = feed_rate(classifier, self.fps)
        with self._lock:
            made = []
            for feed in self.feeds:  # everything made first: a bad feed changes nothing
                model = models[self.workers.index(feed.worker) % len(models)]
                try:
                    made.append((feed, self._pipeline(model, feed.settings, rate)))
                except (VidclsError, ValueError) as e:
                    raise VidclsError(f"{feed.name}: {e}", classifier.model.path) from None
            self.classifier, self.rate = classifier, rate
            for i, w in enumerate(self.workers):
                w.classifier = models[i % len(models)]
            for feed, replacement in made:
                with feed.worker.cond:
                    feed.replacement = replacement
                    feed.worker.cond.notify()

    def reset(self, feed: Feed) -> None:
        """Forget ``feed``'s state before its next frame (its open segment is closed)."""
        feed.reset_asked = True

    def remove(self, feed: Feed) -> None:
        """Stop feeding ``feed`` (its open segment is closed and passed to ``on_end``)."""
        self._end(feed)

    def _end(self, feed: Feed) -> None:
        worker = feed.worker
        with worker.cond:
            if feed.closed:
                return
            feed.closed = True
            feed.ended_at = self.clock()
            if feed in worker.feeds:
                worker.feeds.remove(feed)
        with self._lock:
            if feed in self.feeds:
                self.feeds.remove(feed)
            self.ended.append(feed)
        events = feed.finish()
        if feed.on_end is not None:
            feed.on_end(feed, events)

    def stop(self) -> None:
        """Stop every worker (after its current frame) and end every feed."""
        for w in self.workers:
            with w.cond:
                w.stopping = True
                w.cond.notify_all()
        for w in self.workers:
            if w.is_alive():
                w.join(timeout=10)
        for feed in list(self.feeds):
            self._end(feed)

    @property
    def error(self) -> Exception | None:
        """The first worker failure, if any."""
        return next((w.error for w in self.workers if w.error is not None), None)

    def __enter__(self) -> Scheduler:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
