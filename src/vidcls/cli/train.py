"""Train a new classification head on a frozen stream model from a folder with one subfolder
of clips per class, and write a streaming .tflite (with its labels, a report and the confusion
matrix beside it)."""

from __future__ import annotations

import argparse
import sys

from .. import zoo
from ..options import FITS
from . import flags

HELP = "train a model on new action classes"


def add_dataset_flags(p: argparse.ArgumentParser, *, training: bool) -> None:
    """--model, --fps, --val-fraction, --threads: the flags train and evaluate share
    (``training``: --fps also takes ``auto``, its default)."""
    g = p.add_argument_group("model and data")
    g.add_argument(
        "--model",
        default=zoo.DEFAULT_MODEL,
        help="zoo name (see `vidcls models`) or .tflite path"
        + ("; the base, kept frozen [a0]" if training else " [a0]"),
    )
    if training:
        fps_help = "; 'auto': 5 when clips last 2 s or more, else every frame [auto]"
    else:
        fps_help = " [the model's rate: 5 for MoViNet, a trained model's own]"
    g.add_argument(
        "--fps",
        type=train_fps if training else flags.fps_value,
        default="auto" if training else None,
        help=f"frames per second fed, or 'native' for every frame{fps_help}",
    )
    if training:
        val_help = (
            "held out per class, from the end, when there are no train/ and val/ folders; "
            "0 fits the model on every clip, and cross-validation estimates its accuracy [0]"
        )
    else:
        val_help = (
            "with --split val, for a model that does not record its training clips (the "
            "official ones, fine-tunes from elsewhere): the part train --val-fraction held "
            "out [0.3]"
        )
    g.add_argument("--val-fraction", type=float, default=0.0 if training else None, help=val_help)
    if training:
        threads_help = "CPU threads: clips extracted at once, inference threads when verifying"
    else:
        threads_help = "CPU threads for inference"
    g.add_argument("--threads", type=int, default=2, help=f"{threads_help} [2]")


def train_fps(text: str) -> float | str:
    """``--fps`` of train: ``auto``, or a rate as everywhere (``native``: 0, every frame)."""
    return "auto" if text.lower() == "auto" else flags.fps_value(text)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("data_dir", metavar="DATA_DIR", help="one subfolder of clips per class")
    flags.add_output(p, "the .tflite to write", required=True)
    add_dataset_flags(p, training=True)
    g = p.add_argument_group("training")
    g.add_argument(
        "--views", type=int, default=8, help="clip + augmented views per training clip [8]"
    )
    g.add_argument(
        "--method",
        choices=("classifier", "head"),
        default="classifier",
        help="train the last conv alone, or both head convs (kept only where cross-validation "
        "prefers them) [classifier]",
    )
    g.add_argument(
        "--fit",
        choices=FITS,
        default="squash",
        help="how clips of another shape meet the model's: squash (stretch), crop (the "
        "centre), letterbox (whole, padded with black); recorded in the model [squash]",
    )
    g.add_argument("--l2", type=float, help="L2 strength (default: chosen by cross-validation)")
    g.add_argument("--seed", type=int, default=0, help="augmentation seed [0]")
    g.add_argument("--epochs", type=int, default=500, help="L-BFGS iterations at most [500]")
    g.add_argument(
        "--window",
        type=float,
        default=4.0,
        metavar="SECONDS",
        help="also train on each SECONDS of longer clips, as classify --window and live see "
        "them; recorded in the model as its default window; 0: whole clips only [4]",
    )
    g.add_argument(
        "--cache", help="feature cache folder [features/ in the model cache, $VIDCLS_CACHE]"
    )


def run(args: argparse.Namespace) -> int:
    from ..training import TrainOptions, train, write_report
    from ..training.progress import Progress, show_phase_lines

    show_phase_lines()
    names = TrainOptions.__dataclass_fields__
    options = TrainOptions(**{name: getattr(args, name) for name in names})
    result = train(args.data_dir, args.output, options)
    report_name = result.model_path.with_suffix(".report.md").name
    with Progress().phase("report", f"writing {report_name}", "report written", 1, "file") as p:
        report = write_report(result)
        p.advance()
    print(f"wrote {result.model_path} ({len(result.classes)} classes) and {result.labels_path}")
    print(f"training accuracy    {result.train_accuracy:.1%}")
    if result.cv_accuracy is not None:
        print(f"cross-validated      {result.cv_accuracy:.1%} (expected on new clips like these)")
    if result.val_accuracy_exported is not None:
        print(f"validation accuracy  {result.val_accuracy_exported:.1%} (exported model)")
    if result.int8 is not None:
        c = result.int8
        print(
            f"int8 check           agrees with the float head on {c.agreement:.1%} of "
            f"{c.clips} {c.part} clips (top-1 {c.int8_accuracy:.1%} vs {c.float_accuracy:.1%})"
        )
        if c.warning():
            print(f"vidcls: warning: {c.warning()}", file=sys.stderr)
    print(f"report {report}  ({result.seconds:.0f} s)")
    return 0
