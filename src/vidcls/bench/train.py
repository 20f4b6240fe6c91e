"""``vidcls bench --train``: training time on a folder of long 720p clips, phase by phase.

The folder is made once from the shared clips (each source clip is a class) and kept in the
model cache: every clip is a source clip looped (back and forth) to 10-30 s, cut to a random
16:9 region, possibly mirrored and played a little faster or slower, scaled to 1280x720 and
encoded as H.264 at 30 fps with PyAV, so no two clips are identical. Training then runs on it
with an empty feature cache.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .. import zoo
from ..media import read_clip
from .clips import encode_h264, shared_clips


@dataclass(frozen=True)
class ClipPlan:
    """One clip to make: its source, length, 16:9 region (fractions), mirror, speed."""

    source: int
    seconds: float
    crop: tuple[float, float, float, float]  # x0, y0, x1, y1
    flip: bool
    speed: float


def plan_clips(n: int, sources: int, seconds: tuple[float, float], seed: int = 0) -> list[ClipPlan]:
    """``n`` clips spread over ``sources`` in turn, their lengths, regions, mirrors and speeds
    drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    plans = []
    for i in range(n):
        scale = rng.uniform(0.55, 1.0)  # of the source's width
        x0, y0 = rng.uniform(0, 1 - scale), rng.uniform(0, 1 - scale * 9 / 16)
        plans.append(
            ClipPlan(
                source=i % sources,
                seconds=float(rng.uniform(*seconds)),
                crop=(x0, y0, x0 + scale, y0 + scale * 9 / 16),
                flip=bool(rng.integers(2)),
                speed=float(rng.uniform(0.8, 1.25)),
            )
        )
    return plans


def write_clip(
    path: Path, frames: list[np.ndarray], source_fps: float, plan: ClipPlan, size=(1280, 720)
) -> Path:
    """Encode ``plan`` of the source ``frames`` (RGB, at ``source_fps``) to ``path``: H.264,
    ``size``, 30 fps."""
    fps, (w, h) = 30, size
    sh, sw = frames[0].shape[:2]
    x0, y0, x1, y1 = plan.crop
    # A 16:9 region of the source's width fraction; on a narrow source, of what fits.
    rw = min(sw, max(2, round((x1 - x0) * sw)))
    rh = min(sh, max(2, round(rw * 9 / 16)))
    rx, ry = min(round(x0 * sw), sw - rw), min(round(y0 * sh), sh - rh)
    bounce = list(range(len(frames))) + list(range(len(frames) - 2, 0, -1)) or [0]
    out_img = np.empty((h, w, 3), np.uint8)

    def pictures():
        for i in range(round(plan.seconds * fps)):
            k = bounce[int(i / fps * source_fps * plan.speed) % len(bounce)]
            region = frames[k][ry : ry + rh, rx : rx + rw]
            cv2.resize(region, (w, h), out_img, interpolation=cv2.INTER_LINEAR)
            yield out_img[:, ::-1] if plan.flip else out_img

    # superfast: B-frames and CABAC as in phone and camera video, quicker to make.
    encode_h264(path, pictures(), w, h, fps, options={"preset": "superfast", "crf": "23"})
    return path


_sources: dict[Path, tuple[list[np.ndarray], float]] = {}  # decoded once per process


def _make_clip(source: Path, target: Path, plan: ClipPlan, size: tuple[int, int]) -> Path:
    if source not in _sources:
        frames, rate = read_clip(source)
        _sources[source] = (frames, rate or 30.0)
    target.parent.mkdir(exist_ok=True)
    return write_clip(target, *_sources[source], plan, size)


def build_dataset(
    folder: Path,
    sources: list[Path],
    n: int = 50,
    seconds: tuple[float, float] = (10.0, 30.0),
    size: tuple[int, int] = (1280, 720),
    seed: int = 0,
    processes: int | None = None,
) -> Path:
    """Make ``folder`` (one subfolder per source clip, its stem the class) with ``n`` clips,
    unless it is already there, in ``processes`` processes (default: one per core); built in
    a temporary folder and renamed, so an interrupted build leaves nothing half made."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    if folder.is_dir():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=folder.parent))
    plans = plan_clips(n, len(sources), seconds, seed)
    jobs = [
        (sources[p.source], tmp / sources[p.source].stem / f"clip_{i:03d}.mp4", p, size)
        for i, p in enumerate(plans)
    ]
    processes = processes or os.cpu_count() or 1
    try:
        if processes == 1:
            for job in jobs:
                _make_clip(*job)
        else:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(processes, context) as pool:
                done = [pool.submit(_make_clip, *job) for job in jobs]
                for i, future in enumerate(done):
                    future.result()
                    seconds = plans[i].seconds
                    print(f"  clip {i + 1}/{n} ({seconds:.0f} s)", file=sys.stderr, flush=True)
        os.rename(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


class _PhaseTimes(logging.Handler):
    """Collects each finished training phase's name and duration from the progress log."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.times: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if hasattr(record, "phase"):
            self.times[record.phase] = self.times.get(record.phase, 0.0) + record.seconds


def run_train_bench(n: int = 50, model: str = zoo.DEFAULT_MODEL, threads: int = 2) -> dict:
    """Build (once) the ``n``-clip 720p folder, train on it with an empty feature cache, and
    print the time of each phase and the total; returns them."""
    from ..training.options import TrainOptions
    from ..training.progress import log as progress_log
    from ..training.progress import show_phase_lines
    from ..training.trainer import train

    folder = zoo.cache_dir() / "bench" / f"train-720p-{n}-v1"
    if not folder.is_dir():
        print(f"building {n} clips of 10-30 s at 1280x720 30 fps in {folder} (once) ...")
        t0 = time.monotonic()
        build_dataset(folder, shared_clips(), n)
        print(f"built in {time.monotonic() - t0:.0f} s")
    clips = sorted(folder.rglob("*.mp4"))
    print(f"{len(clips)} clips in {folder}; {os.cpu_count()} cores; empty feature cache")
    show_phase_lines()
    handler = _PhaseTimes()
    progress_log.addHandler(handler)
    try:
        with tempfile.TemporaryDirectory(prefix="vidcls-train-bench-") as tmp:
            # 30 % held out, as vidcls train did by default before it fitted on every clip:
            # the same work as the figures measured before, and a validation score.
            options = TrainOptions(
                model=model, cache=Path(tmp) / "features", threads=threads, val_fraction=0.3
            )
            t0 = time.monotonic()
            result = train(folder, Path(tmp) / "bench.tflite", options, progress=False)
            total = time.monotonic() - t0
    finally:
        progress_log.removeHandler(handler)
    times = dict(handler.times)
    print(f"\n{'phase':<12}{'seconds':>9}")
    for name, seconds in times.items():
        print(f"{name:<12}{seconds:9.1f}")
    print(f"{'total':<12}{total:9.1f}")
    val = result.val_accuracy_exported
    print(f"validation top-1 {val:.1%} (exported model)" if val is not None else "")
    times["total"] = total
    return times
