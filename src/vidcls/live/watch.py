"""Watch live sources: one process, one model, every result and event as it happens.

:class:`Watch` opens each source (camera, network stream, or file at its real speed), in a
capture thread of this process or in decoding processes, feeds all of them through one
:class:`~vidcls.live.scheduler.Scheduler`, and hands every result and segment event, with its
source's name, to its :class:`~vidcls.live.outputs.Outputs` on the calling thread. A source
that drops is reopened with backoff while the others go on. However a run ends (its sources
end, ``duration``, Ctrl-C, ``break``), the segments still open are closed and their end
events delivered. ``vidcls live``, :func:`iter_live` and :func:`watch` are this.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace

from ..classifier import VideoClassifier
from ..options import SegmentOptions
from ..results import FrameResult, SegmentEvent
from .clips import ClipOptions, EventClips
from .clock import Clock, VirtualClock, is_virtual
from .outputs import Callbacks, Output, Outputs, as_output
from .reading import open_sources
from .rules import Rules
from .scheduler import Feed, Scheduler
from .sources import SourceSpec, gather
from .stats import SourceStats

log = logging.getLogger("vidcls")


class Watch:
    """Named live sources classified at once on one model.

    ``fps``: rate fed per source (None: the model's); ``segments``: action segments per
    source; ``loop``: loop file sources; ``workers``: threads feeding the model (see
    :class:`Scheduler`); ``decoders``: processes decoding the sources (0: capture threads in
    this process; None: :func:`~.reading.default_decoders`); ``outputs``: where results, events and
    status go; ``clips``: event clips and snapshots (:class:`~vidcls.live.clips.ClipOptions`);
    ``settings``: per view name, a :class:`vidcls.config.ViewSettings` (its own filters,
    segments, rate and cooldown); ``clock``: the engine's time (a
    :class:`~vidcls.live.clock.VirtualClock` replays files: see :mod:`vidcls.live.clock`);
    ``phase``: views of the same engine fed before these elsewhere (in another group of
    :mod:`vidcls.live.groups`), so that the ticks spread as in one process.
    """

    def __init__(
        self,
        classifier: VideoClassifier,
        sources: list[SourceSpec],
        *,
        fps: float | None = None,
        segments: SegmentOptions | bool | None = None,
        loop: bool = False,
        workers: int | None = None,
        decoders: int | None = 0,
        outputs: Output | None = None,
        clock: Clock | None = None,
        clips: ClipOptions | None = None,
        settings: dict | None = None,
        phase: int = 0,
    ) -> None:
        self.rules = Rules(settings or {}, segments)
        self.outputs = outputs or Outputs()
        record = None if clips is None else clips.record
        self.virtual = clock is not None and is_virtual(clock)
        replay = clock if self.virtual else None
        self.pool, self.sources = open_sources(classifier, sources, decoders, loop, record, replay)
        extra = {} if clock is None else {"clock": clock}
        self.scheduler = Scheduler(classifier, fps=fps, segments=segments, workers=workers, **extra)
        self.scheduler.phase = phase
        self.clips = None
        if clips is not None:
            self.clips = EventClips(clips, self.sources, self._started, self.scheduler.clock)
        self.feeds: dict[str, Feed] = {}
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._online = dict.fromkeys(self.sources, False)
        self._open = 0
        self._stopped = False
        self._stop_asked = threading.Event()
        self._noted: set[str] = set()  # cameras logged as not opened

    def run(self, duration: float | None = None, display=None) -> list[SourceStats]:
        """Classify until every source has ended, ``duration`` seconds passed, or Ctrl-C;
        every result and event goes to the outputs. ``display`` (a window) is shown every
        ``display.period`` seconds; its ``show(sources)`` returning False stops."""
        for _ in self.results(duration, display):
            pass
        return self.stats()

    def results(self, duration: float | None = None, display=None) -> Iterator[FrameResult]:
        """As :meth:`run`, yielding each result (after the outputs had it); closing the
        generator (``break``) stops the run the same way."""
        clock = self.scheduler.clock
        start = clock()
        end = None if duration is None else start + duration
        show_at = start if display is None else start + display.period
        try:
            self._start()
            while self._open and not self._stop_asked.is_set():
                now = clock()
                if end is not None and now >= end:
                    break
                self._check_status()
                if display is not None and now >= show_at:
                    show_at = now + display.period
                    if not display.show(self.sources):
                        break
                wait = 0.25 if display is None else show_at - now
                if end is not None:
                    wait = max(0.0, min(wait, end - now))
                if self.virtual:
                    yield from self._virtual_turn(wait)
                    continue
                try:
                    item = self._queue.get(timeout=wait)
                except queue.Empty:
                    continue
                yield from self._handle(item)
                yield from self._ready()
        finally:  # also on Ctrl-C and break: nothing computed is lost, open segments close
            self.stop()

    def _ready(self) -> Iterator[FrameResult]:
        """Handle everything that is ready (a burst), without waiting."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            yield from self._handle(item)

    def _virtual_turn(self, longest: float) -> Iterator[FrameResult]:
        """On a virtual clock: serve what is due on this thread and hand it on; when nothing
        was, move the clock on to the next thing due (at most ``longest`` seconds)."""
        wait = self.scheduler.step()
        yield from self._ready()
        if wait is None:  # no feed left: their ends are handled, the run is over
            self._open = 0
        elif wait > 0:
            self.scheduler.clock.advance(min(wait, longest))

    def request_stop(self) -> None:
        """Ask a run going on in another thread to end (within a quarter of a second), as
        ``duration`` would."""
        self._stop_asked.set()

    def stop(self) -> None:
        """Stop feeding, close every open segment and hand what is left to the outputs."""
        if self._stopped:
            return
        self._stopped = True
        try:
            try:
                self.scheduler.stop()
            finally:  # the last events, while the sources can still finish their clips
                self._drain()
        finally:
            try:
                for source in self.sources.values():
                    source.stop()
                if self.pool is not None:
                    self.pool.close()
            finally:  # an output that fails (a full disk) still sees the sources go offline
                self._check_status(final=True)

    def _drain(self) -> None:
        for _ in self._ready():
            pass

    def _started(self, name: str) -> float | None:
        """The monotonic time source ``name``'s result times count from."""
        feed = self.feeds.get(name)
        return None if feed is None else feed.start

    def switch_model(self, model: str | os.PathLike) -> VideoClassifier:
        """Classify every source with ``model`` from its next frame, without stopping: the
        classifier's options stay (filters, window, threads), the model's own rate and fit
        come with it; each open segment closes and each state starts afresh (see
        :meth:`Scheduler.switch`). The new classifier; VidclsError, nothing changed, when
        the model cannot be loaded or does not fit the running sources."""
        old = self.scheduler.classifier
        options = replace(old.options, model=model, labels=None, fit=None, crop=False)
        new = VideoClassifier.create_from_options(options)
        self.scheduler.switch(new)
        if self.pool is not None and new.options.fit != old.options.fit:
            self.pool.set_fit(new.options.fit)
        return new

    def record(self, name: str, seconds: float, path: str) -> bool:
        """Ask view ``name`` for a clip of the next ``seconds`` (and its pre-roll) at
        ``path``; False when it records no clips (no clip options, an unknown view, or a
        camera OpenCV decodes)."""
        source = self.sources.get(name)
        if source is None or self.clips is None:
            return False
        now = self.scheduler.clock()
        return bool(source.clip(path, now, now + seconds))

    def reset(self, name: str) -> None:
        """Forget source ``name``'s state before its next frame (a window's r key)."""
        feed = self.feeds.get(name)
        if feed is not None:
            self.scheduler.reset(feed)

    def _start(self) -> None:
        self.scheduler.start()
        for name, source in self.sources.items():
            source.start()
            changes = self.rules.changes(name)
            self.feeds[name] = self.scheduler.add(name, source, self._result, self._end, **changes)
            self._open += 1

    def _events(self, name: str, events: list[SegmentEvent]) -> list[SegmentEvent]:
        """The events to publish: cooldowns applied, clips and snapshots named."""
        out = [e for e in events if not self.rules.quiet(name, e)]
        if self.clips is not None:
            out = [self.clips.event(name, e) for e in out]
        return out

    def _result(self, feed: Feed, result: FrameResult) -> None:  # on a worker thread
        self._queue.put((feed.name, result, None))

    def _end(self, feed: Feed, events: list[SegmentEvent]) -> None:  # a worker, or stop()
        self._queue.put((feed.name, None, events))

    def _handle(self, item) -> Iterator[FrameResult]:
        name, result, closing = item
        clips = self.clips
        if result is not None:
            if clips is not None:
                clips.result(name, result)
            if result.events:
                result.events = self._events(name, result.events)
            self.outputs.result(name, result)
            for event in result.events:
                self.outputs.event(name, event)
            yield result
            return
        self._open -= 1
        for event in self._events(name, closing):
            self.outputs.event(name, event)

    def _check_status(self, final: bool = False) -> None:
        for name, source in self.sources.items():
            online = source.online and not final
            if online != self._online[name]:
                self._online[name] = online
                self.outputs.status(name, online)
        if not final:
            self._note_unopened()

    def _note_unopened(self) -> None:
        """With several cameras, log each that could not be opened once, when it ends."""
        cameras = {getattr(name, "source", name) for name in self.sources}
        if len(cameras) < 2:
            return  # the only camera's error ends the run
        for camera, why in self.unopened().items():
            if camera not in self._noted:
                self._noted.add(camera)
                log.error("camera %s could not be opened: %s; the others go on", camera, why)

    def stats(self) -> list[SourceStats]:
        """Per source: results, drops, reconnects, latency."""
        now = self.scheduler.clock()
        out = []
        for name, source in self.sources.items():
            feed = self.feeds.get(name)
            stats = feed.stats if feed is not None else SourceStats(str(name))
            stats.captured, stats.reconnects = source.captured, source.reconnects
            stats.error = None if source.error is None else str(source.error)
            if feed is not None:
                stats.seconds = (feed.ended_at or now) - feed.start
            out.append(stats)
        return out

    def unopened(self) -> dict[str, str]:
        """Per camera (a source, whatever its zones) that gave no frame and will give none,
        why: its error, or ``no frame came`` (a stream never reached before the run
        stopped). During a run, a stream still being retried is not in it."""
        out: dict[str, str] = {}
        for name, source in self.sources.items():
            camera = getattr(name, "source", name)  # a zone's view: its camera
            if source.captured or not (source.ended or self._stopped):
                continue
            out[camera] = "no frame came" if source.error is None else str(source.error)
        return out


def _replay_clock(replay: bool) -> VirtualClock | None:
    """A virtual clock to replay files on, or None for the real one."""
    return VirtualClock() if replay else None


def _classifier(classifier: VideoClassifier | None, options: dict) -> VideoClassifier:
    from ..pipeline import load_classifier

    if classifier is None:
        return load_classifier(**options)
    if options:
        raise TypeError("pass either a classifier or classifier options, not both")
    return classifier


def watch(
    sources: Iterable[str],
    on_result: Callable[[str, FrameResult], None] | None = None,
    *,
    on_event: Callable[[str, SegmentEvent], None] | None = None,
    sinks: Iterable[Output] = (),
    classifier: VideoClassifier | None = None,
    fps: float | None = None,
    segments: SegmentOptions | bool | None = True,
    duration: float | None = None,
    loop: bool = False,
    workers: int | None = None,
    decoders: int | None = 0,
    clips: ClipOptions | None = None,
    replay: bool = False,
    **options,
) -> list[SourceStats]:
    """Classify several live sources (``[NAME=]SOURCE`` each) at once on one model until they
    end, ``duration`` seconds pass or Ctrl-C; returns what happened per source.

    ``on_result(name, result)`` gets every result, ``on_event(name, event)`` every segment
    start and end (the ends of segments still open at the end included); ``sinks`` (a
    :class:`~vidcls.sinks.WebhookSink`, :class:`~vidcls.sinks.MqttSink` or any
    :class:`~vidcls.live.Output`) get both and are closed at the end. ``options`` load a
    classifier as :func:`vidcls.load_classifier` does, unless ``classifier`` is given.
    ``decoders``: processes decoding the sources (None: as ``vidcls live``; they start the
    ``spawn`` way, so a script needs ``if __name__ == "__main__":``). A source may also be a
    :class:`~vidcls.live.sources.SourceSpec` (with zones). ``clips``: event clips and
    snapshots (:class:`~vidcls.live.clips.ClipOptions`), named in the end events.
    ``replay``: play the (file) sources on a virtual clock, as fast as the CPU goes, the
    same results on any machine (``duration`` is then in video seconds).
    """
    outputs = Outputs([Callbacks(on_result, on_event), *map(as_output, sinks)])
    try:
        w = Watch(
            _classifier(classifier, options),
            gather(list(sources)),
            fps=fps,
            segments=segments,
            loop=loop,
            workers=workers,
            decoders=decoders,
            outputs=outputs,
            clips=clips,
            clock=_replay_clock(replay),
        )
        return w.run(duration)
    finally:
        outputs.close()


def iter_live(
    source: str,
    *,
    on_event: Callable[[str, SegmentEvent], None] | None = None,
    sinks: Iterable[Output] = (),
    classifier: VideoClassifier | None = None,
    fps: float | None = None,
    segments: SegmentOptions | bool | None = None,
    duration: float | None = None,
    loop: bool = False,
    clips: ClipOptions | None = None,
    replay: bool = False,
    **options,
) -> Iterator[FrameResult]:
    """Results of one live source (camera index or device, stream URL, or a file played at
    its real speed) as they happen; ``break`` to stop. The freshest frame is fed at the
    model's rate, as :func:`watch` feeds each of its sources. ``on_event`` and ``sinks`` get
    every segment start and end, the end of a segment still open when the run stops
    included; ``options`` as :func:`vidcls.load_classifier` (``window=4`` follows recent
    content, as ``vidcls live`` does by default); ``clips`` and ``replay`` as :func:`watch`.
    Raises the source's error if it failed before giving any result."""
    spec = gather([source])[0]
    outputs = Outputs([Callbacks(on_event=on_event), *map(as_output, sinks)])
    try:
        w = Watch(
            _classifier(classifier, options),
            [spec],
            fps=fps,
            segments=segments,
            loop=loop,
            outputs=outputs,
            clips=clips,
            clock=_replay_clock(replay),
        )
        yield from w.results(duration)
        stats = w.stats()[0]
        error = w.sources[spec.name].error
        if error is not None and stats.fed == 0:
            raise error
    finally:
        outputs.close()
