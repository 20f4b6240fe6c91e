"""The ``vidcls`` command line: one module per command, registered one way.

Each command module has a docstring (its description), ``HELP`` (one line for the list of
commands), ``add_arguments(parser)`` and ``run(args) -> exit code``. Errors in the user's input
are a :class:`~vidcls.errors.VidclsError`: one line on stderr, exit code 2, no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from .. import __version__
from ..errors import OptionError, VidclsError
from . import suggest

COMMANDS = {  # name: one line for the list of commands (the module's HELP says the same)
    "classify": "classify video files",
    "live": "classify a camera, network stream or file continuously",
    "serve": "web app (live camera, files) and HTTP API",
    "users": "who may use vidcls serve: users, passwords, roles, tokens",
    "train": "train a model on new action classes",
    "evaluate": "measure a model's accuracy on labelled clips",
    "dataset": "make and check a folder of labelled clips for training",
    "batch": "classify many videos on all cores or a Ray cluster",
    "models": "list the model zoo",
    "bench": "measure speed, capacity and accuracy trade-offs",
}


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error: the problem and where the flags are listed, and the
    closest valid choice (command, ``--split`` value, ...) for a near-miss."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"vidcls: error: {message} (see {self.prog} --help)\n")

    def _check_value(self, action: argparse.Action, value: object) -> None:
        """argparse's check of a value against ``choices`` (commands too, 3.10 to 3.14)."""
        try:
            super()._check_value(action, value)
        except argparse.ArgumentError as e:
            hint = "" if "meant" in e.message else suggest.choice(value, action.choices or ())
            if not hint:
                raise
            raise argparse.ArgumentError(action, e.message + hint) from None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser for every command. Only the command ``argv`` names (all of them when it
    names none) has its module imported and its flags added: a command starts without
    loading the others."""
    parser = Parser(
        prog="vidcls", description="Streaming video classification with MoViNet on the CPU."
    )
    parser.add_argument("--version", action="version", version=f"vidcls {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    chosen = next((a for a in argv or () if a in COMMANDS), None)
    for name, help_line in COMMANDS.items():
        if chosen is not None and name != chosen:
            sub.add_parser(name, help=help_line)  # listed; its flags are added when chosen
            continue
        module = importlib.import_module(f".{name}", __name__)
        p = sub.add_parser(name, help=help_line, description=module.__doc__)
        module.add_arguments(p)
        p.set_defaults(run=module.run)
    return parser


def error(message: str) -> None:
    """Print one error line (newlines in file names included) on stderr."""
    text = " ".join(message.splitlines())
    print(f"vidcls: error: {text}", file=sys.stderr, flush=True)


class OneLine(logging.Formatter):
    """Each warning on one line, as :func:`error` prints errors: a line break in a file name
    (``a\nb.mp4``) must not start a line that does not begin with ``vidcls:``."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # a traceback stays as it is
        return " ".join(super().formatMessage(record).splitlines())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``vidcls`` command; returns its exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        command = suggest.command_parser(parser, args)
        hint = suggest.unknown_flags(unknown, suggest.flags_of(command))
        parser.exit(
            2,
            f"vidcls: error: unrecognized arguments: {' '.join(unknown)}{hint}"
            f" (see {command.prog} --help)\n",
        )
    if getattr(args, "output_required", False) and args.output is None:
        parser.exit(
            2, f"vidcls: error: -o/--output FILE is required (see vidcls {args.command} --help)\n"
        )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLine("vidcls: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    try:
        return args.run(args)
    except OptionError as e:
        error(e.as_flag())
        return 2
    except VidclsError as e:
        error(str(e))
        return 2
    except KeyboardInterrupt:
        error("interrupted")
        return 130
    except BrokenPipeError:  # `vidcls ... | head`: the reader has all it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # nothing more to flush at exit
        return 141
