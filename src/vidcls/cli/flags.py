"""Flags shared by several commands, and the options built from them (in one place).

Each flag is the keyword of the same name in Python (``--top-k`` is ``top_k``), so
``ClassifierOptions(**classifier_kwargs(args))`` and friends need no renaming.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..errors import VidclsError
from ..options import (
    DEFAULT_MODEL,
    FITS,
    MAX_FPS,
    MIN_FPS,
    RESIZES,
    WINDOW_MODES,
    ClassifierOptions,
    SegmentOptions,
)

NATIVE = "native"  # the CLI's word for "every decoded frame" (fps 0 in Python)


def groups_value(text: str) -> int | str:
    """``--groups``: ``auto`` or a number of processes from 1 to 256."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        n = int(text)
    except ValueError:
        n = 0
    if not 1 <= n <= 256:
        raise argparse.ArgumentTypeError(f"'{text}' is not auto or a number from 1 to 256")
    return n


def fps_value(text: str) -> float:
    """``--fps``: a number from MIN_FPS to MAX_FPS, or ``native`` or 0 (every decoded
    frame), as in Python."""
    if text.lower() == NATIVE:
        return 0.0
    try:
        fps = float(text)
    except ValueError:
        fps = -1.0
    if not (fps == 0 or MIN_FPS <= fps <= MAX_FPS):
        raise argparse.ArgumentTypeError(
            f"expected a rate from {MIN_FPS:g} to {MAX_FPS:g}, or 'native' or 0 for every "
            f"frame, got {text!r}"
        )
    return fps


def add_output(p: argparse.ArgumentParser, help: str, required: bool = False) -> None:
    """``-o/--output``, what every command writes; ``--out`` is kept as a hidden alias for
    one release (``train`` and ``batch`` took it)."""
    p.add_argument("-o", "--output", metavar="FILE", help=help + (" (required)" * required))
    p.add_argument("--out", dest="output", help=argparse.SUPPRESS)
    if required:
        p.set_defaults(output_required=True)


def label_list(text: str) -> list[str]:
    """``--allow`` / ``--deny``: comma-separated labels."""
    return [s.strip() for s in text.split(",") if s.strip()]


def add_model(p: argparse.ArgumentParser, threads: int | None = 1, shown: str = "") -> None:
    """--model, --labels, --threads (default ``threads``, described as ``shown``)."""
    p.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help="zoo name (see `vidcls models`) or .tflite path [a0]",
    )
    p.add_argument(
        "--labels",
        help="label file, one class per line "
        "(default: embedded, beside the model, or Kinetics-600)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=threads,
        help=f"CPU threads for inference [{shown or threads}]",
    )


def add_filters(p: argparse.ArgumentParser, top_k: int = 5) -> None:
    """--top-k, --threshold, --allow, --deny."""
    p.add_argument(
        "--top-k", type=int, default=top_k, help=f"categories per result; 0 = all [{top_k}]"
    )
    p.add_argument("--threshold", type=float, default=0.0, help="minimum score to report [0]")
    p.add_argument("--allow", type=label_list, help="only these labels (comma-separated)")
    p.add_argument("--deny", type=label_list, help="never these labels (comma-separated)")


def add_preprocess(p: argparse.ArgumentParser) -> None:
    """--resize, --fit, --crop, and the hidden --backend."""
    p.add_argument(
        "--resize",
        choices=RESIZES,
        default="bilinear",
        help="bilinear: OpenCV, as the official example [default]; "
        "area: FFmpeg scales while converting (faster on large video)",
    )
    add_fit(p)
    p.add_argument(
        "--backend",
        choices=("auto", "compiled", "interpreter"),
        default="auto",
        help=argparse.SUPPRESS,
    )


def add_fit(p: argparse.ArgumentParser) -> None:
    """--fit and its shorthand --crop."""
    p.add_argument(
        "--fit",
        choices=FITS,
        help="how a picture of another shape meets the model's: squash (stretch, as the "
        "official example), crop (its centre), letterbox (whole, padded with black) "
        "[what a model trained by vidcls records, else squash]",
    )
    p.add_argument("--crop", action="store_true", help="the same as --fit crop")


def add_window(p: argparse.ArgumentParser, default: float | None = None, mode: str = "two") -> None:
    """--window SECONDS (default: the window a trained model records, else ``default``) and
    --window-mode (default ``mode``; ``two`` for a model that records its window)."""
    shown = f", else {default:g}" if default else ""
    p.add_argument(
        "--window",
        type=float,
        metavar="SECONDS",
        help="follow the content of long videos: predictions from about the last SECONDS of "
        "video instead of everything since the start "
        f"[the window a model trained by vidcls records{shown}]",
    )
    p.add_argument(
        "--window-mode",
        choices=WINDOW_MODES,
        default=None if mode != "two" else "two",
        help="how the window forgets: two = two staggered streams, exactly the last SECONDS/2 "
        "to SECONDS (two model runs per frame); decay = one stream whose older frames fade "
        "(one run per frame: half the CPU) "
        + ("[two]" if mode == "two" else f"[{mode}; two for a model trained by vidcls]"),
    )


def window_mode_of(args: argparse.Namespace, default: str) -> str:
    """``--window-mode``; else ``two`` for a model that records its window (it was trained on
    windows fresh from a zero state, which is what ``two`` feeds); else ``default``."""
    from ..classifier import model_window

    if args.window_mode is not None:
        return args.window_mode
    return "two" if model_window(args.model) is not None else default


def window_of(args: argparse.Namespace, default: float | None = None) -> float | None:
    """The window to classify with: ``--window``; else none with ``--cumulative``; else the
    model's recorded window; else ``default``."""
    from ..classifier import model_window

    if args.window is not None:
        return args.window
    if getattr(args, "cumulative", False):
        return None
    recorded = model_window(args.model)
    return default if recorded is None else recorded


def add_segments(p: argparse.ArgumentParser) -> None:
    """--enter, --exit, --min-duration, --smoothing."""
    d = SegmentOptions()
    g = p.add_argument_group("action segments")
    g.add_argument(
        "--enter", type=float, default=d.enter, help=f"probability opening a segment [{d.enter}]"
    )
    g.add_argument(
        "--exit", type=float, default=d.exit, help=f"probability below which it closes [{d.exit}]"
    )
    g.add_argument(
        "--min-duration",
        type=float,
        default=d.min_duration,
        help=f"shortest segment kept, s [{d.min_duration:g}]",
    )
    g.add_argument(
        "--smoothing",
        type=float,
        default=d.smoothing,
        help=f"smoothing time constant, s [{d.smoothing}]",
    )


def add_sinks(p: argparse.ArgumentParser) -> None:
    """--webhook URL and --mqtt URL (each repeatable), --mqtt-prefix, --mqtt-discovery."""
    g = p.add_argument_group("event sinks (segment starts and ends, delivered in the background)")
    g.add_argument(
        "--webhook",
        action="append",
        default=[],
        metavar="URL",
        help="POST each event as JSON to this http(s) URL, retried (repeatable)",
    )
    g.add_argument(
        "--mqtt",
        action="append",
        default=[],
        metavar="URL",
        help="publish events to the MQTT broker at mqtt://[user:pass@]host[:port][/prefix] "
        "(or mqtts://); topics <prefix>/<source>/event, action, status (repeatable)",
    )
    g.add_argument(
        "--mqtt-prefix", default="vidcls", metavar="PREFIX", help="MQTT topic prefix [vidcls]"
    )
    g.add_argument(
        "--mqtt-discovery",
        action="store_true",
        help="announce each source to Home Assistant (MQTT discovery) as an action sensor",
    )


def sinks_of(args: argparse.Namespace) -> list:
    """The event sinks the sink flags ask for, started."""
    from ..sinks import open_sinks

    return open_sinks(args.webhook, args.mqtt, args.mqtt_prefix, args.mqtt_discovery)


def classifier_options(args: argparse.Namespace, **overrides) -> ClassifierOptions:
    """ClassifierOptions from whichever of its fields the command has flags for."""
    fields = ClassifierOptions.__dataclass_fields__
    kwargs = {name: getattr(args, name) for name in fields if hasattr(args, name)}
    kwargs.update(overrides)
    return ClassifierOptions(**kwargs)


def segment_options(args: argparse.Namespace) -> SegmentOptions:
    """SegmentOptions from --enter, --exit, --min-duration, --smoothing."""
    return SegmentOptions(args.enter, args.exit, args.min_duration, args.smoothing)


def check_output(path: str | os.PathLike | None) -> None:
    """VidclsError, before any work, when ``path``'s folder does not exist or it is a folder."""
    if path is None:
        return
    folder = Path(os.path.abspath(path)).parent
    if not folder.is_dir():
        raise VidclsError("output folder does not exist", folder)
    if Path(path).is_dir():
        raise VidclsError("is a folder; name a file to write", path)
