"""``vidcls bench --streams --groups N``: the capacity run of :mod:`.streams` with the cameras
in N group processes (:mod:`vidcls.live.groups`), built as ``vidcls live`` builds them.

Each result counts when it reaches the parent (where every output gets it), and its latency
is from the frame's capture in the group to that moment. CPU and memory are this process's,
its groups' and their decoding processes' (the camera server's excepted).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from ..classifier import ClassifierOptions
from ..cpu import machine_busy, process_seconds, resident_mb
from ..live.build import Plan
from ..live.clips import ClipOptions
from ..live.outputs import Callbacks
from ..live.sources import SourceSpec
from ..pipeline import feed_rate
from ..results import FrameResult
from .span import measured_span


def descendants(pid: int, leave_out: set[int] = frozenset()) -> list[int]:
    """``pid`` and every process below it (Linux /proc), but those in ``leave_out`` and
    theirs."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        parents.setdefault(int(stat[1]), []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        if p in leave_out:
            continue
        out.append(p)
        todo += parents.get(p, [])
    return out


def measure_groups(
    options: ClassifierOptions,
    urls: list[str],
    seconds: float,
    groups: int | str,
    warmup: float,
    workers: int | None = None,
    loop: bool = False,
    decoders: int | None = None,
    clips: ClipOptions | None = None,
    server: int | None = None,
):
    """Watch ``urls`` in ``groups`` groups for ``warmup`` + ``seconds``; figures from the
    last ``seconds``, the fields of a :class:`~.streams.Capacity`. ``server``: the camera
    server's pid."""
    from ..live.groups import Groups

    specs = [SourceSpec(f"cam{i}", u) for i, u in enumerate(urls)]
    plan = Plan(
        options, specs, loop=loop, workers=workers, decoders=decoders, clips=clips, groups=groups
    )
    arrived: list[tuple[str, float, float, float]] = []  # source, when, latency, infer ms
    leave_out = {server} if server else set()

    def mark() -> dict:
        pids = descendants(os.getpid(), leave_out)
        return {
            "wall": time.monotonic(),
            "cpu": sum(process_seconds(p) for p in pids),
            "busy": machine_busy(),
            "rss": sum(resident_mb(p) for p in pids),
        }

    def emit(name: str, result: FrameResult) -> None:
        arrived.append((name, time.monotonic(), result.latency_ms, result.infer_ms))

    classifier = plan.load()
    engine = plan.engine(classifier, Callbacks(on_result=emit))
    a, b = measured_span(engine.run, mark, warmup, seconds)
    wall = b["wall"] - a["wall"]
    span = [d for d in arrived if a["wall"] <= d[1] < b["wall"]]
    counts = {s.name: 0 for s in specs}
    for d in span:
        counts[d[0]] += 1
    rates = np.array([counts[s.name] / wall for s in specs])
    lat = np.array([d[2] for d in span]) if span else np.array([np.nan])
    infer = [d[3] for d in span]
    count = len(engine.groups) if isinstance(engine, Groups) else 1
    return {
        "streams": len(urls),
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
        "rate_mean": float(rates.mean()),
        "rate_min": float(rates.min()),
        "dropped": sum(s.dropped for s in engine.stats()),
        "cpu_cores": (b["cpu"] - a["cpu"]) / wall,
        "machine_cores": (b["busy"] - a["busy"]) / wall,
        "model_rate": feed_rate(classifier, None) or 0.0,
        "infer_ms": float(np.median(infer)) if infer else float("nan"),
        "rss_mb": b["rss"],
        "clips": None if clips is None else sum(1 for _ in Path(clips.folder).glob("*/*.mp4")),
        "groups": count,
    }
