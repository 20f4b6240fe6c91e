"""Clips' features computed in parallel: each worker decodes whole clips and runs its own copy
of the model on one LiteRT thread, so decoding, augmentation and inference of several clips
overlap on all cores. Threads by default: PyAV's decoding and LiteRT's invoke release the GIL,
and threads cost nothing to start, where each worker process first imports vidcls and loads
the model (measured on this 2-core machine, busy with other jobs, in the same run: 4 clips of
the 720p training benchmark in 3 views, threads 9.6 and 11.3 s, processes 14.4 and 14.1 s, one
worker 9.8 s; 40 basketball clips in 8 views, threads 13.6 and 21.1 s, processes 13.4 and
22.3 s). ``kind="process"`` stays available.

Workers write each clip's features to the cache themselves, so whatever finished before an
interrupt is kept; on an interrupt no more clips are handed out and the ones in hand finish
(worker processes ignore SIGINT), then the interrupt goes on.
"""

from __future__ import annotations

import multiprocessing
import queue
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from pathlib import Path

from .augment import View
from .features import ClipSamples, FeatureCache, FeatureExtractor, clip_samples

Job = tuple[Path, list[View]]

_worker: dict = {}  # this worker process's extractor and settings
_local = threading.local()  # this thread's extractor (thread pools)


def _start_worker(model: Path, cache: Path, fps: float | None) -> None:
    import cv2

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process handles Ctrl-C
    cv2.setNumThreads(1)  # one core per worker: OpenCV's own threads would only contend
    _worker.update(extractor=FeatureExtractor(model, 1, checked=True), cache=FeatureCache(cache))
    _worker["fps"] = fps


def _work(path: Path, views: list[View], window: float, working: bool) -> ClipSamples:
    w = _worker
    return clip_samples(w["extractor"], w["cache"], path, views, w["fps"], window, working)


class ClipPool:
    """Runs :func:`~vidcls.training.features.clip_samples` on jobs, ``workers`` at a time:
    in this process with ``extractor`` when ``workers`` is 1, else in worker processes
    (``kind="process"``) or threads (``kind="thread"``, each with its own extractor), started
    on first use and kept until the pool is closed (a context manager)."""

    def __init__(
        self,
        extractor: FeatureExtractor,
        cache: FeatureCache,
        fps: float | None,
        workers: int = 1,
        kind: str = "thread",
    ) -> None:
        if kind not in ("process", "thread"):
            raise ValueError(f"kind must be 'process' or 'thread', not {kind!r}")
        self.extractor, self.cache, self.fps = extractor, cache, fps
        self.workers, self.kind = max(1, int(workers)), kind
        self._executor: Executor | None = None
        self._spare: queue.Queue[FeatureExtractor] = queue.Queue()  # for threads to take

    def __enter__(self) -> ClipPool:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self.close(interrupted=exc_type is not None)

    def close(self, interrupted: bool = False) -> None:
        """Stop the workers; ``interrupted``: hand out no more clips (the ones in hand finish
        and are cached)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=interrupted)
            self._executor = None

    def run(
        self, jobs: list[Job], window: float = 0.0, working: bool = True
    ) -> Iterator[tuple[int, ClipSamples]]:
        """``(job number, its samples)`` as each job finishes (``window``: seconds, 0: none;
        ``working``: decode at the working size)."""
        if self.workers == 1 or len(jobs) <= 1:
            for number, (path, views) in enumerate(jobs):
                yield number, self._samples(self.extractor, path, views, window, working)
            return
        executor = self._executor = self._executor or self._make()
        work = _work if self.kind == "process" else self._in_thread
        futures = {executor.submit(work, p, v, window, working): n for n, (p, v) in enumerate(jobs)}
        try:
            for future in as_completed(futures):
                yield futures[future], future.result()
        except BaseException:
            self.close(interrupted=True)
            raise

    def _make(self) -> Executor:
        n = self.workers
        if self.kind == "thread":
            # Loaded here, one after the other: LiteRT's loading messages never interleave
            # with the warnings of clips being skipped.
            for _ in range(n):
                self._spare.put(FeatureExtractor(self.extractor.path, 1, checked=True))
            return ThreadPoolExecutor(n, thread_name_prefix="vidcls-features")
        args = (self.extractor.path, self.cache.folder, self.fps)
        context = multiprocessing.get_context("spawn")  # LiteRT's threads do not survive fork
        return ProcessPoolExecutor(n, context, initializer=_start_worker, initargs=args)

    def _in_thread(self, path: Path, views: list[View], *how) -> ClipSamples:
        extractor = getattr(_local, "extractor", None)
        if extractor is None:
            extractor = _local.extractor = self._spare.get_nowait()
        return self._samples(extractor, path, views, *how)

    def _samples(
        self, extractor: FeatureExtractor, path: Path, views: list[View], *how
    ) -> ClipSamples:
        return clip_samples(extractor, self.cache, path, views, self.fps, *how)
