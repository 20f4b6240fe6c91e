"""Classify live sources continuously: the freshest frame at the model's frame rate.
SOURCE: a camera index (0), a device (/dev/video0), an rtsp://, rtmp://, http(s)://, udp://,
tcp:// or srt:// URL, or a file played at its real speed, optionally named (door=rtsp://...).
Several sources (or --sources FILE) run in one process on one model, printing JSON Lines
events. Network sources that drop are reopened with backoff. In the window: q quits, r resets.
Ctrl-C closes open segments, flushes every output and exits with 130."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys

from ..errors import OptionError, VidclsError
from ..writers import LIVE_FORMATS
from . import flags

DEFAULT_WINDOW = 4.0  # seconds, unless the model records its own
DEFAULT_WINDOW_MODE = "decay"  # one model run per frame: half the CPU of "two"
SINK_TIMEOUT = 5.0  # seconds at exit for the sinks to deliver what is queued
HELP = "classify a camera, network stream or file continuously"
SOME_FAILED = 3  # the exit code when some cameras could not be opened and the others ran
SHOWN_NAMES = 5  # cameras named in the closing line; then "and N more"
FLAG_DEFAULTS = (  # flags whose values a config file's keys replace
    *("model", "labels", "threads", "top_k", "threshold", "allow", "deny", "fit"),
    *("window", "cumulative", "window_mode", "fps"),
    *("enter", "exit", "min_duration", "smoothing"),
)
EPILOG = (
    "exit codes: 0 every source ran (to its end, --duration, or q in the window); 2 bad "
    "input, or no source could be opened; "
    f"{SOME_FAILED} some of several sources (cameras) could not be opened or gave no frame: "
    "each is named on stderr, the others ran to the end; 130 stopped with Ctrl-C."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = EPILOG
    p.add_argument("source", metavar="SOURCE", nargs="*", help="[NAME=]SOURCE, one or more")
    p.add_argument(
        "--sources",
        action="append",
        metavar="FILE",
        help="read more sources from FILE, one [NAME=]SOURCE per line",
    )
    p.add_argument(
        "--config",
        metavar="FILE",
        help="cameras, zones, filters, sinks and clips from a YAML file (instead of SOURCE); "
        "sink flags add to its sinks",
    )
    flags.add_model(p)
    flags.add_filters(p, top_k=3)
    p.add_argument(
        "--fps", type=flags.fps_value, help="frames per second fed to the model [the model's, 5]"
    )
    flags.add_window(p, default=DEFAULT_WINDOW, mode=DEFAULT_WINDOW_MODE)
    flags.add_fit(p)
    p.add_argument("--cumulative", action="store_true", help="no window: all since the start")
    p.add_argument("--headless", action="store_true", help="no window: print results instead")
    p.add_argument(
        "--format",
        choices=LIVE_FORMATS,
        help="printed format [table for one source; jsonl for several]",
    )
    flags.add_output(p, "also append JSON Lines results and events to FILE")
    p.add_argument("--duration", type=float, metavar="SECONDS", help="stop after SECONDS")
    p.add_argument("--loop", action="store_true", help="loop file sources")
    p.add_argument(
        "--replay",
        action="store_true",
        help="play file sources on a virtual clock, as fast as the CPU goes: every frame the "
        "model's rate asks for is fed (none dropped for want of speed) and every run gives the "
        "same results, on any machine (trying a config, zones or rules on recordings); "
        "--duration counts video seconds",
    )
    flags.add_segments(p)
    flags.add_sinks(p)
    _add_groups(p)
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
    _add_events(p)


def _add_groups(p: argparse.ArgumentParser) -> None:
    """--workers, --decoders, --groups and --ray: where the cameras run."""
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="threads feeding the model [two per model copy; one copy per two cores]",
    )
    p.add_argument(
        "--decoders",
        type=int,
        metavar="N",
        help="processes decoding the sources, 0 for threads in this one "
        "[one per 4 sources, at most one per core]",
    )
    p.add_argument(
        "--groups",
        type=flags.groups_value,
        metavar="N|auto",
        help="processes the cameras are shared among, each with its own model, so inference "
        "runs on every core; auto: as many as the measured cameras per group (vidcls bench "
        "--streams) need, at most one per core [the config's groups:, else auto]",
    )
    p.add_argument(
        "--ray",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help="run the groups as Ray actors: on a Ray started here, or on the cluster at ADDRESS "
        "(host:6379 or ray://host:10001); a group lost with its node starts again on another",
    )


def _add_events(p: argparse.ArgumentParser) -> None:
    """--zone, --whole, and the event clips' flags."""
    z = p.add_argument_group("zones")
    z.add_argument(
        "--zone",
        action="append",
        type=_zone,
        metavar="NAME=X1,Y1,X2,Y2",
        help="classify this rectangle of each source (fractions of the frame, 0,0 top left) "
        "as a stream of its own; repeat for more zones",
    )
    z.add_argument("--whole", action="store_true", help="with --zone: classify the whole frame too")
    g = p.add_argument_group("event clips and snapshots")
    g.add_argument(
        "--clips",
        metavar="DIR",
        help="write DIR/<source>/<start>_<label>.mp4 (the stream's own packets, not re-encoded) "
        "and .jpg (the best moment) for each segment; the end event names them",
    )
    g.add_argument("--pre-roll", type=float, default=5.0, metavar="S", help="seconds before [5]")
    g.add_argument("--post-roll", type=float, default=3.0, metavar="S", help="seconds after [3]")
    g.add_argument(
        "--max-clip", type=float, default=120.0, metavar="S", help="longest clip, seconds [120]"
    )
    g.add_argument("--keep-days", type=float, metavar="D", help="delete clips older than D days")
    g.add_argument(
        "--keep-gb", type=float, metavar="G", help="delete the oldest clips past G gigabytes"
    )


def run(args: argparse.Namespace) -> int:
    from ..live.outputs import JsonLinesFile, Outputs, Printer

    plan = _plan(args)
    cameras = len(plan.specs)
    many = cameras > 1 or bool(args.sources) or bool(args.zone)
    missing: list[str] = []
    if cameras > 1:  # the ones that cannot be opened are named; the others run
        missing = _reachable(plan, args.config)
    flags.check_output(args.output)
    classifier = plan.load()
    fmt = args.format or ("jsonl" if many else "table")
    outputs = Outputs()
    watch = None
    with contextlib.ExitStack() as stack:
        stack.callback(outputs.close, SINK_TIMEOUT)  # last: after the closing events
        display = _display(args, [s.name for s in plan.specs], many)
        printing = display is None or many
        if printing:
            outputs.add(Printer(fmt, results=args.results or not many, prefix=many))
        if args.output:
            outputs.add(JsonLinesFile(args.output))
        for sink in plan.sinks.open():
            outputs.add(sink)
        if display is not None:
            outputs.add(display)
        watch = plan.engine(classifier, outputs, single=display is not None)
        if display is not None:
            display.on_reset = watch.reset
        try:
            watch.run(args.duration, display)
        except KeyboardInterrupt:  # stopped, every output flushed: say how it went, exit 130
            _report(watch)
            raise
    if not many:
        failed = next(iter(watch.sources.values())).error
        if failed is not None and not watch.stats()[0].fed:
            raise failed  # the only source never gave a frame: an error, as for a bad file
    _report(watch)
    return _exit_code([*missing, *watch.unopened()], cameras, args.config)


def _plan(args: argparse.Namespace):
    """What to run: the --config file's cameras under the flags, or the SOURCE arguments
    with the flags (see :mod:`vidcls.live.build`)."""
    from ..live.build import Plan, Sinks, classifier_options, from_config
    from ..live.sources import gather

    defaults = {k: getattr(args, k) for k in FLAG_DEFAULTS}
    if args.config:
        if args.source or args.sources:
            raise VidclsError("sources come from the config file: drop SOURCE and --sources")
        from ..config import load_config

        plan = from_config(
            load_config(args.config),
            defaults,
            loop=args.loop,
            replay=args.replay,
            webhooks=args.webhook,
            mqtt=args.mqtt,
            mqtt_prefix=args.mqtt_prefix,
            mqtt_discovery=args.mqtt_discovery,
            workers=args.workers,
            decoders=args.decoders,
            groups=args.groups,
            zones=args.zone,
            whole=args.whole,
            ray=args.ray,
        )
        if plan.clips is None:
            plan.clips = _clip_options(args)
        return plan
    specs = gather(args.source, args.sources)
    if args.zone:
        specs = [dataclasses.replace(s, zones=tuple(args.zone), whole=args.whole) for s in specs]
    return Plan(
        classifier_options(defaults),
        specs,
        segments=flags.segment_options(args),
        fps=args.fps,
        loop=args.loop,
        replay=args.replay,
        workers=args.workers,
        decoders=args.decoders,
        clips=_clip_options(args),
        sinks=Sinks(args.webhook, args.mqtt, args.mqtt_prefix, args.mqtt_discovery),
        groups=args.groups,
        ray=args.ray,
    )


def _reachable(plan, config: str | None) -> list[str]:
    """Keep the cameras whose file or device exists; the names of the others, each an error
    line (the first few, then how many more); none left: one error line."""
    from ..live.sources import shown_problems

    problems = plan.reachable()
    where = f"{config}: " if config else ""
    for line in shown_problems(problems):
        print(f"vidcls: error: {where}{line}", file=sys.stderr)
    return list(problems)


def _exit_code(unopened: list[str], cameras: int, config: str | None) -> int:
    """0 when every camera was opened; else a closing error line naming those that were not
    and SOME_FAILED, or a VidclsError when none was."""
    if not unopened:
        return 0
    names = ", ".join(unopened[:SHOWN_NAMES])
    if len(unopened) > SHOWN_NAMES:
        names += f" and {len(unopened) - SHOWN_NAMES} more"
    if len(unopened) >= cameras:
        raise VidclsError(f"no camera could be opened ({names})", config)
    where = f"{config}: " if config else ""
    print(
        f"vidcls: error: {where}{len(unopened)} of {cameras} cameras could not be opened "
        f"({names}); the others ran (exit code {SOME_FAILED})",
        file=sys.stderr,
    )
    return SOME_FAILED


def _zone(text: str):
    """``--zone``: NAME=x1,y1,x2,y2."""
    from ..live.sources import parse_zone

    try:
        return parse_zone(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _clip_options(args: argparse.Namespace):
    """ClipOptions from --clips and friends (None without --clips); a folder that cannot be
    made is an error before anything starts."""
    if not args.clips:
        return None
    from ..live.clips import ClipOptions, make_folder

    make_folder(args.clips)
    try:
        return ClipOptions(
            args.clips,
            pre_roll=args.pre_roll,
            post_roll=args.post_roll,
            max_clip=args.max_clip,
            keep_days=args.keep_days,
            keep_gb=args.keep_gb,
        )
    except ValueError as e:
        name = str(e).split()[0]
        raise OptionError(name, str(e)[len(name) + 1 :]) from None


def _report(watch) -> None:
    """A line per source on stderr: results, rate, drops, reconnects, latency, error."""
    for s in watch.stats():
        print(f"vidcls: {s.line()}", file=sys.stderr)


def _display(args: argparse.Namespace, names: list[str], many: bool):
    """The window asked for (one source without --headless; --mosaic), or None (with a note
    where OpenCV has no GUI or there is no display)."""
    if (many and not args.mosaic) or (not many and args.headless):
        return None
    from ..live.display import LiveWindow, Mosaic

    try:
        return Mosaic(names).open() if many else LiveWindow()
    except VidclsError:
        instead = "events only" if many else "results instead (--headless says so)"
        print(
            f"vidcls: note: no window here (OpenCV without a GUI, or no display); printing "
            f"{instead}; pip install opencv-python for a window",
            file=sys.stderr,
        )
        return None
