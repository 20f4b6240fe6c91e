"""Running ``vidcls`` in the test's own process: for checks whose subject is not the process
(an option refused with one line, say), in files where the same command and flags also run as
a real subprocess (:func:`cli_run.run`). Saves starting Python and importing vidcls again."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest


def run_here(capfd: pytest.CaptureFixture, *args: object) -> subprocess.CompletedProcess:
    """``vidcls ARGS`` as :func:`cli_run.run` reports it, run by ``vidcls.cli.main`` here.

    Output is read at file descriptors 1 and 2 (``capfd``), so what native code prints there
    counts too; log warnings are printed as the command prints them; the exit code is the one
    Python gives (``SystemExit`` included). An exception ``main`` lets out is raised, failing
    the test as a traceback on stderr would. The environment is the test's (conftest's cache
    and mirror; use ``monkeypatch`` for more), without ``VIDCLS_VERBOSE`` as in :func:`run`.
    """
    from vidcls.cli import main

    argv = [str(a) for a in args]
    root = logging.getLogger()
    handlers = list(root.handlers)
    logging.getLogger("vidcls")  # (train, evaluate, dataset turn its phase lines on)
    loggers = [root, *logging.root.manager.loggerDict.values()]
    levels = {x: x.level for x in loggers if isinstance(x, logging.Logger)}  # put back after
    console = logging.StreamHandler(sys.stderr)  # main's logging.basicConfig, in a subprocess
    console.setFormatter(logging.Formatter("vidcls: %(message)s"))
    verbose = os.environ.pop("VIDCLS_VERBOSE", None)
    capfd.readouterr()  # what the test printed before is not the command's
    root.addHandler(console)
    root.setLevel(logging.WARNING)
    try:
        code = main(argv)
    except SystemExit as e:  # argparse, --help, sys.exit: as the interpreter reports them
        code = e.code if isinstance(e.code, int) else 0 if e.code is None else 1
        if not isinstance(e.code, int | None):
            print(e.code, file=sys.stderr)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        root.handlers[:] = handlers  # main's basicConfig too, when there were none
        for logger, level in levels.items():
            logger.setLevel(level)
        if verbose is not None:
            os.environ["VIDCLS_VERBOSE"] = verbose
    out, err = capfd.readouterr()
    return subprocess.CompletedProcess(["vidcls", *argv], code, out, err)
