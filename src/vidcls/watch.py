"""Watch several live sources at once: one process, one model, results as they happen.

:class:`Watch` opens each source (camera, network stream, or file at its real speed) in its
own capture thread that keeps only the freshest frame, feeds all of them through one
:class:`~vidcls.scheduler.Scheduler`, and hands every result and segment event, with its
source's name, to one callback on the calling thread. A source that drops is reopened with
backoff while the others go on. ``vidcls live SRC1 SRC2 ...`` is this.
"""

from __future__ import annotations

import logging
import os
import queue
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .capture import FrameGrabber
from .classifier import VideoClassifier
from .media import open_source
from .results import FrameResult
from .scheduler import Scheduler, Stream
from .segments import SegmentOptions
from .sources import SourceSpec

log = logging.getLogger("vidcls")
PREVIEW_PERIOD = 0.2  # seconds between mosaic refreshes
Emit = Callable[[str, FrameResult], None]  # (source name, result); a result may be events only


@dataclass
class SourceReport:
    """What one source did during a watch."""

    name: str
    fed: int
    captured: int
    dropped: int
    reconnects: int
    seconds: float
    p50_ms: float
    p99_ms: float
    error: str | None = None

    @property
    def rate(self) -> float:
        """Results per second."""
        return self.fed / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        problem = f"; {self.error}" if self.error else ""
        latency = f"latency p50 {self.p50_ms:.0f} ms p99 {self.p99_ms:.0f} ms" if self.fed else ""
        return (
            f"{self.name}: {self.fed} results ({self.rate:.2f}/s) of {self.captured} frames, "
            f"{self.dropped} dropped, {self.reconnects} reconnects"
            f"{', ' + latency if latency else ''}{problem}"
        )


class Watch:
    """Several named sources classified at once on one model (see :class:`Scheduler`).

    ``fps``: rate fed per source (None: the model's); ``segments``: action segments per
    source; ``loop``: loop file sources; ``decoder_threads``: per source (1 keeps a frame of
    latency and a thread per source away); ``decoders``: processes decoding the sources (0:
    capture threads in this process; None: :func:`default_decoders`); ``workers``: threads
    feeding the model; ``on_status(name, online)``: a source came up or was lost.
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
        decoder_threads: int = 1,
        decoders: int | None = 0,
        on_status: Callable[[str, bool], None] | None = None,
    ) -> None:
        self.specs = sources
        self.pool = None
        if decoders is None:
            decoders = default_decoders(len(sources))
        if decoders > 0:
            self.pool = _decoder_pool(classifier, sources, decoders, loop)
            self.grabbers = self.pool.slots
        else:
            self.grabbers = _grabbers(sources, loop, decoder_threads)
        self.scheduler = Scheduler(classifier, fps=fps, segments=segments, workers=workers)
        self.on_status = on_status
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._online = dict.fromkeys(self.grabbers, False)
        self._open = 0
        self.started = self.stopped = 0.0

    def run(
        self,
        emit: Emit,
        duration: float | None = None,
        preview: Callable[[dict[str, FrameGrabber]], bool] | None = None,
    ) -> list[SourceReport]:
        """Call ``emit(name, result)`` for every result until every source has ended,
        ``duration`` seconds passed, or Ctrl-C; then stop, close every open segment, hand
        the remaining results and end events to ``emit``, and report per source.
        ``preview(grabbers)`` is called about five times a second (a window); False stops."""
        self.started = time.monotonic()
        shown = 0.0
        try:
            self._start()
            while self._open and (duration is None or self._elapsed() < duration):
                self._check_status()
                if preview is not None and time.monotonic() - shown >= PREVIEW_PERIOD:
                    shown = time.monotonic()
                    if not preview(self.grabbers):
                        break
                wait = 0.05 if preview is not None else 0.25
                if duration is not None:
                    wait = max(0.0, min(wait, duration - self._elapsed()))
                try:
                    item = self._queue.get(timeout=wait)
                except queue.Empty:
                    continue
                self._handle(item, emit)
                self._drain(emit)  # a burst: all that is ready, without waiting
        finally:  # also on Ctrl-C: nothing computed is lost
            self._stop()
            self._drain(emit)
            self._check_status(final=True)
        return self.reports()

    def _drain(self, emit: Emit) -> None:
        """Hand on every item already queued."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            self._handle(item, emit)

    def _elapsed(self) -> float:
        return time.monotonic() - self.started

    def _start(self) -> None:
        self.scheduler.start()
        for spec in self.specs:
            grabber = self.grabbers[spec.name]
            grabber.start()
            self.scheduler.add(spec.name, grabber, self._result, self._ended)
            self._open += 1

    def _result(self, stream: Stream, result: FrameResult) -> None:  # on a worker thread
        self._queue.put((stream.name, result, False))

    def _ended(self, stream: Stream, events) -> None:
        result = FrameResult(time.monotonic() - stream.start, [], events=events)
        self._queue.put((stream.name, result, True))

    def _handle(self, item, emit: Emit) -> None:
        name, result, ended = item
        if ended:
            self._open -= 1
            error = self.grabbers[name].error
            if error is not None:
                log.warning("%s", error)
            if not result.events:
                return
        emit(name, result)

    def _check_status(self, final: bool = False) -> None:
        if self.on_status is None:
            return
        for name, grabber in self.grabbers.items():
            online = grabber.online and not final
            if online != self._online[name]:
                self._online[name] = online
                self.on_status(name, online)

    def _stop(self) -> None:
        self.scheduler.stop()
        for grabber in self.grabbers.values():
            grabber.stop()
        if self.pool is not None:
            self.pool.close()
        self.stopped = time.monotonic()

    def reports(self) -> list[SourceReport]:
        """Per source: results, drops, reconnects, latency."""
        streams = {s.name: s for s in self.scheduler.ended + self.scheduler.streams}
        end = self.stopped or time.monotonic()
        out = []
        for spec in self.specs:
            grabber, stream = self.grabbers[spec.name], streams.get(spec.name)
            stats = stream.stats if stream is not None else None
            p50, p99 = stats.latency_percentiles(50, 99) if stats else (float("nan"),) * 2
            out.append(
                SourceReport(
                    spec.name,
                    stats.fed if stats else 0,
                    grabber.captured,
                    stats.dropped if stats else 0,
                    grabber.reconnects,
                    _seconds(stream, end),
                    p50,
                    p99,
                    str(grabber.error) if grabber.error is not None else None,
                )
            )
        return out


def default_decoders(sources: int) -> int:
    """Decoding processes for ``sources`` live sources: one per four sources, at most one
    per core; none below four sources (capture threads in this process are enough)."""
    return min(os.cpu_count() or 1, sources // 4)


def _grabbers(sources: list[SourceSpec], loop: bool, threads: int) -> dict[str, FrameGrabber]:
    """A capture thread per source, made at once, so a bad path or URL fails before anything
    starts (an http URL is asked whether it is a file, which is slow when its host is down)."""

    def grabber(spec: SourceSpec) -> FrameGrabber:
        return FrameGrabber(open_source(spec.source, True, loop, threads))

    with ThreadPoolExecutor(min(16, len(sources) or 1)) as pool:
        made = list(pool.map(grabber, sources))
    return {s.name: g for s, g in zip(sources, made, strict=True)}


def _decoder_pool(classifier: VideoClassifier, sources, processes: int, loop: bool):
    """The sources in ``processes`` decoding processes, handing frames over at model size."""
    from .decoders import DecoderPool

    lay, options = classifier.model.layout, classifier.options
    return DecoderPool(
        sources,
        lay.height,
        lay.width,
        processes=processes,
        resize=options.resize,
        crop=options.crop,
        loop=loop,
    )


def _seconds(stream: Stream | None, end: float) -> float:
    """How long a stream was fed: from its start to its end (or ``end`` if still open)."""
    if stream is None:
        return 0.0
    return (stream.stats.ended or end) - stream.start


def watch(
    sources: list[str],
    emit: Emit,
    *,
    classifier: VideoClassifier | None = None,
    fps: float | None = None,
    segments: SegmentOptions | bool | None = True,
    duration: float | None = None,
    loop: bool = False,
    workers: int | None = None,
    decoders: int | None = 0,
    **options,
) -> list[SourceReport]:
    """Classify several live sources (``[NAME=]SOURCE`` each) at once on one model, calling
    ``emit(name, result)`` for every result and segment event until they end, ``duration``
    seconds pass or Ctrl-C; a report per source. ``options`` load a classifier as
    :func:`vidcls.load_classifier` does, unless ``classifier`` is given. ``decoders``:
    processes decoding the sources (None: as ``vidcls live``; they are started the
    ``spawn`` way, so a script needs ``if __name__ == "__main__":``)."""
    from .pipeline import _classifier
    from .sources import gather

    specs = gather(list(sources))
    w = Watch(
        _classifier(classifier, options),
        specs,
        fps=fps,
        segments=segments,
        loop=loop,
        workers=workers,
        decoders=decoders,
    )
    return w.run(emit, duration)
