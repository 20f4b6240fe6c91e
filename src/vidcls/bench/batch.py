"""``vidcls bench --batch``: the throughput of ``vidcls batch``, one process against the
local pool of worker processes, on links to the shared clips plus a 1080p clip."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from .clips import shared_clips, synthetic_video


def run_batch_bench(
    copies: int = 50, workers: int | None = None, clip_seconds: float = 10.0
) -> None:
    """Videos/s and video-seconds per wall second for ``vidcls batch``: one process against
    the local pool, on ``copies`` links to the shared-style clips plus a 1080p clip of
    ``clip_seconds`` (none when 0)."""
    from ..batch import BatchOptions, run_batch

    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="vidcls-batch-bench-") as tmp:
        root = Path(tmp) / "videos"
        root.mkdir()
        clips = shared_clips()
        for i in range(copies):
            clip = clips[i % len(clips)]
            (root / f"{i:03d}_{clip.name}").symlink_to(clip)
        extra = ""
        if clip_seconds > 0:
            print(
                f"encoding a 1920x1080 {clip_seconds:g} s H.264 clip with PyAV ...", file=sys.stderr
            )
            synthetic_video(root / "synthetic_1080p.mp4", 1920, 1080, clip_seconds)
            extra = f" + one 1080p {clip_seconds:g} s clip"
        print(f"{copies} links to {len(clips)} shared clips{extra}; {cores} cores")
        print(f"{'mode':<28}{'videos/s':>10}{'video s / s':>14}{'wall s':>9}")
        for name, opts in (
            (f"single process ({cores} threads)", BatchOptions(workers=1, threads=cores)),
            (f"local pool ({workers or cores} workers)", BatchOptions(workers=workers)),
        ):
            out = Path(tmp) / f"{name.split()[0]}.parquet"
            s = run_batch(str(root), out, opts)
            print(
                f"{name:<28}{s.processed / s.seconds:>10.2f}"
                f"{s.video_seconds / s.seconds:>14.1f}{s.seconds:>9.1f}"
            )
