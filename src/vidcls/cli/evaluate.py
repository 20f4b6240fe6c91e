"""Top-1, top-5, per-class precision and recall and the confusion matrix of a model on a folder
with one subfolder of clips per class (named as the model's labels). Each clip is classified
as `vidcls classify` classifies it; its prediction is the summary. A model vidcls trained
knows the clips it was trained on: the report says how many of the clips it saw, and
--split val evaluates only the others."""

from __future__ import annotations

import argparse
import importlib.util
import os

from ..errors import VidclsError
from ..writers import dumps, write_text
from . import flags
from .train import add_dataset_flags

HELP = "measure a model's accuracy on labelled clips"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("data_dir", metavar="DATA_DIR", help="one subfolder of clips per label")
    add_dataset_flags(p, training=False)
    p.add_argument(
        "--labels",
        help="label file, one class per line "
        "(default: embedded, beside the model, or Kinetics-600)",
    )
    p.add_argument(
        "--split",
        choices=("all", "val"),
        default="all",
        help="all clips, or those the model was not trained on: a model vidcls trained "
        "records its training clips (by content); for others, the part train holds out [all]",
    )
    p.add_argument("--format", choices=("table", "json"), default="table", help="[table]")
    flags.add_output(p, "write the JSON report to FILE")
    p.add_argument("--plot", metavar="OUT.png", help="draw the confusion matrix")


def run(args: argparse.Namespace) -> int:
    from ..training import evaluate, plot_confusion
    from ..training.progress import show_phase_lines

    check_outputs(args.output, args.plot)
    show_phase_lines()
    result = evaluate(
        args.data_dir,
        args.model,
        labels=args.labels,
        fps=args.fps,
        split=args.split,
        val_fraction=args.val_fraction,
        threads=args.threads,
    )
    doc = dumps(result.to_dict(), indent=2) + "\n"
    if args.output:
        write_text(args.output, doc)
    if args.plot:
        plot_confusion(result, args.plot)
    print(doc if args.format == "json" else result.table(), end="")
    return 0


def check_outputs(output: str | None, plot: str | None) -> None:
    """VidclsError before any work when an output cannot be written where it is asked for
    (missing folder, an existing folder in its place) or the plot cannot be drawn."""
    for out in (output, plot):
        flags.check_output(out)
        if out is not None and os.path.isdir(out):
            raise VidclsError("is a folder, not a file to write", out)
    if plot is not None and importlib.util.find_spec("matplotlib") is None:
        raise VidclsError("plots need matplotlib: pip install 'vidcls[plot]'")
