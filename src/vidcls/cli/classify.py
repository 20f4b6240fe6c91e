"""Classify video files frame by frame: the top categories of every frame fed, the summary
(the prediction after the last frame) and, optionally, action segments, an annotated video and
a timeline plot. Several files can be given; a bad one is reported and the others complete."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import VidclsError
from ..writers import FORMATS, get_writer, write_text
from . import error as print_error
from . import flags

HELP = "classify video files"
LONG_VIDEO_SECONDS = 10.0
PREFETCH = 4  # frames decoded ahead in a thread while the model runs
VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH", help="video file(s): anything FFmpeg reads")
    flags.add_model(p)
    flags.add_filters(p)
    p.add_argument(
        "--fps",
        type=flags.fps_value,
        help="frames per second fed to the model, or 'native' for every frame "
        "[the model's rate, 5]",
    )
    flags.add_preprocess(p)
    p.add_argument(
        "--skip-nonref",
        action="store_true",
        help="do not decode frames no other frame needs (B-frames): faster on high-rate video; "
        "steps get the nearest decoded frame",
    )
    p.add_argument("--format", choices=FORMATS, default="table", help="output format [table]")
    flags.add_output(p, "write results to FILE instead of stdout")
    p.add_argument("--summary-only", action="store_true", help="omit per-frame results")
    flags.add_window(p)
    p.add_argument(
        "--cumulative",
        action="store_true",
        help="no window, even if the model records one: all since the start",
    )
    p.add_argument("--segments", action="store_true", help="report action segments")
    p.add_argument("--srt", metavar="FILE", help="write the segments as SRT subtitles")
    flags.add_segments(p)
    vis = p.add_argument_group("pictures (one input file)")
    vis.add_argument("--annotate", metavar="OUT.mp4", help="write the video with results drawn")
    vis.add_argument("--plot", metavar="OUT.png", help="plot the leading classes over time")
    progress = p.add_mutually_exclusive_group()
    progress.add_argument(
        "--progress", action="store_true", default=None, help="always show a progress bar"
    )
    progress.add_argument(
        "--no-progress", dest="progress", action="store_false", help="never show a progress bar"
    )


def _check(args: argparse.Namespace) -> list[str]:
    """The picture outputs asked for, after checking every output before any work."""
    extras = [f for f in ("srt", "annotate", "plot") if getattr(args, f)]
    if extras and len(args.paths) > 1:
        raise VidclsError(f"--{extras[0]} takes one input file, not {len(args.paths)}")
    if args.annotate and Path(args.annotate).suffix.lower() not in VIDEO_SUFFIXES:
        raise VidclsError(f"--annotate writes {'/'.join(VIDEO_SUFFIXES)} files", args.annotate)
    for out in (args.output, args.srt, args.annotate, args.plot):
        flags.check_output(out)
    return extras


def run(args: argparse.Namespace) -> int:
    from ..classifier import VideoClassifier

    extras = _check(args)
    segments = None
    if args.segments or extras:
        segments = flags.segment_options(args)
    options = flags.classifier_options(args, window=flags.window_of(args))
    classifier = VideoClassifier.create_from_options(options)
    writer = get_writer(args.format)
    frames = not args.summary_only
    streaming = args.format != "json" and not args.output
    # JSON Lines and CSV start each file with its frame rows: those are printed as they come.
    frame_lines = streaming and frames and args.format in ("jsonl", "csv")
    text, results, failures = [writer.start()], [], 0
    if streaming:
        _write(text.pop())
    for path in args.paths:
        try:
            result = _classify(path, classifier, segments, args, writer if frame_lines else None)
        except VidclsError as e:
            print_error(str(e))
            failures += 1
            continue
        results.append(result)
        text.append(writer.video(result, frames and not frame_lines))
        if streaming:
            _write("".join(text))
            text = []
    text.append(writer.end())
    if results and args.output:
        write_text(args.output, "".join(text))
    elif results:
        _write("".join(text))
    if results and extras:
        _pictures(results[0], args)
    if failures:
        if len(args.paths) > 1:
            ok = len(args.paths) - failures
            print_error(f"{failures} of {len(args.paths)} files failed; {ok} classified")
        return 2
    return 0


def _classify(path: str, classifier, segments, args: argparse.Namespace, frame_writer):
    """One file's VideoResult; with ``frame_writer``, each frame's lines printed as it comes."""
    from ..pipeline import Pipeline

    pipeline = Pipeline(classifier, segments=segments, keep_probabilities=bool(args.plot))
    frames = []
    for frame in pipeline.video(
        path,
        args.fps,
        prefetch=PREFETCH,
        skip_nonref=args.skip_nonref,
        progress=_show_progress(args.progress, path),
    ):
        frames.append(frame)
        if frame_writer is not None:
            _write(frame_writer.frame(frame, path))
    return pipeline.video_result(path, frames, args.fps)


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _pictures(result, args: argparse.Namespace) -> None:
    """The SRT, plot and annotated video asked for, each written whole or not at all."""
    if args.srt:
        write_text(args.srt, get_writer("srt").video(result))
        print(f"vidcls: wrote {args.srt}", file=sys.stderr)
    if args.plot:
        from ..plot import plot_timeline

        plot_timeline(result, args.plot)
        print(f"vidcls: wrote {args.plot}", file=sys.stderr)
    if args.annotate:
        from ..annotate import annotate_video

        annotate_video(result, args.annotate)
        print(f"vidcls: wrote {args.annotate}", file=sys.stderr)


def _show_progress(asked: bool | None, path: str) -> bool:
    """As asked; by default when stderr is a terminal and the video is long."""
    if asked is not None:
        return asked
    from .. import media

    return sys.stderr.isatty() and (media.duration(path) or 0) > LONG_VIDEO_SECONDS
