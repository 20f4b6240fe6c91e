"""Classify a live source continuously: the freshest frame at the model's frame rate.
SOURCE: a camera index (0), a device (/dev/video0), an rtsp://, rtmp://, http(s)://, udp://,
tcp:// or srt:// URL, or a file played at its real speed. Network sources that drop are
reopened with backoff. In the window: q quits, r resets."""

from __future__ import annotations

import argparse
import contextlib
import sys

from ..classifier import VideoClassifier
from ..pipeline import Pipeline
from ..results import FrameResult
from ..writers import LIVE_FORMATS, get_writer
from . import flags

HELP = "classify a camera, network stream or file continuously"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="SOURCE")
    flags.add_model(p)
    flags.add_filters(p, top_k=3)
    p.add_argument(
        "--fps", type=flags.fps_value, help="frames per second fed to the model [the model's, 5]"
    )
    flags.add_window(p, default=4.0)
    p.add_argument("--cumulative", action="store_true", help="no window: all since the start")
    p.add_argument("--headless", action="store_true", help="no window: print results instead")
    p.add_argument("--format", choices=LIVE_FORMATS, default="table", help="printed format")
    p.add_argument("--output", "-o", help="also append JSON Lines results and events to FILE")
    p.add_argument("--duration", type=float, metavar="SECONDS", help="stop after SECONDS")
    p.add_argument("--loop", action="store_true", help="loop a file source")
    flags.add_segments(p)


def run(args: argparse.Namespace) -> int:
    window = None if args.cumulative else args.window
    options = flags.classifier_options(args, window=window)
    segments = flags.segment_options(args)
    flags.check_output(args.output)
    classifier = VideoClassifier.create_from_options(options)
    pipeline = Pipeline(classifier, segments=segments)
    printed = get_writer(args.format)
    logged = get_writer("jsonl")
    display = None
    if not args.headless:
        from ..display import LiveWindow

        display = LiveWindow(on_reset=pipeline.reset)
    with contextlib.ExitStack() as stack:
        sink = None
        if args.output:
            sink = stack.enter_context(open(args.output, "a", buffering=1, encoding="utf-8"))
        if display is not None:
            stack.callback(display.close)
        printing = display is None or sink is None

        def emit(result: FrameResult, final: bool = False) -> None:
            items = [] if final else [(printed.frame, logged.frame, result)]
            items += [(printed.event, logged.event, e) for e in result.events]
            for show, log, item in items:
                if sink is not None:
                    sink.write(log(item, args.source))
                if printing:
                    sys.stdout.write(show(item, args.source))
            sys.stdout.flush()

        results = pipeline.live(
            args.source,
            args.fps,
            duration=args.duration,
            loop=args.loop,
            preview=None if display is None else display.show,
        )
        with contextlib.suppress(KeyboardInterrupt):
            for result in results:
                emit(result)
        emit(FrameResult(0.0, [], events=pipeline.finish()), final=True)
    s = pipeline.stats
    print(
        f"vidcls: {s.fed} frames classified of {s.captured} received in "
        f"{s.seconds:.1f} s, {s.reconnects} reconnects",
        file=sys.stderr,
    )
    return 0
