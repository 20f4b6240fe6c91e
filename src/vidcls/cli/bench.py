"""Per-frame latency of vidcls against the official example's signature-runner loop, by
stage, in the same run (or, with --batch, the throughput of `vidcls batch`; with --train, the
time of `vidcls train` by phase on long 720p clips; with --streams, how many live cameras one
process, or N groups of processes, holds; with --ws, how many browser streams `vidcls serve`
holds; with --slow-headers, how `vidcls serve` and plain uvicorn stand slow-header clients)."""

from __future__ import annotations

import argparse

from .. import zoo
from ..errors import OptionError
from . import flags

HELP = "measure speed, capacity and accuracy trade-offs"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=zoo.DEFAULT_MODEL, help="zoo name or .tflite path [a0]")
    p.add_argument(
        "--video", help="video to decode (default: a synthetic 1280x720 clip made with PyAV)"
    )
    p.add_argument(
        "--threads", type=int, nargs="+", default=[1, 2], help="thread counts to measure [1 2]"
    )
    p.add_argument("--frames", type=int, default=200, help="frames timed per configuration [200]")
    _add_other_benchmarks(p)
    _add_capacity(p)
    _add_heldout(p)


def _add_other_benchmarks(p: argparse.ArgumentParser) -> None:
    """--batch, --train, --e2e (--rounds), --window-modes."""
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
        "--clip-seconds",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="with --batch: length of the synthetic 1920x1080 30 fps clip added to the links; "
        "0 for none [10]",
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

    p.add_argument(
        "--e2e",
        action="store_true",
        help="instead: `vidcls classify` against the official example's loop end to end, each a "
        "fresh process, on a 23 s 1080x1920 phone-style clip (made once): time to the first "
        "result, total, speed-up (--threads: its first value)",
    )
    p.add_argument("--rounds", type=int, default=3, help="rounds of --e2e, losses of --cluster [3]")
    p.add_argument(
        "--nonref",
        nargs="*",
        metavar="DIR",
        help="instead: what --skip-nonref changes (top-1 agreement, time) on the shared clips, "
        "the clips in each DIR and the --e2e clips if made, each classified both ways",
    )
    p.add_argument(
        "--window-modes",
        action="store_true",
        help="instead: compare the window modes (none, two, decay) on the shared clips: how "
        "fast predictions follow a cut, agreement with an exact window, cost per frame",
    )
    p.add_argument(
        "--memory",
        nargs="*",
        type=int,
        metavar="N",
        help="instead: resident memory watching N simulated cameras (files at real speed), "
        "without and with event clips, each run in a fresh process, and what one more camera "
        "costs [8 24]",
    )


def _add_heldout(p: argparse.ArgumentParser) -> None:
    """--heldout DIR and the training options it varies."""
    from ..options import FITS

    g = p.add_argument_group("accuracy on unseen clips (--heldout)")
    g.add_argument(
        "--heldout",
        metavar="DIR",
        help="instead: train as `vidcls train` does FOLDS times, each without one contiguous "
        "block of every class, and classify that block: every clip unseen once",
    )
    g.add_argument("--folds", type=int, default=6, help="blocks per class [6]")
    g.add_argument("--flip", action="store_true", help="also measure mirrored test-time views")
    g.add_argument("--fit", choices=FITS, default="squash", help="train --fit [squash]")
    g.add_argument(
        "--method", choices=("classifier", "head"), default="classifier", help="train --method"
    )
    g.add_argument("--views", type=int, default=8, help="train --views [8]")


def _add_capacity(p: argparse.ArgumentParser) -> None:
    """--streams and --ws, with their settings."""
    g = p.add_argument_group("capacity (--streams)")
    g.add_argument(
        "--streams",
        nargs="+",
        metavar="N",
        help="instead: watch N live 640x360 30 fps cameras in real time, as `vidcls live` does, "
        "and print latency, results/s per stream, drops and CPU; `auto`: from 8 up by 8 while "
        "p99 < 200 ms and every stream gets 90 %% of 5 results/s",
    )
    g.add_argument(
        "--transport",
        choices=("http", "file"),
        default="http",
        help="cameras as live MPEG-TS streams from a loopback server in another process, or "
        "files read at real speed [http]",
    )
    g.add_argument(
        "--clips",
        action="store_true",
        help="measure each N without and then with event clips and snapshots (as `vidcls live "
        "--clips`), and print the ratio",
    )
    _add_groups(g)
    g.add_argument("--seconds", type=float, default=20.0, help="measured per run [20]")
    g.add_argument("--workers", type=int, help="threads feeding the model, as `vidcls live`")
    g.add_argument(
        "--decoders", type=int, help="decoding processes, as `vidcls live` [one per 4 sources]"
    )
    g.add_argument(
        "--window",
        type=float,
        default=4.0,
        help="window seconds, as `vidcls live`; 0 for none [4]",
    )
    g.add_argument(
        "--window-mode",
        choices=("two", "decay"),
        default="decay",
        help="as `vidcls live`: decay (one model run per frame) or two (two runs) [decay]",
    )

    g = p.add_argument_group("server capacity (--ws)")
    g.add_argument(
        "--ws",
        nargs="+",
        metavar="N",
        help="instead: start `vidcls serve` and open N browser-style WebSocket streams (640x360 "
        "JPEG frames at 5 fps, <= 2 in flight), and print round trips, results/s per stream, "
        "skipped frames and server CPU (--seconds each, --video for the frames); `auto`: from "
        "8 up by 8 while p99 < 100 ms and every stream gets 90 %% of 5 results/s",
    )
    g.add_argument(
        "--slow-headers",
        type=int,
        nargs="?",
        const=300,
        metavar="N",
        help="instead: start `vidcls serve`, then plain uvicorn, and open N sockets each sending "
        "one request-header byte every --byte-every s for --seconds, while a client asks "
        "GET /healthz every 0.2 s; print sockets closed, open-to-close time and the client's "
        "latency and failures [300]",
    )
    g.add_argument(
        "--byte-every", type=float, default=5.0, metavar="SECONDS", help="--slow-headers [5]"
    )
    g.add_argument(
        "--servers",
        nargs="+",
        choices=("vidcls", "h11", "httptools"),
        help="--slow-headers: vidcls (its protocol) and plain uvicorn with h11 or httptools "
        "[vidcls h11, and httptools if installed]",
    )


def _add_groups(g) -> None:
    """--groups, --camera-fps and --cluster of --streams."""
    g.add_argument(
        "--cluster",
        type=int,
        metavar="NODES",
        help="instead: start NODES Ray nodes on this machine and run the cameras (--streams, "
        "one number [24]; --video or the shared clips, looped at real speed) in one process, "
        "then in NODES groups as Ray actors, and print results/s per camera and p99 latency "
        "of both; then per round (--rounds) remove a node holding a group and print the time "
        "to every moved camera online, offline/online pairs, events twice and events lost",
    )
    g.add_argument(
        "--groups",
        nargs="+",
        type=flags.groups_value,
        metavar="N|auto",
        help="the cameras in N processes (as `vidcls live --groups`), each N run in each given "
        "count, for comparing in one run (1: one process) [1]; a search (auto) in one group "
        "stores the largest N that held, what `vidcls live --groups auto` packs cameras by",
    )
    g.add_argument(
        "--camera-fps",
        nargs="+",
        type=int,
        choices=(5, 10, 15, 25, 30),
        metavar="FPS",
        help="the cameras' frame rate, one set of runs per rate: 30 (a main stream) or 5 (a "
        "substream, a sixth of the decoding) [30]",
    )


def _streams(values: list[str], flag: str = "--streams") -> tuple[list[int], bool]:
    if values == ["auto"]:
        return [8], True
    try:
        counts = [int(v) for v in values]
    except ValueError:
        raise SystemExit(f"vidcls: error: {flag} takes numbers or 'auto'") from None
    if min(counts) < 1:
        raise SystemExit(f"vidcls: error: {flag} must be at least 1")
    return counts, False


def run(args: argparse.Namespace) -> int:
    if args.heldout:
        from ..bench.heldout import heldout
        from ..training import TrainOptions

        options = TrainOptions(model=args.model, fit=args.fit, method=args.method, views=args.views)
        print(heldout(args.heldout, options, args.folds, args.flip).table(), end="")
    elif args.nonref is not None:
        from pathlib import Path

        from ..bench.endtoend import cached_phone_clips
        from ..bench.nonref import run_nonref

        run_nonref(args.model, [Path(f) for f in args.nonref], cached_phone_clips())
    elif args.e2e:
        from ..bench.endtoend import run_end_to_end

        run_end_to_end(args.model, args.rounds, args.threads[0])
    elif args.memory is not None:
        from ..bench.memory import run_memory

        run_memory(args.memory or [8, 24])
    elif args.window_modes:
        from ..bench.window import parser, run_window_study

        run_window_study(parser().parse_args(["--model", args.model, "--threads", "1"]))
    elif args.slow_headers:
        from ..bench.slowheaders import run_slow_headers

        run_slow_headers(args.model, args.slow_headers, args.byte_every, args.seconds, args.servers)
    elif args.ws:
        from ..bench.ws import run_ws_capacity

        counts, search = _streams(args.ws, "--ws")
        run_ws_capacity(args.model, counts, args.seconds, search, args.video)
    elif args.cluster is not None:
        from ..bench.cluster import run_cluster

        counts, _ = _streams(args.streams or ["24"])
        if args.cluster < 2 or len(counts) != 1 or args.rounds < 0:
            raise SystemExit("vidcls: error: --cluster takes 2 nodes or more, --streams one N")
        run_cluster(args.cluster, args.model, counts[0], args.video, args.seconds, args.rounds)
    elif args.streams:
        from ..bench.streams import run_capacity

        counts, search = _streams(args.streams)
        run_capacity(
            args.model,
            counts,
            seconds=args.seconds,
            transport=args.transport,
            workers=args.workers,
            decoders=args.decoders,
            window=args.window or None,
            window_mode=args.window_mode,
            search=search,
            clips=args.clips,
            groups=args.groups,
            camera_fps=args.camera_fps,
        )
    elif args.train:
        from ..bench.train import run_train_bench

        run_train_bench(args.train, args.model)
    elif args.batch:
        from ..bench.batch import run_batch_bench

        if not (args.clip_seconds == 0 or 0.1 <= args.clip_seconds <= 3600):
            raise OptionError("clip_seconds", "must be 0 or 0.1-3600")
        run_batch_bench(args.batch, clip_seconds=args.clip_seconds)
    else:
        from ..bench.latency import run_bench

        run_bench(args.model, args.video, args.threads, args.frames)
    return 0
