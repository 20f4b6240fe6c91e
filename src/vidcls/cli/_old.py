"""The ``vidcls`` command line: classify, live, serve, train, evaluate, batch, models, bench."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__, zoo
from .classifier import ClassifierOptions, VideoClassifier
from .classify import classify_video, parse_fps
from .errors import VidclsError
from .output import FORMATS, render, render_one, write_atomic
from .preprocess import RESIZES
from .segments import SegmentOptions, to_srt

LONG_VIDEO_SECONDS = 10.0
VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv")


def _fps(text: str) -> float | str:
    try:
        rate = parse_fps(text)
        return "native" if rate is None else rate
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive number or 'native', got {text!r}"
        ) from None


def _label_list(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


def _model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        default=zoo.DEFAULT_MODEL,
        help="zoo name (see `vidcls models`) or .tflite path [a0]",
    )
    p.add_argument(
        "--labels",
        help="label file, one class per line "
        "(default: embedded, beside the model, or Kinetics-600)",
    )
    p.add_argument("--threads", type=int, default=1, help="CPU threads for inference [1]")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vidcls", description="Streaming video classification with MoViNet on the CPU."
    )
    parser.add_argument("--version", action="version", version=f"vidcls {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    c = sub.add_parser(
        "classify", help="classify video files", description="Classify video files frame by frame."
    )
    c.add_argument("paths", nargs="+", metavar="PATH", help="video file(s): anything FFmpeg reads")
    _model_options(c)
    c.add_argument("--top-k", type=int, default=5, help="categories per frame; 0 = all [5]")
    c.add_argument("--threshold", type=float, default=0.0, help="minimum score to report [0]")
    c.add_argument("--allow", type=_label_list, help="only these labels (comma-separated)")
    c.add_argument("--deny", type=_label_list, help="never these labels (comma-separated)")
    c.add_argument(
        "--fps",
        type=_fps,
        help="frames per second fed to the model, or 'native' for every frame "
        "[the model's rate, 5]",
    )
    c.add_argument(
        "--resize",
        choices=RESIZES,
        default="bilinear",
        help="bilinear: OpenCV, as the official example [default]; "
        "area: FFmpeg scales while converting (faster on large video)",
    )
    c.add_argument(
        "--crop", action="store_true", help="centre-crop to the model's aspect instead of squashing"
    )
    c.add_argument(
        "--skip-nonref",
        action="store_true",
        help="do not decode frames no other frame needs (B-frames): faster on high-rate video; "
        "steps get the nearest decoded frame",
    )
    c.add_argument("--format", choices=FORMATS, default="table", help="output format [table]")
    c.add_argument("--output", "-o", help="write results to this file instead of stdout")
    c.add_argument("--summary-only", action="store_true", help="omit per-frame results")
    c.add_argument(
        "--window",
        type=float,
        metavar="SECONDS",
        help="follow the content of long videos: predictions from the last SECONDS/2 to SECONDS "
        "of video (two staggered streams) instead of everything since the start",
    )
    seg = c.add_argument_group("action segments")
    seg.add_argument("--segments", action="store_true", help="report action segments")
    seg.add_argument("--srt", metavar="FILE", help="write the segments as SRT subtitles")
    seg.add_argument(
        "--enter", type=float, default=0.3, help="probability that opens a segment [0.3]"
    )
    seg.add_argument(
        "--exit", type=float, default=0.15, help="probability below which it closes [0.15]"
    )
    seg.add_argument("--min-duration", type=float, default=1.0, help="shortest segment kept, s [1]")
    seg.add_argument(
        "--smoothing", type=float, default=0.5, help="smoothing time constant, s [0.5]"
    )
    vis = c.add_argument_group("pictures (one input file)")
    vis.add_argument(
        "--annotate", metavar="OUT.mp4", help="write the video with results drawn on it"
    )
    vis.add_argument("--plot", metavar="OUT.png", help="plot the leading classes over time")
    c.add_argument(
        "--backend",
        choices=("auto", "compiled", "interpreter"),
        default="auto",
        help=argparse.SUPPRESS,
    )
    progress = c.add_mutually_exclusive_group()
    progress.add_argument(
        "--progress",
        dest="progress",
        action="store_true",
        default=None,
        help="always show a progress bar",
    )
    progress.add_argument(
        "--no-progress", dest="progress", action="store_false", help="never show a progress bar"
    )

    _add_live_parser(sub)
    from .server import add_parser as _add_serve_parser

    _add_serve_parser(sub)

    t = sub.add_parser(
        "train",
        help="train a model on new action classes",
        description="Train a new classification head on a frozen stream model from a folder "
        "with one subfolder of clips per class, and write a streaming .tflite.",
    )
    t.add_argument("data_dir", metavar="DATA_DIR")
    t.add_argument("--out", "-o", required=True, help="the .tflite to write")
    t.add_argument(
        "--model", default=zoo.DEFAULT_MODEL, help="base model: zoo name or .tflite [a0]"
    )
    t.add_argument(
        "--val-fraction", type=float, default=0.3, help="held out per class, from the end [0.3]"
    )
    t.add_argument(
        "--views", type=int, default=8, help="clip + augmented views per training clip [8]"
    )
    t.add_argument(
        "--fps",
        type=lambda v: v if v == "auto" else _fps(v),
        default="auto",
        help="frames per second fed, 'native' for every frame, or 'auto': 5 when clips last "
        "2 s or more, else every frame [auto]",
    )
    t.add_argument("--l2", type=float, help="L2 strength (default: chosen by cross-validation)")
    t.add_argument("--seed", type=int, default=0, help="augmentation seed [0]")
    t.add_argument("--threads", type=int, default=2, help="CPU threads for inference [2]")

    bt = sub.add_parser(
        "batch",
        help="classify many videos on all cores or a Ray cluster",
        description="Classify every video of a folder (recursive), a glob, or a manifest "
        "(.csv/.parquet/.txt with a path or URL per row) into one row per video. Resumable: "
        "run the same command again after a crash or Ctrl-C and it finishes the rest; each "
        "input appears once in the output.",
    )
    bt.add_argument("input", metavar="INPUT")
    bt.add_argument("--out", "-o", required=True, help="results .parquet or .jsonl")
    _model_options(bt)
    bt.add_argument("--top-k", type=int, default=5, help="categories per video [5]")
    bt.add_argument("--fps", type=_fps, help="frames per second fed [the model's]")
    bt.add_argument("--window", type=float, metavar="SECONDS", help="windowed classification")
    bt.add_argument("--segments", action="store_true", help="add action segments to each row")
    bt.add_argument("--per-frame", action="store_true", help="also write OUT.frames.parquet|jsonl")
    bt.add_argument("--skip-nonref", action="store_true", help="do not decode B-frames (faster)")
    bt.add_argument("--workers", type=int, help="worker processes [one per core]")
    bt.add_argument("--chunk", type=int, default=4, help="videos per committed part [4]")
    bt.add_argument(
        "--ray",
        nargs="?",
        const="auto",
        metavar="ADDRESS",
        help="run on Ray: a local one, or the cluster at ADDRESS (ray://host:10001 or host:6379)",
    )

    e = sub.add_parser(
        "evaluate",
        help="measure a model's accuracy on labelled clips",
        description="Top-1, top-5, per-class precision and recall and the confusion matrix of a "
        "model on a folder with one subfolder of clips per class (named as the model's labels).",
    )
    e.add_argument("data_dir", metavar="DATA_DIR")
    _model_options(e)
    e.add_argument("--fps", type=_fps, help="frames per second fed [the model's]")
    e.add_argument(
        "--split",
        choices=("all", "val"),
        default="all",
        help="all clips, or the held-out part as train splits it",
    )
    e.add_argument("--val-fraction", type=float, default=0.3, help="with --split val [0.3]")
    e.add_argument("--format", choices=("table", "json"), default="table")
    e.add_argument("--output", "-o", help="write the JSON report to FILE")
    e.add_argument("--plot", metavar="OUT.png", help="draw the confusion matrix")

    m = sub.add_parser(
        "models", help="list the model zoo", description="List the model zoo and what is cached."
    )
    m.add_argument("--fetch", metavar="NAME", help="download a zoo model into the cache now")

    b = sub.add_parser(
        "bench",
        help="measure per-frame latency",
        description="Per-frame latency of vidcls against the official example's "
        "signature-runner loop.",
    )
    b.add_argument("--model", default=zoo.DEFAULT_MODEL, help="zoo name or .tflite path [a0]")
    b.add_argument(
        "--video", help="video to decode (default: a synthetic 1280x720 clip made with PyAV)"
    )
    b.add_argument(
        "--threads", type=int, nargs="+", default=[1, 2], help="thread counts to measure [1 2]"
    )
    b.add_argument("--frames", type=int, default=200, help="frames timed per configuration [200]")
    b.add_argument(
        "--batch",
        type=int,
        nargs="?",
        const=50,
        metavar="COPIES",
        help="instead: throughput of `vidcls batch` on COPIES links to the shared clips "
        "plus a 1080p clip, one process against the local pool [50]",
    )
    return parser


def _add_live_parser(sub) -> None:
    lv = sub.add_parser(
        "live",
        help="classify a camera, network stream or file continuously",
        description="Classify a live source continuously: the freshest frame at the model's "
        "frame rate. SOURCE: a camera index (0), a device (/dev/video0), an rtsp://, rtmp://, "
        "http(s)://, udp://, tcp:// or srt:// URL, or a file played at its real speed. Network "
        "sources that drop are reopened with backoff. In the window: q quits, r resets.",
    )
    lv.add_argument("source", metavar="SOURCE")
    _model_options(lv)
    lv.add_argument("--top-k", type=int, default=3, help="categories per result [3]")
    lv.add_argument("--threshold", type=float, default=0.0, help="minimum score to report [0]")
    lv.add_argument("--allow", type=_label_list, help="only these labels (comma-separated)")
    lv.add_argument("--deny", type=_label_list, help="never these labels (comma-separated)")
    lv.add_argument("--fps", type=float, help="frames per second fed to the model [5]")
    lv.add_argument(
        "--window",
        type=float,
        default=4.0,
        metavar="SECONDS",
        help="predictions from the last SECONDS/2 to SECONDS of video [4]",
    )
    lv.add_argument("--cumulative", action="store_true", help="no window: all since the start")
    lv.add_argument("--headless", action="store_true", help="no window: print results instead")
    lv.add_argument("--format", choices=("table", "jsonl"), default="table", help="printed format")
    lv.add_argument("--output", "-o", help="also append JSON Lines results and events to FILE")
    lv.add_argument("--duration", type=float, metavar="SECONDS", help="stop after SECONDS")
    lv.add_argument("--realtime", action="store_true", help="play files at real speed (always on)")
    lv.add_argument("--loop", action="store_true", help="loop a file source")
    lv.add_argument("--enter", type=float, default=0.3, help="probability opening a segment [0.3]")
    lv.add_argument("--exit", type=float, default=0.15, help="probability closing it [0.15]")
    lv.add_argument("--min-duration", type=float, default=1.0, help="shortest segment, s [1]")
    lv.add_argument("--smoothing", type=float, default=0.5, help="smoothing time constant, s [0.5]")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(format="vidcls: %(message)s", level=logging.WARNING, stream=sys.stderr)
    commands = {
        "classify": _classify,
        "live": _live,
        "serve": _serve,
        "train": _train,
        "evaluate": _evaluate,
        "batch": _batch,
        "models": _models,
        "bench": _bench,
    }
    try:
        return commands[args.command](args)
    except VidclsError as e:
        _error(str(e))
        return 2
    except KeyboardInterrupt:
        _error("interrupted")
        return 130


def _serve(args: argparse.Namespace) -> int:
    from .server import run

    return run(args)


def _bench(args: argparse.Namespace) -> int:
    from .bench import run_batch_bench, run_bench

    if args.batch:
        run_batch_bench(args.batch)
    else:
        run_bench(args.model, args.video, args.threads, args.frames)
    return 0


def _error(message: str) -> None:
    print(f"vidcls: error: {message}", file=sys.stderr, flush=True)


def _classify(args: argparse.Namespace) -> int:
    if args.top_k < 0:
        raise VidclsError("--top-k must be 0 (all) or more")
    if args.threads < 1:
        raise VidclsError("--threads must be 1 or more")
    options = ClassifierOptions(
        model=args.model,
        labels=args.labels,
        max_results=args.top_k,
        score_threshold=args.threshold,
        label_allow_list=args.allow,
        label_deny_list=args.deny,
        num_threads=args.threads,
        resize=args.resize,
        center_crop=args.crop,
        backend=args.backend,
        window=args.window,
    )
    if args.window is not None and not (args.window > 0 and math.isfinite(args.window)):
        raise VidclsError("--window must be a positive number of seconds")
    extras = [f for f in ("srt", "annotate", "plot") if getattr(args, f)]
    if extras and len(args.paths) > 1:
        raise VidclsError(f"--{extras[0]} takes one input file, not {len(args.paths)}")
    if args.annotate and Path(args.annotate).suffix.lower() not in VIDEO_SUFFIXES:
        raise VidclsError(f"--annotate writes {'/'.join(VIDEO_SUFFIXES)} files", args.annotate)
    for out in (args.output, args.srt, args.annotate, args.plot):
        if out and not os.path.isdir(os.path.dirname(os.path.abspath(out))):
            raise VidclsError("output folder does not exist", os.path.dirname(os.path.abspath(out)))
    segments = None
    if args.segments or args.srt or args.annotate or args.plot:
        try:
            segments = SegmentOptions(args.enter, args.exit, args.min_duration, args.smoothing)
        except ValueError as e:
            raise VidclsError(f"bad segment options: {e}") from None
    classifier = VideoClassifier.create_from_options(options)
    frames = not args.summary_only
    streaming = args.format != "json" and not args.output
    results, failures = [], 0
    for path in args.paths:
        try:
            show = args.progress if args.progress is not None else _long_video(path)
            result = classify_video(
                path,
                fps=args.fps,
                classifier=classifier,
                segments=segments,
                keep_probabilities=bool(args.plot),
                progress=show,
                skip_nonref=args.skip_nonref,
            )
        except VidclsError as e:
            _error(str(e))
            failures += 1
            continue
        results.append(result)
        if streaming:
            sys.stdout.write(render_one(result, args.format, frames, header=len(results) == 1))
            sys.stdout.flush()
    if results and not streaming:
        text = render(results, args.format, frames)
        if args.output:
            write_atomic(args.output, text)
        else:
            sys.stdout.write(text)
    if results and extras:
        _pictures(results[0], args)
    if failures:
        ok = len(args.paths) - failures
        if len(args.paths) > 1:
            _error(f"{failures} of {len(args.paths)} files failed; {ok} classified")
        return 2
    return 0


def _pictures(result, args: argparse.Namespace) -> None:
    """The SRT, annotated video and plot asked for, each written whole or not at all."""
    if args.srt:
        write_atomic(args.srt, to_srt(result.segments or []))
        print(f"vidcls: wrote {args.srt}", file=sys.stderr)
    if args.plot:
        from .plot import plot_timeline

        plot_timeline(result, args.plot)
        print(f"vidcls: wrote {args.plot}", file=sys.stderr)
    if args.annotate:
        from .annotate import annotate_video

        annotate_video(result, args.annotate)
        print(f"vidcls: wrote {args.annotate}", file=sys.stderr)


def _live(args: argparse.Namespace) -> int:
    if args.threads < 1 or args.top_k < 0:
        raise VidclsError("--threads must be 1 or more and --top-k 0 or more")
    window = None if args.cumulative else args.window
    if window is not None and not (window > 0 and math.isfinite(window)):
        raise VidclsError("--window must be a positive number of seconds")
    try:
        segments = SegmentOptions(args.enter, args.exit, args.min_duration, args.smoothing)
    except ValueError as e:
        raise VidclsError(f"bad segment options: {e}") from None
    classifier = VideoClassifier.create_from_options(
        ClassifierOptions(
            model=args.model,
            labels=args.labels,
            max_results=args.top_k,
            score_threshold=args.threshold,
            label_allow_list=args.allow,
            label_deny_list=args.deny,
            num_threads=args.threads,
            window=window,
        )
    )
    if args.fps is not None and args.fps != classifier.fps and window is not None:
        classifier.set_feed_rate(args.fps)
    with contextlib.ExitStack() as stack:
        sink = None
        if args.output:
            sink = stack.enter_context(open(args.output, "a", buffering=1, encoding="utf-8"))
        stats = _run_live(args, classifier, segments, sink)
    print(
        f"vidcls: {stats.fed} frames classified of {stats.captured} received in "
        f"{stats.seconds:.1f} s, {stats.reconnects} reconnects",
        file=sys.stderr,
    )
    return 0


def _run_live(args, classifier, segments, sink):
    from .live import run_live
    from .output import format_time

    printing = args.headless or sink is None

    def write(doc: dict, text: str) -> None:
        if sink is not None:
            sink.write(json.dumps(doc) + "\n")
        if printing:
            print(json.dumps(doc) if args.format == "jsonl" else text, flush=True)

    def on_result(r) -> None:
        top = "  ".join(f"{c.label} {c.score:.3f}" for c in r.top) or "-"
        status = f"[{r.infer_ms:.1f} ms, {r.input_fps:.1f} fps in, {r.latency_ms:.0f} ms late]"
        write(r.to_dict(), f"{format_time(r.time):>9}  {top}  {status}")

    def on_segment(e) -> None:
        doc = {"time": round(e.time, 3), "event": e.kind, "segment": e.segment.to_dict()}
        write(doc, f"{format_time(e.time):>9}  -- {e.kind} {e.segment.label}")

    return run_live(
        args.source,
        classifier,
        on_result,
        on_segment,
        fps=args.fps,
        duration=args.duration,
        segments=segments,
        display=not args.headless,
        loop=args.loop,
    )


def _train(args: argparse.Namespace) -> int:
    from .train import TrainOptions, train, write_report

    if args.views < 1 or args.threads < 1:
        raise VidclsError("--views and --threads must be 1 or more")
    options = TrainOptions(
        model=args.model,
        val_fraction=args.val_fraction,
        views=args.views,
        fps=None if args.fps == "native" else args.fps,  # a number, None or "auto"
        l2=args.l2,
        seed=args.seed,
        num_threads=args.threads,
    )
    result = train(args.data_dir, args.out, options)
    report = write_report(result, options, args.data_dir)
    print(f"wrote {result.model_path} ({len(result.classes)} classes) and {result.labels_path}")
    print(f"training accuracy    {result.train_accuracy:.1%}")
    if result.val_accuracy is not None:
        print(f"validation accuracy  {result.val_accuracy_exported:.1%} (exported model)")
        print(
            f"largest probability difference, exported vs numpy head: "
            f"{result.max_probability_difference:.4f}"
        )
    print(f"report {report}  ({result.seconds:.0f} s)")
    return 0


def _batch(args: argparse.Namespace) -> int:
    from .batch import BatchOptions, run_batch

    if args.chunk < 1 or (args.workers is not None and args.workers < 1):
        raise VidclsError("--chunk and --workers must be 1 or more")
    options = BatchOptions(
        model=args.model,
        labels=args.labels,
        top_k=args.top_k,
        fps=args.fps,
        window=args.window,
        segments=args.segments,
        per_frame=args.per_frame,
        workers=args.workers,
        threads=None if args.threads == 1 and args.workers is None else args.threads,
        chunk=args.chunk,
        ray=args.ray,
        skip_nonref=args.skip_nonref,
    )
    s = run_batch(args.input, args.out, options)
    for line in s.errors[:20]:
        print(f"vidcls: failed: {line}", file=sys.stderr)
    rate = s.processed / s.seconds if s.seconds else 0.0
    print(
        f"vidcls: {s.inputs} videos: {s.done_before} already done, {s.processed} classified "
        f"({s.failed} failed) in {s.seconds:.1f} s: {rate:.2f} videos/s, "
        f"{s.video_seconds / s.seconds if s.seconds else 0:.1f} s of video per second",
        file=sys.stderr,
    )
    print(s.output)
    if s.frames_output is not None:
        print(s.frames_output)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from .evaluate import evaluate, plot_confusion, write_json

    result = evaluate(
        args.data_dir,
        args.model,
        labels=args.labels,
        fps=args.fps,
        split=args.split,
        val_fraction=args.val_fraction,
        num_threads=args.threads,
    )
    if args.output:
        write_json(result, args.output)
    if args.plot:
        plot_confusion(result, args.plot)
    if args.format == "json":
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(result.table(), end="")
    return 0


def _long_video(path: str) -> bool:
    """Show progress when stderr is a terminal and the video is long."""
    if not sys.stderr.isatty():
        return False
    try:
        import av

        with av.open(path) as c:
            return (c.duration or 0) / av.time_base > LONG_VIDEO_SECONDS
    except Exception:
        return False


def _models(args: argparse.Namespace) -> int:
    if args.fetch:
        name = args.fetch.lower()
        if name not in zoo.MODELS:
            raise VidclsError(f"unknown model '{args.fetch}' (zoo models: {', '.join(zoo.MODELS)})")
        print(zoo.fetch(zoo.MODELS[name]))
        return 0
    rows = [("name", "variant", "precision", "input", "fps", "size", "cached")]
    for m in zoo.MODELS.values():
        size = f"{m.size_bytes / 1e6:.1f} MB" if m.size_bytes else "?"
        cached = str(zoo.cached_path(m)) if zoo.is_cached(m) else "no"
        if zoo.is_cached(m):
            size = f"{zoo.cached_path(m).stat().st_size / 1e6:.1f} MB"
        rows.append(
            (
                m.name,
                m.variant,
                m.precision,
                f"{m.input_size}x{m.input_size}",
                f"{m.fps:g}",
                size,
                cached,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    print(f"\ncache: {zoo.cache_dir()}")
    mirror = os.environ.get("VIDCLS_MIRROR")
    print(f"source: {'mirror ' + mirror if mirror else 'published (TF Hub / Kaggle)'}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
