"""Batch-classify many videos on all cores or a Ray cluster, resumably, each input exactly once.

The driver lists the inputs, skips those already done, and hands the rest out in chunks to
workers that each load the model once. Every finished chunk is committed as a part file,
written to a temporary name and renamed (atomic), with the per-frame rows committed first and
the per-video rows (the commit marker) last. After a crash, Ctrl-C or SIGKILL, running the same
command again skips the inputs in committed parts. When all are done, the parts are merged into
the output (again written whole, then renamed), keeping each input once.
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from . import _files
from .dataset import VIDEO_EXTENSIONS
from .errors import VidclsError

log = logging.getLogger("vidcls")
FORMATS = ("parquet", "jsonl")


@dataclass
class BatchOptions:
    """What to run on every video and how to spread it."""

    model: str = "a0"
    labels: str | None = None
    top_k: int = 5
    fps: float | str | None = None
    window: float | None = None
    segments: bool = False
    per_frame: bool = False  # also keep one row per classified frame
    workers: int | None = None  # local processes (default: one per core)
    threads: int | None = None  # inference threads per worker (default: cores / workers)
    chunk: int = 4  # videos per committed part
    ray: str | None = None  # None: local pool; "" or "auto": a local Ray; else a cluster address
    prefetch: int = 4
    skip_nonref: bool = False  # do not decode B-frames (see VideoFile.frames)


@dataclass
class BatchSummary:
    inputs: int
    done_before: int
    processed: int
    failed: int
    seconds: float
    video_seconds: float
    output: Path
    frames_output: Path | None = None
    errors: list[str] = field(default_factory=list)


# -- inputs -------------------------------------------------------------------------------


def list_inputs(spec: str) -> list[str]:
    """Video paths or URLs from a folder (recursive), a glob, a manifest, a file or a URL.

    A manifest is a .csv (column ``path`` or ``url``, else the first), .parquet (likewise) or
    .txt/.lst (one per line, ``#`` comments) file; relative paths in it are relative to it.
    """
    if "://" in spec:
        return [spec]
    path = Path(spec)
    if path.is_dir():
        found = [p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS]
        return [os.path.abspath(p) for p in sorted(found)]
    if path.is_file() and path.suffix.lower() in (".csv", ".parquet", ".txt", ".lst"):
        return _manifest(path)
    if path.is_file():
        return [os.path.abspath(path)]
    if any(c in spec for c in "*?["):
        found = [Path(p) for p in glob.glob(spec, recursive=True)]
        return [os.path.abspath(p) for p in sorted(found) if p.is_file()]
    raise VidclsError("no such folder, file, manifest or glob", spec)


def _manifest(path: Path) -> list[str]:
    suffix = path.suffix.lower()
    if suffix in (".txt", ".lst"):
        rows = [line.strip() for line in path.read_text("utf-8").splitlines()]
        rows = [r for r in rows if r and not r.startswith("#")]
    elif suffix == ".csv":
        import csv

        with open(path, newline="", encoding="utf-8") as f:
            table = list(csv.reader(f))
        if not table:
            raise VidclsError("manifest is empty", path)
        header = [h.strip().lower() for h in table[0]]
        column = next((header.index(c) for c in ("path", "url", "source") if c in header), None)
        body = table[1:] if column is not None else table
        rows = [r[column or 0].strip() for r in body if r and r[column or 0].strip()]
    else:
        import pyarrow.parquet as pq

        t = pq.read_table(path)
        names = [n.lower() for n in t.column_names]
        column = next((names.index(c) for c in ("path", "url", "source") if c in names), 0)
        rows = [str(v) for v in t.column(column).to_pylist() if v]
    base = path.parent
    return [r if "://" in r else os.path.abspath(base / r) for r in rows]


# -- one video ------------------------------------------------------------------------------


def classify_one(classifier, source: str, options: BatchOptions) -> tuple[dict, list[dict]]:
    """The per-video row (``status`` ok or error) and its per-frame rows."""
    from .classify import classify_video

    row = {
        "source": source,
        "status": "ok",
        "error": None,
        "model": classifier.model_name,
        "fps": None,
        "frames": 0,
        "duration": None,
        "label": None,
        "score": None,
        "top": [],
        "segments": None,
    }
    try:
        r = classify_video(
            source,
            fps=options.fps,
            classifier=classifier,
            segments=options.segments or None,
            prefetch=options.prefetch,
            skip_nonref=options.skip_nonref,
        )
    except Exception as e:  # noqa: BLE001 - a bad file is a row, not the end of the job
        message = e.message if isinstance(e, VidclsError) else str(e)
        row.update(status="error", error=message or type(e).__name__)
        return row, []
    row.update(
        fps=str(r.fps),
        frames=len(r.frames),
        duration=round(r.frames[-1].time, 4) if r.frames else 0.0,
        top=[c.to_dict() for c in r.summary],
        segments=[s.to_dict() for s in r.segments] if r.segments is not None else None,
    )
    if r.summary:
        row.update(label=r.summary[0].label, score=round(r.summary[0].score, 6))
    frames = []
    if options.per_frame:
        for f in r.frames:
            for rank, c in enumerate(f.top, 1):
                frames.append(
                    {"source": source, "time": round(f.time, 4), "rank": rank, **c.to_dict()}
                )
    return row, frames


# -- workers --------------------------------------------------------------------------------

_worker_classifier = None


def _worker_init(options: BatchOptions, threads: int) -> None:
    """Load the model once per worker process."""
    global _worker_classifier
    import signal

    from .classifier import ClassifierOptions, VideoClassifier

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    logging.basicConfig(level=logging.ERROR)
    _worker_classifier = VideoClassifier.create_from_options(
        ClassifierOptions(
            model=options.model,
            labels=options.labels,
            max_results=options.top_k,
            num_threads=threads,
            window=options.window,
        )
    )


def _worker_run(chunk: list[str], options: BatchOptions) -> tuple[list[dict], list[dict]]:
    rows, frames = [], []
    for source in chunk:
        row, f = classify_one(_worker_classifier, source, options)
        rows.append(row)
        frames += f
    return rows, frames


class _LocalPool:
    """Worker processes, each with its own loaded model."""

    def __init__(self, options: BatchOptions, workers: int, threads: int) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.options = options
        self._pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_init,
            initargs=(options, threads),
        )

    def run(self, chunks: list[list[str]]) -> Iterable[tuple[list[str], tuple]]:
        from concurrent.futures import as_completed

        futures = {self._pool.submit(_worker_run, c, self.options): c for c in chunks}
        for fut in as_completed(futures):
            yield futures[fut], fut.result()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class _RayPool:
    """Ray actors, each with its own loaded model, fed chunks as they free up."""

    def __init__(self, options: BatchOptions, address: str, threads: int, workers: int | None):
        try:
            import ray
        except ImportError:
            raise VidclsError("--ray needs Ray: pip install 'vidcls[ray]'") from None
        self.ray = ray
        if not ray.is_initialized():
            kwargs = {"address": address} if address not in ("", "auto", "local") else {}
            if not kwargs and workers:
                kwargs["num_cpus"] = workers
            ray.init(**kwargs, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        cpus = int(ray.cluster_resources().get("CPU", 1))
        n = max(1, min(workers or cpus, cpus))

        @ray.remote(num_cpus=1)
        class Worker:
            def __init__(self) -> None:
                _worker_init(options, threads)

            def run(self, chunk: list[str]) -> tuple[list[dict], list[dict]]:
                return _worker_run(chunk, options)

        self.actors = [Worker.remote() for _ in range(n)]

    def run(self, chunks: list[list[str]]) -> Iterable[tuple[list[str], tuple]]:
        ray = self.ray
        idle = list(self.actors)
        pending: dict = {}
        todo = list(chunks)
        while todo or pending:
            while idle and todo:
                actor, chunk = idle.pop(), todo.pop(0)
                pending[actor.run.remote(chunk)] = (actor, chunk)
            ready, _ = ray.wait(list(pending), num_returns=1)
            actor, chunk = pending.pop(ready[0])
            idle.append(actor)
            yield chunk, ray.get(ready[0])

    def close(self) -> None:
        for a in self.actors:
            self.ray.kill(a)


# -- parts and output -----------------------------------------------------------------------


class PartStore:
    """Committed results of a job, in ``<output>.parts/``."""

    def __init__(self, output: Path, fmt: str) -> None:
        self.output, self.fmt = output, fmt
        self.folder = output.with_name(output.name + ".parts")

    def done(self) -> set[str]:
        """Inputs with a committed row, in the parts or in an existing output."""
        keys = set()
        for p in self._parts("rows"):
            keys.update(r["source"] for r in _read(p, self.fmt))
        if self.output.is_file():
            keys.update(r["source"] for r in _read(self.output, self.fmt))
        return keys

    def commit(self, rows: list[dict], frames: list[dict] | None) -> None:
        """Frames part first, then the rows part: a part counts once its rows file exists."""
        self.folder.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha1("\n".join(sorted(r["source"] for r in rows)).encode()).hexdigest()[:16]
        if frames is not None:
            _write(self.folder / f"frames-{name}.{self.fmt}", frames, self.fmt, "frames")
        _write(self.folder / f"rows-{name}.{self.fmt}", rows, self.fmt, "rows")

    def finish(self, frames_output: Path | None) -> tuple[int, int]:
        """Merge parts (and an earlier output) into the outputs, each input once."""
        rows = _read(self.output, self.fmt) if self.output.is_file() else []
        committed = self._parts("rows")
        for p in committed:
            rows += _read(p, self.fmt)
        unique = {}
        for r in rows:
            unique.setdefault(r["source"], r)
        merged = sorted(unique.values(), key=lambda r: r["source"])
        _write(self.output, merged, self.fmt, "rows")
        n_frames = 0
        if frames_output is not None:
            frames = _read(frames_output, self.fmt) if frames_output.is_file() else []
            have = {f["source"] for f in frames}
            for p in committed:
                part = self.folder / p.name.replace("rows-", "frames-", 1)
                if part.is_file():
                    frames += [f for f in _read(part, self.fmt) if f["source"] not in have]
            frames.sort(key=lambda f: (f["source"], f["time"], f["rank"]))
            _write(frames_output, frames, self.fmt, "frames")
            n_frames = len(frames)
        for p in list(self.folder.glob("*")) if self.folder.is_dir() else []:
            p.unlink()
        if self.folder.is_dir():
            self.folder.rmdir()
        return len(merged), n_frames

    def _parts(self, kind: str) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(self.folder.glob(f"{kind}-*.{self.fmt}"))


def _schema(kind: str):
    import pyarrow as pa

    category = pa.struct([("label", pa.string()), ("index", pa.int32()), ("score", pa.float64())])
    if kind == "frames":
        return pa.schema(
            [
                ("source", pa.string()),
                ("time", pa.float64()),
                ("rank", pa.int32()),
                ("label", pa.string()),
                ("index", pa.int32()),
                ("score", pa.float64()),
            ]
        )
    segment = pa.struct(
        [
            ("label", pa.string()),
            ("index", pa.int32()),
            ("start", pa.float64()),
            ("end", pa.float64()),
            ("peak", pa.float64()),
        ]
    )
    return pa.schema(
        [
            ("source", pa.string()),
            ("status", pa.string()),
            ("error", pa.string()),
            ("model", pa.string()),
            ("fps", pa.string()),
            ("frames", pa.int32()),
            ("duration", pa.float64()),
            ("label", pa.string()),
            ("score", pa.float64()),
            ("top", pa.list_(category)),
            ("segments", pa.list_(segment)),
        ]
    )


def _write(path: Path, rows: list[dict], fmt: str, kind: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.Table.from_pylist(rows, schema=_schema(kind)), tmp)
        else:
            with open(tmp, "w", encoding="utf-8") as f:
                f.writelines(json.dumps(r) + "\n" for r in rows)
                f.flush()
                os.fsync(f.fileno())
        _files.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _read(path: Path, fmt: str) -> list[dict]:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def output_format(path: Path) -> str:
    if path.suffix.lower() == ".parquet":
        return "parquet"
    if path.suffix.lower() in (".jsonl", ".json"):
        return "jsonl"
    raise VidclsError("output must end in .parquet or .jsonl", path)


def frames_path(output: Path) -> Path:
    """Where per-frame rows go: ``results.parquet`` -> ``results.frames.parquet``."""
    return output.with_name(f"{output.stem}.frames{output.suffix}")


# -- the job -------------------------------------------------------------------------------


def _guarded(results):
    """Worker failures that are not about one video (a model that will not load) end the job
    with a clear error; committed parts stay for the next run."""
    try:
        yield from results
    except VidclsError:
        raise
    except Exception as e:  # noqa: BLE001 - from the pool: a worker died or failed to start
        raise VidclsError(f"a worker failed ({type(e).__name__}: {e})") from None


def run_batch(spec: str, output: str | os.PathLike, options: BatchOptions) -> BatchSummary:
    """Classify every input of ``spec`` into ``output``; resumes where a previous run stopped."""
    from tqdm import tqdm

    t0 = time.monotonic()
    output = Path(output)
    fmt = output_format(output)
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise VidclsError("Parquet output needs pyarrow: pip install 'vidcls[batch]'") from None
    if not output.parent.is_dir():
        raise VidclsError("output folder does not exist", output.parent)
    inputs = list(dict.fromkeys(list_inputs(spec)))
    if not inputs:
        raise VidclsError("no videos found", spec)
    store = PartStore(output, fmt)
    done = store.done() & set(inputs)
    todo = [s for s in inputs if s not in done]
    frames_out = frames_path(output) if options.per_frame else None
    summary = BatchSummary(len(inputs), len(done), 0, 0, 0.0, 0.0, output, frames_out)
    if todo:
        cores = os.cpu_count() or 1
        workers = max(1, min(options.workers or cores, len(todo)))
        threads = options.threads or max(1, cores // workers)
        from .zoo import resolve_model

        resolve_model(options.model)  # fetch a zoo model once here, not in every worker
        if options.ray is not None:
            pool = _RayPool(options, options.ray, threads, options.workers)
        else:
            pool = _LocalPool(options, workers, threads)
        chunks = [todo[i : i + options.chunk] for i in range(0, len(todo), options.chunk)]
        bar = tqdm(
            total=len(inputs),
            initial=len(done),
            unit="video",
            desc="batch",
            file=sys.stderr,
            disable=not sys.stderr.isatty(),
            smoothing=0.1,
        )
        try:
            for chunk, (rows, frames) in _guarded(pool.run(chunks)):
                store.commit(rows, frames if options.per_frame else None)
                summary.processed += len(rows)
                for r in rows:
                    if r["status"] != "ok":
                        summary.failed += 1
                        summary.errors.append(f"{r['source']}: {r['error']}")
                    summary.video_seconds += r["duration"] or 0.0
                bar.update(len(chunk))
        finally:
            bar.close()
            pool.close()
    store.finish(frames_out)
    summary.seconds = time.monotonic() - t0
    return summary
