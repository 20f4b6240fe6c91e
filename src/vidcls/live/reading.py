"""How a :class:`~vidcls.live.watch.Watch` reads its sources: a capture thread each in this
process, decoding processes that hand frames over at the model's size, or, on a virtual
clock, files replayed frame by frame as they come due (in this process or in those)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from ..classifier import VideoClassifier
from .capture import FrameSource
from .clock import Clock
from .replay import frame_source
from .sources import SourceSpec
from .zones import views_of


def default_decoders(sources: int) -> int:
    """Decoding processes for ``sources`` live sources: one per four sources, at most one
    per core; none below four sources (capture threads in this process are enough)."""
    return min(os.cpu_count() or 1, sources // 4)


def open_sources(
    classifier: VideoClassifier,
    specs: list[SourceSpec],
    decoders: int | None,
    loop: bool,
    record=None,
    replay: Clock | None = None,
):
    """The decoding pool (None without one) and a frame source per view (a source's whole
    frame, each zone), read in ``decoders`` processes (None: :func:`default_decoders`; 0:
    threads here), with ``record`` options for event clips, replayed on the virtual clock
    ``replay`` when given."""
    if decoders is None:
        decoders = default_decoders(len(specs))
    if decoders > 0:
        pool = _decoder_pool(classifier, specs, decoders, loop, record, replay)
        return pool, dict(pool.sources)
    grabbers = _grabbers(specs, loop, record, replay)
    sources: dict[str, FrameSource] = {}
    for spec in specs:
        sources.update(views_of(spec, grabbers[spec.name]))
    return None, sources


def _grabbers(
    specs: list[SourceSpec], loop: bool, record=None, replay: Clock | None = None
) -> dict[str, FrameSource]:
    """A capture thread per source (decoding on one thread: no frame of decoder delay), or
    with a virtual clock to ``replay`` them on, a :class:`ReplayedFile` per file; made at
    once, so a bad path or URL fails before anything starts (an http URL is asked whether it
    is a file, which is slow when its host is down)."""

    def grabber(spec: SourceSpec) -> FrameSource:
        return frame_source(spec.source, loop, record, replay)

    with ThreadPoolExecutor(min(16, len(specs) or 1)) as pool:
        made = list(pool.map(grabber, specs))
    return {s.name: g for s, g in zip(specs, made, strict=True)}


def _decoder_pool(
    classifier: VideoClassifier, specs, processes: int, loop: bool, record=None, replay=None
):
    """The sources in ``processes`` decoding processes, handing frames over at model size
    (replayed on the virtual clock ``replay``, if given)."""
    from .decoders import DecoderPool

    lay, options = classifier.model.layout, classifier.options
    return DecoderPool(
        specs,
        lay.height,
        lay.width,
        processes=processes,
        resize=options.resize,
        fit=options.fit,
        loop=loop,
        record=record,
        clock=replay,
    )
