"""Per-frame latency of vidcls against the official example's signature-runner loop, by
stage, in the same run (or, with --batch, the throughput of `vidcls batch`; with --train, the
time of `vidcls train` by phase on long 720p clips)."""

from __future__ import annotations

import argparse

from .. import zoo

HELP = "measure per-frame latency"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=zoo.DEFAULT_MODEL, help="zoo name or .tflite path [a0]")
    p.add_argument(
        "--video", help="video to decode (default: a synthetic 1280x720 clip made with PyAV)"
    )
    p.add_argument(
        "--threads", type=int, nargs="+", default=[1, 2], help="thread counts to measure [1 2]"
    )
    p.add_argument("--frames", type=int, default=200, help="frames timed per configuration [200]")
    p.add_argument(
        "--batch",
        type=int,
        nargs="?",
        const=50,
        metavar="COPIES",
        help="instead: throughput of `vidcls batch` on COPIES links to the shared clips "
        "plus a 1080p clip, one process against the local pool [50]",
    )
    p.add_argument(
        "--train",
        type=int,
        nargs="?",
        const=50,
        metavar="CLIPS",
        help="instead: time `vidcls train` phase by phase, with an empty feature cache, on "
        "CLIPS clips of 10-30 s at 1280x720 30 fps made once from the shared clips [50]",
    )


def run(args: argparse.Namespace) -> int:
    from ..bench import run_batch_bench, run_bench

    if args.train:
        from ..training.benchmark import run_train_bench

        run_train_bench(args.train, args.model)
    elif args.batch:
        run_batch_bench(args.batch)
    else:
        run_bench(args.model, args.video, args.threads, args.frames)
    return 0
