"""Look after a folder of labelled clips (one subfolder per class) before training.
`check DIR`: clips per class, length, rate and size; unreadable files, classes with too few
clips, files in two classes, copies and near copies, short clips, classes far apart in size,
each with what to do. Exit code 1 when there are errors, 0 with warnings only."""

from __future__ import annotations

import argparse
import json

HELP = "check a folder of labelled clips before training"


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = sub.add_parser("check", help="what is wrong with the clips, with what to do")
    check.add_argument("data_dir", metavar="DIR", help="one subfolder of clips per class")
    check.add_argument(
        "--format", choices=("table", "json"), default="table", help="printed format [table]"
    )


def run(args: argparse.Namespace) -> int:
    from ..training.datacheck import check_dataset, exit_code

    report = check_dataset(args.data_dir)
    if args.format == "json":
        print(json.dumps(report.to_dict(), indent=1))
    else:
        print(report.table(), end="")
    return exit_code(report)
