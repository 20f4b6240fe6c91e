"""Make and look after a folder of labelled clips (one subfolder per class) before training.
`check DIR`: clips per class, length, rate and size; unreadable files, classes with too few
clips, files in two classes, copies and near copies, short clips, classes far apart in size,
each with what to do. Exit code 1 when there are errors, 0 with warnings only.
`cut VIDEO... --annotations FILE -o DIR`: one clip per annotation, as DIR/<label>/<clip>.mp4.
`import CLIPS -o DIR`: the event clips `vidcls live --clips` recorded, into DIR/unlabelled/
(every file checked first; those that are not readable videos are named and skipped)."""

from __future__ import annotations

import argparse
import json
import sys

from . import flags

HELP = "make and check a folder of labelled clips for training"


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = sub.add_parser("check", help="what is wrong with the clips, with what to do")
    check.add_argument("data_dir", metavar="DIR", help="one subfolder of clips per class")
    check.add_argument(
        "--format", choices=("table", "json"), default="table", help="printed format [table]"
    )
    cut = sub.add_parser("cut", help="cut labelled clips out of long videos by annotations")
    cut.add_argument("videos", nargs="+", metavar="VIDEO", help="the long videos")
    cut.add_argument(
        "--annotations",
        required=True,
        metavar="FILE",
        help="CSV video,start,end,label (seconds), or the JSON of classify --segments",
    )
    flags.add_output(cut, "the dataset folder: one subfolder per label", required=True)
    cut.add_argument(
        "--copy",
        action="store_true",
        help="never re-encode: each clip from the keyframe at or before its start "
        "(may start up to one GOP early)",
    )
    imp = sub.add_parser("import", help="event clips of `vidcls live --clips`, to label")
    imp.add_argument("clips", metavar="CLIPS", help="the folder vidcls live --clips wrote")
    flags.add_output(imp, "the dataset folder; clips go to its unlabelled/", required=True)


def run(args: argparse.Namespace) -> int:
    if args.action == "cut":
        return _cut(args)
    if args.action == "import":
        return _import(args)
    from ..training.datacheck import check_dataset, exit_code

    report = check_dataset(args.data_dir)
    if args.format == "json":
        print(json.dumps(report.to_dict(), indent=1))
    else:
        print(report.table(), end="")
    return exit_code(report)


def _cut(args: argparse.Namespace) -> int:
    from ..training.collect import cut_annotations, read_annotations
    from ..training.progress import show_phase_lines

    show_phase_lines()
    annotations = read_annotations(args.annotations, args.videos)
    cuts = cut_annotations(annotations, args.output, copy=args.copy)
    labels = sorted({a.label for a in annotations})
    print(f"wrote {len(cuts)} clips of {len(labels)} labels into {args.output}")
    return 0


def _import(args: argparse.Namespace) -> int:
    from ..training.dataset import UNLABELLED
    from ..training.importing import import_events

    done = import_events(args.clips, args.output)
    for note in done.skipped:
        print(f"vidcls: skipped {note}", file=sys.stderr)
    where = f"{args.output}/{UNLABELLED}"
    skipped = f"; {len(done.skipped)} skipped" if done.skipped else ""
    print(
        f"imported {len(done.copied)} clips into {where} "
        f"({len(done.present)} were already there{skipped})"
    )
    return 0
