"""Where a batch job's videos are classified: a local process pool or Ray actors, each
worker loading the model once and classifying chunks of inputs into rows."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
from collections.abc import Iterator

from ..classifier import VideoClassifier
from ..errors import VidclsError
from ..pipeline import classify_video
from ..writers import error_row, frame_rows, video_row
from .lifeline import die_with_parent
from .options import BatchOptions

Rows = tuple[list[dict], list[dict]]  # per-video rows, per-frame rows


class Worker:
    """One loaded model: classifies chunks of inputs into rows."""

    def __init__(self, options: BatchOptions, threads: int) -> None:
        self.options = options
        self.classifier = VideoClassifier.create_from_options(options.classifier_options(threads))

    def classify(self, source: str) -> Rows:
        """The video's row (``status`` ok or error) and, with ``per_frame``, its frame rows."""
        o = self.options
        try:
            result = classify_video(
                source,
                classifier=self.classifier,
                fps=o.fps,
                segments=o.segments or None,
                prefetch=o.prefetch,
                skip_nonref=o.skip_nonref,
            )
        except Exception as e:  # noqa: BLE001 - a bad file is a row, not the end of the job
            message = e.message if isinstance(e, VidclsError) else str(e)
            return [error_row(source, self.classifier.model_name, message or type(e).__name__)], []
        return [video_row(result)], frame_rows(result) if o.per_frame else []

    def run(self, chunk: list[str]) -> Rows:
        """Rows for every input of ``chunk``, in order."""
        rows, frames = [], []
        for source in chunk:
            row, f = self.classify(source)
            rows += row
            frames += f
        return rows, frames


def _quiet() -> None:
    """A worker leaves Ctrl-C to the driver and logs errors only. Its (hidden) progress bars
    share a thread lock, not tqdm's default inter-process one, a semaphore that a worker
    killed with the driver would leave behind."""
    import threading

    from tqdm import tqdm

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.ERROR)
    tqdm.set_lock(threading.RLock())


# -- the local pool ------------------------------------------------------------------------

_worker: Worker | VidclsError | None = None  # this pool process's model, or why it failed


def _start_process(options: BatchOptions, threads: int, driver: int) -> None:
    global _worker
    die_with_parent(driver)
    _quiet()
    try:
        _worker = Worker(options, threads)
    except VidclsError as e:  # a bad model or labels: one clear error from the first chunk
        _worker = e


def _run_in_process(chunk: list[str]) -> Rows:
    if isinstance(_worker, VidclsError):
        raise _worker
    return _worker.run(chunk)


class LocalPool:
    """``workers`` processes, each with its own loaded model, ending with this process
    however it ends."""

    def __init__(self, options: BatchOptions, workers: int, threads: int) -> None:
        from concurrent.futures import ProcessPoolExecutor

        self._others = {p.pid for p in multiprocessing.active_children()}  # not the pool's
        self._pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_process,
            initargs=(options, threads, os.getpid()),
        )

    def run(self, chunks: list[list[str]]) -> Iterator[tuple[list[str], Rows]]:
        """Each chunk with its rows, as they finish."""
        from concurrent.futures import as_completed

        futures = {self._pool.submit(_run_in_process, c): c for c in chunks}
        for future in as_completed(futures):
            yield futures[future], future.result()

    def close(self, abort: bool = False) -> None:
        """Stop the workers: once idle, or at once with ``abort`` (an error or Ctrl-C: what
        they are doing would not be committed)."""
        if abort:
            for process in multiprocessing.active_children():
                if process.pid not in self._others:
                    process.kill()
        self._pool.shutdown(wait=True, cancel_futures=True)


# -- Ray -----------------------------------------------------------------------------------


class _RayWorker:
    """A Ray actor's model, or why it could not load (raised by the first chunk)."""

    def __init__(self, options: BatchOptions, threads: int) -> None:
        _quiet()
        try:
            self.worker: Worker | VidclsError = Worker(options, threads)
        except VidclsError as e:
            self.worker = e

    def run(self, chunk: list[str]) -> Rows:
        if isinstance(self.worker, VidclsError):
            raise self.worker
        return self.worker.run(chunk)


class RayPool:
    """Ray actors (one per CPU of the cluster, at most ``workers``), each with its own loaded
    model, fed chunks as they free up. ``address``: ``""``, ``"auto"`` or ``"local"`` starts
    a local Ray of its own (another Ray running on the machine is not joined); else the
    cluster's address."""

    def __init__(
        self, options: BatchOptions, address: str, threads: int, workers: int | None
    ) -> None:
        try:
            import ray
        except ImportError:
            raise VidclsError("--ray needs Ray: pip install 'vidcls[ray]'") from None
        self.ray = ray
        self.started = not ray.is_initialized()  # a Ray of our own, shut down by close()
        if self.started:
            # address="local": a Ray of the job's own even when another runs on the machine
            # (ray.init() without one joins that Ray, and refuses num_cpus there).
            own = address in ("", "auto", "local")
            kwargs = {"address": "local" if own else address}
            if own and workers:
                kwargs["num_cpus"] = workers
            ray.init(**kwargs, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        cpus = int(ray.cluster_resources().get("CPU", 1))
        actor = ray.remote(num_cpus=1)(_RayWorker)
        self.actors = [
            actor.remote(options, threads) for _ in range(max(1, min(workers or cpus, cpus)))
        ]

    def run(self, chunks: list[list[str]]) -> Iterator[tuple[list[str], Rows]]:
        """Each chunk with its rows, as they finish."""
        idle, pending, todo = list(self.actors), {}, list(chunks)
        while todo or pending:
            while idle and todo:
                actor, chunk = idle.pop(), todo.pop(0)
                pending[actor.run.remote(chunk)] = (actor, chunk)
            ready, _ = self.ray.wait(list(pending), num_returns=1)
            actor, chunk = pending.pop(ready[0])
            idle.append(actor)
            try:
                rows = self.ray.get(ready[0])
            except self.ray.exceptions.RayTaskError as e:
                if isinstance(e.cause, VidclsError):
                    raise VidclsError(str(e.cause)) from None
                raise
            yield chunk, rows

    def close(self, abort: bool = False) -> None:
        """Stop the actors, and the local Ray if this pool started it."""
        for actor in self.actors:
            self.ray.kill(actor)
        if self.started:
            self.ray.shutdown()


def open_pool(options: BatchOptions, videos: int, cores: int) -> LocalPool | RayPool:
    """The pool ``options`` asks for, sized for ``videos`` inputs on ``cores`` cores."""
    workers = max(1, min(options.workers or cores, videos))
    threads = options.threads or max(1, cores // workers)
    if options.ray is not None:
        return RayPool(options, options.ray, threads, options.workers)
    return LocalPool(options, workers, threads)
