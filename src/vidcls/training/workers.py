"""Clips' features computed in parallel: each worker process decodes whole clips and runs its
own copy of the model on one LiteRT thread, so decoding, augmentation and inference of several
clips overlap on all cores (threads measured slower: decoding and preprocessing hold the GIL
between LiteRT calls).

Workers write each clip's features to the cache themselves, so whatever finished before an
interrupt is kept; they ignore SIGINT and finish the clip in hand, while the main process stops
handing out clips and re-raises.
"""

from __future__ import annotations

import multiprocessing
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


def _start_worker(model: Path, cache: Path, fps: float | None, window: float) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process handles Ctrl-C
    _worker.update(
        extractor=FeatureExtractor(model, 1, checked=True),
        cache=FeatureCache(cache),
        fps=fps,
        window=window,
    )


def _work(path: Path, views: list[View]) -> ClipSamples:
    w = _worker
    return clip_samples(w["extractor"], w["cache"], path, views, w["fps"], w["window"])


class ClipPool:
    """Runs :func:`~vidcls.training.features.clip_samples` on jobs, ``workers`` at a time:
    in this process with ``extractor`` when ``workers`` is 1, else in worker processes
    (``kind="process"``) or threads (``kind="thread"``, each with its own extractor)."""

    def __init__(
        self,
        extractor: FeatureExtractor,
        cache: FeatureCache,
        fps: float | None,
        window: float,
        workers: int = 1,
        kind: str = "process",
    ) -> None:
        if kind not in ("process", "thread"):
            raise ValueError(f"kind must be 'process' or 'thread', not {kind!r}")
        self.extractor, self.cache, self.fps, self.window = extractor, cache, fps, window
        self.workers, self.kind = max(1, int(workers)), kind
        self._executor: Executor | None = None

    def __enter__(self) -> ClipPool:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if self._executor is not None:
            # On an interrupt: no new clips; the ones in hand finish and are cached.
            self._executor.shutdown(wait=True, cancel_futures=exc_type is not None)
            self._executor = None

    def run(self, jobs: list[Job]) -> Iterator[tuple[int, ClipSamples]]:
        """``(job number, its samples)`` as each job finishes."""
        if self.workers == 1 or len(jobs) <= 1:
            for number, (path, views) in enumerate(jobs):
                yield number, self._samples(self.extractor, path, views)
            return
        executor = self._executor = self._executor or self._make()
        if self.kind == "process":
            futures = {executor.submit(_work, p, v): n for n, (p, v) in enumerate(jobs)}
        else:
            futures = {executor.submit(self._in_thread, p, v): n for n, (p, v) in enumerate(jobs)}
        for future in as_completed(futures):
            yield futures[future], future.result()

    def _make(self) -> Executor:
        n = self.workers
        if self.kind == "thread":
            return ThreadPoolExecutor(n, thread_name_prefix="vidcls-features")
        args = (self.extractor.path, self.cache.folder, self.fps, self.window)
        context = multiprocessing.get_context("spawn")  # LiteRT's threads do not survive fork
        return ProcessPoolExecutor(n, context, initializer=_start_worker, initargs=args)

    def _in_thread(self, path: Path, views: list[View]) -> ClipSamples:
        extractor = getattr(_local, "extractor", None)
        if extractor is None:
            extractor = _local.extractor = FeatureExtractor(self.extractor.path, 1, checked=True)
        return self._samples(extractor, path, views)

    def _samples(self, extractor: FeatureExtractor, path: Path, views: list[View]) -> ClipSamples:
        return clip_samples(extractor, self.cache, path, views, self.fps, self.window)
