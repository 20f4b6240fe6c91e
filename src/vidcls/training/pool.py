"""Clips' features, several clips at once: :class:`ClipPool`, and :class:`FeatureRun`, the
features of a list of clips through one pool.

Each clip in hand is decoded whole and run through its own copy of the model on one LiteRT
thread, so decoding, augmentation and inference of several clips overlap on all cores. Threads
by default: PyAV's decoding and LiteRT's invoke release the GIL, and threads cost nothing to
start, where each process first imports vidcls and loads the model (measured on this 2-core
machine, busy with other jobs, in the same run: 4 clips of the 720p training benchmark in 3
views, threads 9.6 and 11.3 s, processes 14.4 and 14.1 s, one clip at a time 9.8 s; 40
basketball clips in 8 views, threads 13.6 and 21.1 s, processes 13.4 and 22.3 s).
``kind="process"`` stays available.

Each clip's features go to the cache as soon as they are computed, so whatever finished before
an interrupt is kept; on an interrupt no more clips are handed out and the ones in hand finish
(pool processes ignore SIGINT), then the interrupt goes on.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import queue
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .augment import View, random_views
from .dataset import Clip
from .features import ClipSamples, FeatureCache, FeatureExtractor, Features, clip_samples
from .progress import Phase

log = logging.getLogger("vidcls")

Job = tuple[Path, list[View]]

_process: dict = {}  # this pool process's extractor and settings
_local = threading.local()  # this thread's extractor (thread pools)


def _start_process(model: Path, cache: Path, fps: float | None, fit: str) -> None:
    import cv2

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process handles Ctrl-C
    cv2.setNumThreads(1)  # one core per clip: OpenCV's own threads would only contend
    extractor = FeatureExtractor(model, 1, checked=True, fit=fit)
    _process.update(extractor=extractor, cache=FeatureCache(cache))
    _process["fps"] = fps


def _in_process(path: Path, views: list[View], window: float, working: bool) -> ClipSamples:
    p = _process
    return clip_samples(p["extractor"], p["cache"], path, views, p["fps"], window, working)


class ClipPool:
    """Runs :func:`~vidcls.training.features.clip_samples` on jobs, ``at_once`` clips at a
    time: in this process with ``extractor`` when ``at_once`` is 1, else in threads
    (``kind="thread"``, each with its own extractor) or processes (``kind="process"``),
    started on first use and kept until the pool is closed (a context manager)."""

    def __init__(
        self,
        extractor: FeatureExtractor,
        cache: FeatureCache,
        fps: float | None,
        at_once: int = 1,
        kind: str = "thread",
    ) -> None:
        if kind not in ("process", "thread"):
            raise ValueError(f"kind must be 'process' or 'thread', not {kind!r}")
        self.extractor, self.cache, self.fps = extractor, cache, fps
        self.fit = extractor.fit
        self.at_once, self.kind = max(1, int(at_once)), kind
        self._executor: Executor | None = None
        self._spare: queue.Queue[FeatureExtractor] = queue.Queue()  # for threads to take

    def __enter__(self) -> ClipPool:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self.close(interrupted=exc_type is not None)

    def close(self, interrupted: bool = False) -> None:
        """Stop the threads or processes; ``interrupted``: hand out no more clips (the ones in
        hand finish and are cached)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=interrupted)
            self._executor = None

    def run(
        self, jobs: list[Job], window: float = 0.0, working: bool = True
    ) -> Iterator[tuple[int, ClipSamples]]:
        """``(job number, its samples)`` as each job finishes (``window``: seconds, 0: none;
        ``working``: decode at the working size)."""
        if self.at_once == 1 or len(jobs) <= 1:
            for number, (path, views) in enumerate(jobs):
                yield number, self._samples(self.extractor, path, views, window, working)
            return
        executor = self._executor = self._executor or self._make()
        work = _in_process if self.kind == "process" else self._in_thread
        futures = {executor.submit(work, p, v, window, working): n for n, (p, v) in enumerate(jobs)}
        try:
            for future in as_completed(futures):
                yield futures[future], future.result()
        except BaseException:
            self.close(interrupted=True)
            raise

    def _make(self) -> Executor:
        n = self.at_once
        if self.kind == "thread":
            # Loaded here, one after the other: LiteRT's loading messages never interleave
            # with the warnings of clips being skipped.
            for _ in range(n):
                self._spare.put(self.extractor.another(1))
            return ThreadPoolExecutor(n, thread_name_prefix="vidcls-features")
        args = (self.extractor.path, self.cache.folder, self.fps, self.fit)
        context = multiprocessing.get_context("spawn")  # LiteRT's threads do not survive fork
        return ProcessPoolExecutor(n, context, initializer=_start_process, initargs=args)

    def _in_thread(self, path: Path, views: list[View], *how) -> ClipSamples:
        extractor = getattr(_local, "extractor", None)
        if extractor is None:
            extractor = _local.extractor = self._spare.get_nowait()
        return self._samples(extractor, path, views, *how)

    def _samples(
        self, extractor: FeatureExtractor, path: Path, views: list[View], *how
    ) -> ClipSamples:
        return clip_samples(extractor, self.cache, path, views, self.fps, *how)


@dataclass
class FeatureRun:
    """Features of clips fed at ``fps`` (None: every frame), from the cache when there.

    ``window``: seconds of each temporal crop taken besides the whole clip (0: none).
    ``working``: decode at the extractor's working size (else as classification does).
    ``at_once``: clips processed at once (see :class:`ClipPool`).
    Unreadable clips are named in ``skipped``; ``phase`` advances once per clip view;
    ``computed`` and ``cached`` count the views run through the model and read from the cache.
    """

    extractor: FeatureExtractor
    cache: FeatureCache
    fps: float | None
    seed: int
    skipped: list[str]
    phase: Phase = field(default_factory=Phase)
    computed: int = 0
    cached: int = 0
    window: float = 0.0
    at_once: int = 1
    working: bool = True
    _pool: ClipPool | None = field(default=None, init=False, repr=False)

    def _new_pool(self) -> ClipPool:
        return ClipPool(self.extractor, self.cache, self.fps, self.at_once)

    def __enter__(self) -> FeatureRun:
        """Keep one pool for every :meth:`features` call until the exit."""
        self._pool = self._new_pool()
        return self

    def __exit__(self, exc_type, *exc) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close(interrupted=exc_type is not None)

    def features(self, clips: list[Clip], part: str, views: int) -> Features | None:
        """``views`` views of each clip (the first the clip itself; the others seeded by the
        seed, the clip number and ``part``), each with its windows; None if no clip could be
        read."""
        jobs = [
            (clip.path, random_views(np.random.default_rng([self.seed, n, len(part)]), views))
            for n, clip in enumerate(clips)
        ]
        results: dict[int, ClipSamples] = {}
        with contextlib.ExitStack() as stack:
            pool = self._pool or stack.enter_context(self._new_pool())
            for number, got in pool.run(jobs, self.window, self.working):
                results[number] = got
                if got.error and got.error not in self.skipped:  # named once, if seen twice
                    self.skipped.append(got.error)
                    log.warning("skipping %s", got.error)
                self.computed += got.computed
                self.cached += got.cached
                self.phase.advance(views)
        rows: list[tuple[np.ndarray, np.ndarray, int, tuple[int, int]]] = []
        for number, clip in enumerate(clips):
            sample = 0
            for hidden, pooled in results[number].views:
                for h, p in zip(hidden, pooled, strict=True):
                    rows.append((h, p, clip.index, (number, sample)))
                    sample += 1
        if not rows:
            return None
        hidden, pooled, labels, groups = zip(*rows, strict=True)
        return Features(
            np.array(hidden, np.float32),
            np.array(pooled, np.float32),
            np.array(labels),
            np.array(groups),
        )
