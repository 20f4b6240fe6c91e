"""Classify every video of a folder (recursive), a glob, or a manifest (.csv/.parquet/.txt with
a path or URL per row) into one row per video, on all cores or a Ray cluster. Resumable: run
the same command again after a crash, Ctrl-C or a full disk and it finishes the rest; each
input appears once in the output. Exit code 0 once every input has its row, videos that failed
included (their rows say why; the first are listed on stderr); 2 if the job could not finish."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import TYPE_CHECKING

from . import flags

if TYPE_CHECKING:
    from ..batch import BatchOptions, BatchSummary

HELP = "classify many videos on all cores or a Ray cluster"
ERRORS_SHOWN = 20


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", metavar="INPUT", help="folder, glob, manifest, video file or URL")
    flags.add_output(p, "results .parquet or .jsonl", required=True)
    flags.add_model(p, threads=None, shown="per worker: cores / workers")
    flags.add_filters(p)
    p.add_argument(
        "--fps",
        type=flags.fps_value,
        help="frames per second fed, or 'native' for every frame [the model's rate, 5]",
    )
    flags.add_window(p)
    p.add_argument("--segments", action="store_true", help="add action segments to each row")
    p.add_argument("--per-frame", action="store_true", help="also write OUT.frames.parquet|jsonl")
    p.add_argument("--skip-nonref", action="store_true", help="do not decode B-frames (faster)")
    p.add_argument("--workers", type=int, help="worker processes [one per core]")
    p.add_argument("--chunk", type=int, default=4, help="videos per committed part [4]")
    p.add_argument(
        "--ray",
        nargs="?",
        const="auto",
        metavar="ADDRESS",
        help="run on Ray: a local one, or the cluster at ADDRESS (ray://host:10001 or host:6379)",
    )


def options_from(args: argparse.Namespace) -> BatchOptions:
    """BatchOptions from the flags of the same names."""
    from ..batch import BatchOptions

    names = [f.name for f in dataclasses.fields(BatchOptions)]
    kwargs = {name: getattr(args, name) for name in names if hasattr(args, name)}
    kwargs["window"] = flags.window_of(args)  # --window, else the model's recorded one
    return BatchOptions(**kwargs)


def run(args: argparse.Namespace) -> int:
    from ..batch import run_batch

    summary = run_batch(args.input, args.output, options_from(args))
    report(summary)
    return 0


def report(s: BatchSummary) -> None:
    """The first failures and the throughput on stderr, the output files on stdout."""
    for line in s.errors[:ERRORS_SHOWN]:
        print(f"vidcls: failed: {line}", file=sys.stderr)
    rate = s.processed / s.seconds if s.seconds else 0.0
    video_rate = s.video_seconds / s.seconds if s.seconds else 0.0
    print(
        f"vidcls: {s.inputs} videos: {s.done_before} already done, {s.processed} classified "
        f"({s.failed} failed) in {s.seconds:.1f} s: {rate:.2f} videos/s, "
        f"{video_rate:.1f} s of video per second",
        file=sys.stderr,
    )
    print(s.output)
    if s.frames_output is not None:
        print(s.frames_output)
