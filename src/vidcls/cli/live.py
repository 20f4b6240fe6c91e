"""Classify live sources continuously: the freshest frame at the model's frame rate.
SOURCE: a camera index (0), a device (/dev/video0), an rtsp://, rtmp://, http(s)://, udp://,
tcp:// or srt:// URL, or a file played at its real speed, optionally named (door=rtsp://...).
Several sources (or --sources FILE) run in one process on one model, printing JSON Lines
events. Network sources that drop are reopened with backoff. In the window: q quits, r resets."""

from __future__ import annotations

import argparse
import contextlib
import sys

from ..classifier import VideoClassifier
from ..errors import VidclsError
from ..pipeline import Pipeline
from ..results import FrameResult
from ..sources import gather
from ..writers import LIVE_FORMATS, get_writer, write_error
from . import flags
from .many import open_outputs, run_many

DEFAULT_WINDOW = 4.0  # seconds, unless the model records its own
DEFAULT_WINDOW_MODE = "decay"  # one model run per frame: half the CPU of "two"
HELP = "classify a camera, network stream or file continuously"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="SOURCE", nargs="*", help="[NAME=]SOURCE, one or more")
    p.add_argument(
        "--sources",
        action="append",
        metavar="FILE",
        help="read more sources from FILE, one [NAME=]SOURCE per line",
    )
    flags.add_model(p)
    flags.add_filters(p, top_k=3)
    p.add_argument(
        "--fps", type=flags.fps_value, help="frames per second fed to the model [the model's, 5]"
    )
    flags.add_window(p, default=DEFAULT_WINDOW, mode=DEFAULT_WINDOW_MODE)
    p.add_argument("--cumulative", action="store_true", help="no window: all since the start")
    p.add_argument("--headless", action="store_true", help="no window: print results instead")
    p.add_argument(
        "--format",
        choices=LIVE_FORMATS,
        help="printed format [table; jsonl with several sources]",
    )
    p.add_argument("--output", "-o", help="also append JSON Lines results and events to FILE")
    p.add_argument("--duration", type=float, metavar="SECONDS", help="stop after SECONDS")
    p.add_argument("--loop", action="store_true", help="loop a file source")
    flags.add_segments(p)
    flags.add_sinks(p)
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="with several sources: threads feeding the model [two per model copy; one copy "
        "per two cores]",
    )
    p.add_argument(
        "--decoders",
        type=int,
        metavar="N",
        help="with several sources: processes decoding them, 0 for threads in this one "
        "[one per 4 sources, at most one per core; 0 with --mosaic]",
    )
    p.add_argument(
        "--mosaic",
        action="store_true",
        help="with several sources: a window with a tile per source (where OpenCV has a GUI)",
    )
    p.add_argument(
        "--results",
        action="store_true",
        help="with several sources: print every result, not only segment events",
    )


def run(args: argparse.Namespace) -> int:
    specs = gather(args.source, args.sources)
    window = None if args.cumulative else flags.window_of(args, DEFAULT_WINDOW)
    args.window_mode = flags.window_mode_of(args, DEFAULT_WINDOW_MODE)
    if len(specs) > 1 or args.sources:
        return run_many(args, specs, window)
    args.source, args.name = specs[0].source, specs[0].name
    options = flags.classifier_options(args, window=window)
    segments = flags.segment_options(args)
    flags.check_output(args.output)
    pipeline = Pipeline(VideoClassifier.create_from_options(options), segments=segments)
    display = None if args.headless else _window(pipeline)
    with contextlib.ExitStack() as stack:
        sinks, sink = open_outputs(stack, args)
        if display is not None:
            stack.callback(display.close)
        out = _Output(args, sink, printing=display is None or sink is None, sinks=sinks)
        results = pipeline.live(
            args.source,
            args.fps,
            duration=args.duration,
            loop=args.loop,
            preview=None if display is None else display.show,
        )
        with contextlib.suppress(KeyboardInterrupt):
            for result in results:
                out.emit(result)
        out.emit(FrameResult(0.0, [], events=pipeline.finish()), final=True)
    s = pipeline.stats
    print(
        f"vidcls: {s.fed} {_plural(s.fed, 'frame')} classified of {s.captured} received in "
        f"{s.seconds:.1f} s, {s.reconnects} {_plural(s.reconnects, 'reconnect')}",
        file=sys.stderr,
    )
    return 0


def _window(pipeline: Pipeline):
    """The OpenCV window, or None (with a note) where OpenCV has no GUI or there is no display."""
    from ..display import LiveWindow

    try:
        return LiveWindow(on_reset=pipeline.reset)
    except VidclsError:
        print(
            "vidcls: note: no window here (OpenCV without a GUI, or no display); printing "
            "results instead (--headless says so; pip install opencv-python for a window)",
            file=sys.stderr,
        )
        return None


class _Output:
    """Results and events to the terminal (table or JSONL) and appended to ``-o`` (JSONL)."""

    def __init__(self, args: argparse.Namespace, sink, printing: bool, sinks=()) -> None:
        self.source, self.path, self.sink, self.printing = args.source, args.output, sink, printing
        self.sinks, self.name = sinks, args.name  # event sinks (webhooks, MQTT) get the name
        self.printed, self.logged = get_writer(args.format or "table"), get_writer("jsonl")

    def emit(self, result: FrameResult, final: bool = False) -> None:
        items = [] if final else [(self.printed.frame, self.logged.frame, result)]
        items += [(self.printed.event, self.logged.event, e) for e in result.events]
        for show, log, item in items:
            if self.sink is not None:
                try:
                    self.sink.write(log(item, self.source).encode("utf-8"))
                except OSError as e:  # disk full: say so and stop, the lines before are kept
                    raise write_error(e, self.path) from None
            if self.printing:
                sys.stdout.write(show(item, self.source))
        for event in result.events:
            for s in self.sinks:
                s.event(self.name, event)
        sys.stdout.flush()


def _plural(n: int, word: str) -> str:
    return word if n == 1 else word + "s"
