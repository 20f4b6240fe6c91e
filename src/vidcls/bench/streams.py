"""``vidcls bench --streams``: how many live cameras one process holds at the model's rate.

N simulated cameras (640x360 30 fps H.264, made from the shared real clips) are played in real
time, either as live MPEG-TS streams from a loopback HTTP server in another process or as files
read at their real speed, and watched by one :class:`~vidcls.live.watch.Watch` exactly as
``vidcls live`` watches them. After a warm-up, it measures capture-to-result latency (from the
moment a decoded frame is available to its result), results per second per stream, ticks
dropped, CPU and memory (this process and its decoding processes). A run holds when p99
latency is under 200 ms and every stream gets at least 90 % of the model's rate. With
``clips``, each N is measured without and then with event clips and snapshots, in the same run.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..classifier import ClassifierOptions, VideoClassifier
from ..cpu import machine_busy, resident_mb
from ..live.clips import ClipOptions
from ..live.outputs import Callbacks
from ..live.sources import SourceSpec
from ..live.watch import Watch
from ..results import FrameResult
from .cameras import CameraServer, camera_clip
from .ceiling import measure_ceiling
from .span import measured_span

P99_LIMIT_MS = 200.0
RATE_SHARE = 0.9
WARMUP = 5.0


@dataclass
class Capacity:
    """One run of N streams."""

    streams: int
    p50_ms: float
    p99_ms: float
    rate_mean: float  # results per second per stream
    rate_min: float
    dropped: int
    cpu_cores: float  # this process's CPU seconds per second
    machine_cores: float  # every process's (the camera server included)
    model_rate: float
    infer_ms: float  # median time of one result's preprocessing + model + postprocessing
    rss_mb: float = 0.0  # this process's resident memory and its decoding processes'
    clips: int | None = None  # event clips written (None: clips off)
    groups: int = 1  # processes the cameras ran in (1: vidcls live's one process)

    @property
    def holds(self) -> bool:
        return self.p99_ms < P99_LIMIT_MS and self.rate_min >= RATE_SHARE * self.model_rate

    def row(self) -> str:
        verdict = "holds" if self.holds else "fails"
        return (
            f"{self.streams:>7} {self.groups:>6} {self.p50_ms:>8.0f} {self.p99_ms:>8.0f} "
            f"{self.rate_mean:>9.2f} {self.rate_min:>9.2f} {self.dropped:>8} "
            f"{self.cpu_cores:>7.2f} {self.machine_cores:>8.2f} {self.infer_ms:>8.1f} "
            f"{self.rss_mb / self.streams:>7.1f} "
            f"{'-' if self.clips is None else self.clips:>6}  {verdict}"
        )


HEADER = (
    f"{'streams':>7} {'groups':>6} {'p50 ms':>8} {'p99 ms':>8} {'res/s avg':>9} {'res/s min':>9} "
    f"{'dropped':>8} {'cpu':>7} {'machine':>8} {'infer ms':>8} {'MB/cam':>7} {'clips':>6}"
)


def measure(
    classifier: VideoClassifier,
    urls: list[str],
    seconds: float,
    workers: int | None = None,
    loop: bool = False,
    decoders: int | None = None,
    clips: ClipOptions | None = None,
) -> Capacity:
    """Watch ``urls`` for WARMUP + ``seconds``; figures from the last ``seconds``."""
    specs = [SourceSpec(f"cam{i}", u) for i, u in enumerate(urls)]
    decided: list[tuple[str, float, float, float]] = []  # source, when, latency, infer ms

    def mark() -> dict:
        """Counters now: this process's CPU (its decoding processes' too), the machine's."""
        cpu = time.process_time() + (watch.pool.cpu_seconds() if watch.pool else 0.0)
        dropped = sum(f.stats.dropped for f in watch.scheduler.feeds)
        pids = [os.getpid(), *(watch.pool.pids() if watch.pool else [])]
        rss = sum(resident_mb(pid) for pid in pids)
        now = {"wall": time.monotonic(), "cpu": cpu, "busy": machine_busy(), "dropped": dropped}
        return {**now, "rss": rss}

    def emit(name: str, result: FrameResult) -> None:
        """Each result with the moment it was decided (not when it was handed on: results
        come in bursts), so a span counts what was decided in it."""
        when = watch.feeds[name].start + result.time
        decided.append((name, when, result.latency_ms, result.infer_ms))

    outputs = Callbacks(on_result=emit)
    watch = Watch(
        classifier,
        specs,
        loop=loop,
        workers=workers,
        decoders=decoders,
        outputs=outputs,
        segments=True,
        clips=clips,
    )

    a, b = measured_span(watch.run, mark, WARMUP, seconds)
    wall = b["wall"] - a["wall"]
    span = [d for d in decided if a["wall"] <= d[1] < b["wall"]]
    counts = {s.name: sum(d[0] == s.name for d in span) for s in specs}
    rates = np.array([counts[s.name] / wall for s in specs])
    lat = np.array([d[2] for d in span]) if span else np.array([np.nan])
    infer = [d[3] for d in span]
    return Capacity(
        len(urls),
        float(np.percentile(lat, 50)),
        float(np.percentile(lat, 99)),
        float(rates.mean()),
        float(rates.min()),
        b["dropped"] - a["dropped"],
        (b["cpu"] - a["cpu"]) / wall,
        (b["busy"] - a["busy"]) / wall,
        watch.scheduler.rate or 0.0,
        float(np.median(infer)) if infer else float("nan"),
        b["rss"],
        None if clips is None else sum(1 for _ in Path(clips.folder).glob("*/*.mp4")),
    )


def _next(runs: list[Capacity]) -> list[int]:
    """The search's next N: up by 8 while it holds, then halfway back towards the last that
    held, to within 2 streams."""
    held = [r.streams for r in runs if r.holds]
    failed = [r.streams for r in runs if not r.holds]
    if not failed:
        return [max(held) + 8]
    low, high = max(held, default=0), min(failed)
    middle = (low + high) // 2
    return [middle] if high - low > 2 and middle not in (low, high) else []


def run_capacity(
    model: str,
    streams: list[int],
    seconds: float = 20.0,
    transport: str = "http",
    workers: int | None = None,
    decoders: int | None = None,
    window: float | None = 4.0,
    window_mode: str = "decay",
    search: bool = False,
    clips: bool = False,
    groups: list[int | str] | None = None,
    camera_fps: list[int] | None = None,
) -> list[Capacity]:
    """Measure each N in ``streams`` (with ``search``: go on by 8 while it holds) and print a
    row per run; with ``clips``, each N without and then with event clips and snapshots (a
    temporary folder), and the ratio of their result rates; each N in each of ``groups``
    (1: one process, as before; the search follows the last), for cameras of each of
    ``camera_fps``. A search in one group stores the largest N that held per camera rate,
    the figure ``--groups auto`` packs cameras by (:mod:`vidcls.live.sizing`). The runs."""
    from ..live.sizing import store_capacity

    options = ClassifierOptions(model=model, window=window, window_mode=window_mode, top_k=3)
    classifier = VideoClassifier.create_from_options(options)
    groups, rates = groups or [1], camera_fps or [30]
    cores = os.cpu_count() or 1
    shown = f"{window:g} s, {window_mode}" if window else "none"
    decoding = "default" if decoders is None else decoders
    feeding = f"workers {workers or 'default'}, decoders {decoding}"
    print(f"model  {classifier.model_name}; window {shown}; {feeding}; {cores} cores")
    runs = []
    for fps in rates:
        clip = camera_clip(fps=fps)
        print(
            f"input  {transport}: 640x360 {fps} fps H.264 cameras; {WARMUP:g} s warm-up, "
            f"{seconds:g} s measured per run; holds: p99 < {P99_LIMIT_MS:.0f} ms and every "
            f"stream >= {RATE_SHARE:.0%} of the model's rate; MB/cam: every process's memory"
        )
        print(measure_ceiling(classifier, clip, cores).line(), flush=True)
        print(HEADER)
        these = _search(
            classifier,
            options,
            clip,
            streams,
            seconds,
            transport,
            workers,
            decoders,
            search,
            clips,
            groups,
        )
        runs += these
        held = [r.streams for r in these if r.holds and r.groups == 1]
        if search and groups == [1] and held:
            print(
                f"stored: one group holds {max(held)} cameras of {fps} fps in "
                f"{store_capacity(fps, max(held))}",
                flush=True,
            )
        best = [r.streams for r in these if r.holds]
        print(
            f"largest N that holds at {fps} fps: {max(best) if best else 'none'}", file=sys.stderr
        )
    return runs


def _search(
    classifier, options, clip, streams, seconds, transport, workers, decoders, search, clips, groups
) -> list[Capacity]:
    """The runs of one camera clip: each N (and the search's), in each group count."""
    runs = []
    todo = list(streams)
    while todo:
        n = todo.pop(0)
        for g in groups:
            pair = []
            for folder in [None, *([tempfile.TemporaryDirectory()] if clips else [])]:
                options_ = None if folder is None else ClipOptions(folder.name)
                pair.append(
                    _one(
                        classifier,
                        options,
                        clip,
                        n,
                        g,
                        seconds,
                        transport,
                        workers,
                        decoders,
                        options_,
                    )
                )
                print(pair[-1].row(), flush=True)
                if folder is not None:
                    folder.cleanup()
            if clips:
                a, b = pair
                print(
                    f"  with clips / without: results/s {b.rate_mean / a.rate_mean:.3f}, "
                    f"p99 {b.p99_ms / a.p99_ms:.2f}x, memory +{(b.rss_mb - a.rss_mb) / n:.1f} "
                    "MB/cam",
                    flush=True,
                )
            runs.append(pair[-1])
        if search and not todo:
            todo += _next([r for r in runs if r.groups == runs[-1].groups])
    return runs


def _one(
    classifier, options, clip, n, groups, seconds, transport, workers, decoders, clip_options
) -> Capacity:
    """One run of ``n`` cameras in ``groups`` groups (1: one process, as vidcls live)."""
    from .grouped import measure_groups

    loop = transport != "http"
    with contextlib.ExitStack() as stack:
        if transport == "http":
            server = stack.enter_context(CameraServer(clip))
            urls, pid = [server.url(i) for i in range(n)], server.pid
        else:
            urls, pid = [str(clip)] * n, None
        if groups == 1:
            return measure(classifier, urls, seconds, workers, loop, decoders, clip_options)
        return Capacity(
            **measure_groups(
                options, urls, seconds, groups, WARMUP, workers, loop, decoders, clip_options, pid
            )
        )
