"""``vidcls live`` with several sources: one process, one model, JSON Lines events."""

from __future__ import annotations

import argparse
import contextlib
import sys

from ..classifier import VideoClassifier
from ..errors import VidclsError
from ..results import FrameResult
from ..sinks import close_all
from ..sources import SourceSpec
from ..watch import Watch
from ..writers import get_writer, write_error
from . import flags

SINK_TIMEOUT = 5.0  # seconds at exit for the sinks to deliver what is queued


def run_many(args: argparse.Namespace, specs: list[SourceSpec], window: float | None) -> int:
    """Watch every source until they end, ``--duration`` or Ctrl-C; events to stdout, ``-o``
    and the sinks; a line per source on stderr at the end."""
    options = flags.classifier_options(args, window=window)
    segments = flags.segment_options(args)
    flags.check_output(args.output)
    classifier = VideoClassifier.create_from_options(options)
    with contextlib.ExitStack() as stack:
        sinks, log = open_outputs(stack, args)
        out = _Output(args, log, sinks)
        watch = Watch(
            classifier,
            specs,
            fps=args.fps,
            segments=segments,
            loop=args.loop,
            workers=args.workers,
            decoders=0 if args.mosaic else args.decoders,
            on_status=out.status,
        )
        mosaic = _mosaic(args, specs)
        if mosaic is not None:
            stack.callback(mosaic.close)
            out.mosaic = mosaic
        with contextlib.suppress(KeyboardInterrupt):
            watch.run(out.emit, args.duration, None if mosaic is None else mosaic.show)
    for report in watch.reports():
        print(f"vidcls: {report.line()}", file=sys.stderr)
    return 0


def open_outputs(stack: contextlib.ExitStack, args: argparse.Namespace) -> tuple[list, object]:
    """The event sinks (closed last, after the final events) and ``-o`` opened to append
    line by line (None without it)."""
    sinks = flags.sinks_of(args)
    stack.callback(close_all, sinks, SINK_TIMEOUT)
    if not args.output:
        return sinks, None
    try:
        return sinks, stack.enter_context(open(args.output, "ab", buffering=0))
    except OSError as e:
        raise write_error(e, args.output) from None


def _mosaic(args: argparse.Namespace, specs: list[SourceSpec]):
    """The mosaic window with ``--mosaic``, or None (with a note where there can be none)."""
    if not args.mosaic:
        return None
    from ..display import Mosaic

    try:
        return Mosaic([s.name for s in specs]).open()
    except VidclsError:
        print(
            "vidcls: note: no window here (OpenCV without a GUI, or no display); printing "
            "events only (pip install opencv-python for a window)",
            file=sys.stderr,
        )
        return None


class _Output:
    """Each result and event to stdout (events only, unless ``--results``), ``-o`` (both, as
    JSON Lines) and every event sink."""

    def __init__(self, args: argparse.Namespace, log, sinks: list) -> None:
        self.path, self.log, self.sinks = args.output, log, sinks
        fmt = args.format or "jsonl"
        self.printed, self.logged = get_writer(fmt), get_writer("jsonl")
        self.prefix = fmt == "table"  # table lines do not name their source: prefix it
        self.results = args.results
        self.mosaic = None

    def emit(self, name: str, result: FrameResult) -> None:
        lines = []
        if result.top:  # an end-of-stream item carries events only
            lines.append((self.results, self.printed.frame, self.logged.frame, result))
        lines += [(True, self.printed.event, self.logged.event, e) for e in result.events]
        for printing, show, log, item in lines:
            if self.log is not None:
                try:
                    self.log.write(log(item, name).encode("utf-8"))
                except OSError as e:  # disk full: say so and stop, the lines before are kept
                    raise write_error(e, self.path) from None
            if printing:
                text = show(item, name)
                sys.stdout.write(f"[{name}] {text}" if self.prefix else text)
        if self.mosaic is not None:
            self.mosaic.update(name, result)
        for event in result.events:
            for sink in self.sinks:
                sink.event(name, event)
        sys.stdout.flush()

    def status(self, name: str, online: bool) -> None:
        for sink in self.sinks:
            sink.status(name, online)
