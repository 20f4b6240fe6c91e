"""``run_batch``: list the inputs, skip those done, classify the rest, merge the outputs."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import VidclsError, leave_if_importing_in_a_child, main_script
from .inputs import list_inputs
from .options import BatchOptions, BatchSummary
from .store import PartStore, check_output, frames_path
from .workers import Rows, open_pool


def run_batch(
    spec: str, output: str | os.PathLike, options: BatchOptions | None = None
) -> BatchSummary:
    """Classify every input of ``spec`` (see :func:`list_inputs`) into ``output`` (.parquet
    or .jsonl; per-frame rows beside it with ``per_frame``); resumes where a previous run
    stopped. A write that fails (disk full) is a VidclsError; what is committed stays."""
    leave_if_importing_in_a_child("run_batch")  # a worker only: the driver raises too
    t0 = time.monotonic()
    options = options or BatchOptions()
    output = Path(output)
    check_output(output)
    inputs = list(dict.fromkeys(list_inputs(spec)))
    if not inputs:
        raise VidclsError("no videos found", spec)
    store = PartStore(output)
    done = store.done() & set(inputs)
    todo = [s for s in inputs if s not in done]
    frames_out = frames_path(output) if options.per_frame else None
    summary = BatchSummary(len(inputs), len(done), 0, 0, 0.0, 0.0, output, frames_out)
    if todo:
        _classify(todo, options, store, summary)
    try:
        store.finish(frames_out)
    except VidclsError as e:  # disk full: the parts stay, a run with space merges them
        raise VidclsError(
            f"{e.message}; nothing is lost (parts in {store.folder}): "
            "run the same command again to merge them",
            e.path,
        ) from None
    summary.seconds = time.monotonic() - t0
    return summary


def _classify(
    todo: list[str], options: BatchOptions, store: PartStore, summary: BatchSummary
) -> None:
    """Classify ``todo`` in chunks, committing each chunk's rows as it finishes."""
    from tqdm import tqdm

    from ..zoo import resolve_model

    resolve_model(options.model)  # fetch a zoo model once here, not in every worker
    pool = open_pool(options, len(todo), os.cpu_count() or 1)
    chunks = [todo[i : i + options.chunk] for i in range(0, len(todo), options.chunk)]
    bar = tqdm(
        total=summary.inputs,
        initial=summary.done_before,
        unit="video",
        desc="batch",
        file=sys.stderr,
        disable=not sys.stderr.isatty(),
        smoothing=0.1,
    )
    finished = False
    try:
        for chunk, (rows, frames) in _guarded(pool.run(chunks)):
            _commit(store, rows, frames if options.per_frame else None, summary)
            _count(rows, summary)
            bar.update(len(chunk))
        finished = True
    finally:
        bar.close()
        pool.close(abort=not finished)


def _commit(store: PartStore, rows: list[dict], frames: list[dict] | None, s: BatchSummary) -> None:
    """Commit one chunk; a write that fails (disk full) ends the job, keeping what is done."""
    try:
        store.commit(rows, frames)
    except VidclsError as e:
        done = s.done_before + s.processed
        raise VidclsError(
            f"{e.message}; {done} of {s.inputs} videos are committed in {store.folder}: "
            "run the same command again to finish",
            e.path,
        ) from None


def _count(rows: list[dict], summary: BatchSummary) -> None:
    summary.processed += len(rows)
    for r in rows:
        if r["status"] != "ok":
            summary.failed += 1
            summary.errors.append(f"{r['source']}: {r['error']}")
        summary.video_seconds += r["duration"] or 0.0


def _guarded(results: Iterable[tuple[list[str], Rows]]) -> Iterator[tuple[list[str], Rows]]:
    """Worker failures that are not about one video (a model that will not load) end the job
    with one clear error; committed parts stay for the next run."""
    try:
        yield from results
    except VidclsError:
        raise
    except Exception as e:  # noqa: BLE001 - from the pool: a worker died or failed to start
        from concurrent.futures.process import BrokenProcessPool

        script = main_script()
        if isinstance(e, BrokenProcessPool) and script is not None:
            raise VidclsError(
                "the worker processes stopped while starting: if run_batch is called from a "
                'script, call it under `if __name__ == "__main__":`',
                script,
            ) from None
        raise VidclsError(f"a worker failed ({type(e).__name__}: {e})") from None
