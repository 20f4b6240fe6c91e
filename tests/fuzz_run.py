"""Running one ``vidcls`` command for ``tests/fuzz.py`` and judging how it ended.

Two ways, judged alike: a fresh ``python -m vidcls.cli`` process per case, or a long-lived
worker process that runs cases in-process (``vidcls.cli.main``) with fds 1 and 2 redirected
to files, so native output is captured too. When the worker dies or hangs, the caller re-runs
the case in a fresh process to confirm (see ``fuzz.py``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

CLI = [sys.executable, "-m", "vidcls.cli"]
WORKER = [sys.executable, str(Path(__file__).resolve()), "--worker"]


@dataclass
class Outcome:
    """How one run ended: ``rc`` None for a timeout; ``via`` is "process" or "worker"."""

    rc: int | None
    stdout: str
    stderr: str
    seconds: float
    via: str = "process"
    note: str = ""  # worker: why it needs confirming in a fresh process ("" if not)
    pid: int = 0  # process: its pid (and process group)


def judge(o: Outcome) -> str | None:
    """None if the run kept the promise, else its failure category.

    Promise: exit 0 with a JSON document on stdout, or exit 2 with exactly one stderr line
    starting ``vidcls: error:``; never a traceback, a signal or a hang.
    """
    if o.rc is None:
        return "hang"
    if o.rc < 0 or o.rc in (134, 139):
        num = -o.rc if o.rc < 0 else o.rc - 128
        return f"signal:{signal.Signals(num).name}"
    if "Traceback (most recent call last)" in o.stderr:
        return f"traceback:{exception_type(o.stderr)}"
    if o.rc == 0:
        try:
            json.loads(o.stdout)
        except ValueError:
            return "bad-json"
        return None
    if o.rc == 2:
        lines = o.stderr.splitlines()
        if len(lines) == 1 and lines[0].startswith("vidcls: error: "):
            return None
        return "bad-stderr"
    return f"exit:{o.rc}"


def exception_type(stderr: str) -> str:
    """The type of the last exception in a traceback (``ValueError``, ``av.error.OSError``)."""
    for line in reversed(stderr.splitlines()):
        m = re.match(r"([A-Za-z_][\w.]*)(:|$)", line)
        if m and not line.startswith(" "):
            return m.group(1)
    return "?"


def signature(category: str, o: Outcome) -> str:
    """What makes two failures the same bug: the category and, for a traceback, the innermost
    frame and the start of the exception's message; numbers and quoted names blanked out."""
    lines = [x for x in o.stderr.splitlines() if x.strip()]
    detail = lines[-1] if lines else ""
    frames = [i for i, x in enumerate(lines) if x.lstrip().startswith('File "')]
    if category.startswith("traceback") and frames:
        where = re.sub(r'.*File ".*?([^/]+)", line \d+, in (\S+).*', r"\1:\2", lines[frames[-1]])
        message = next((x for x in lines[frames[-1] + 1 :] if not x.startswith(" ")), "")
        detail = f"at {where}: {_blank(message.split(': ', 1)[-1])[:60]}"
    return f"{category} {_blank(detail)[:160]}".strip()


def _blank(text: str) -> str:
    text = re.sub(r"'[^']*'|\"[^\"]*\"|/\S+", "_", text)
    return re.sub(r"-?(0x[0-9a-f]+|\d+)", "N", text)


def excerpt(stderr: str, n: int = 4) -> list[str]:
    """The lines of ``stderr`` that say what happened: for a Python traceback its innermost
    vidcls frame and last lines; for a native crash's faulthandler dump (most recent call
    first) the error and the first frames; else the last ``n`` lines."""
    lines = [x for x in stderr.splitlines() if x.strip()]
    fatal = [i for i, x in enumerate(lines) if x.startswith("Fatal Python error")]
    if fatal:
        frames = [x for x in lines[fatal[-1] :] if x.lstrip().startswith('File "')]
        ours = [x for x in frames[n:] if "/vidcls/" in x][:1]  # where vidcls was, if deeper
        return [lines[fatal[-1]], *frames[:n], *ours]
    ours = [x for x in lines if x.lstrip().startswith('File "') and "/vidcls/" in x]
    last = lines[-n:]
    return ([ours[-1]] if ours and ours[-1] not in last else []) + last


def run_process(
    argv: list[str],
    env: dict[str, str],
    timeout: float,
    *,
    cwd: str | os.PathLike | None = None,
    prefix: Sequence[str] = (),
) -> Outcome:
    """``python -m vidcls.cli ARGV`` in a fresh process (its own process group), in ``cwd``,
    started through ``prefix`` (a command that execs the rest, as ``prlimit``)."""
    start = time.monotonic()
    p = subprocess.Popen(
        [*prefix, *CLI, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        stdin=subprocess.DEVNULL, cwd=cwd, start_new_session=True,
    )  # fmt: skip
    try:
        out, err = p.communicate(timeout=timeout)
        rc = p.returncode
    except subprocess.TimeoutExpired:  # SIGABRT first: faulthandler prints where it hung
        os.kill(p.pid, signal.SIGABRT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(5)
        with contextlib.suppress(ProcessLookupError):  # the group may be gone already
            os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        rc = None
    text = (out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))
    return Outcome(rc, *text, time.monotonic() - start, pid=p.pid)


class Worker:
    """A long-lived process running cases in-process, restarted when it dies or hangs."""

    def __init__(self, env: dict[str, str], log: Path, recycle: int = 200) -> None:
        self.env, self.log, self.recycle = env, log, recycle
        self.proc: subprocess.Popen | None = None
        self.served = 0
        self.pid = 0  # of the process that ran the last case

    def _start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                WORKER, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                env=self.env, start_new_session=True,
            )  # fmt: skip
        self.served, self.pid = 0, self.proc.pid

    def stop(self) -> None:
        """End the worker process (it is ours: killed by its id)."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            for pipe in (self.proc.stdin, self.proc.stdout):
                with contextlib.suppress(OSError):
                    pipe.close()
            self.proc = None

    def run(self, argv: list[str], capture: Path, timeout: float) -> Outcome:
        """Run one case; ``note`` is set when it must be confirmed in a fresh process."""
        if self.proc is None or self.proc.poll() is not None or self.served >= self.recycle:
            self.stop()
            self._start()
        out, err = capture.with_suffix(".out"), capture.with_suffix(".err")
        for stale in (out, err):
            stale.unlink(missing_ok=True)
        request = {"argv": argv, "out": str(out), "err": str(err)}
        start = time.monotonic()
        try:
            self.proc.stdin.write(json.dumps(request).encode() + b"\n")
            self.proc.stdin.flush()
        except BrokenPipeError:  # it died since the poll above
            pass
        self.served += 1
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else b""
        elapsed = time.monotonic() - start
        read = (_read(out), _read(err))
        if not line:
            hung = not ready
            rc = None if hung else self.proc.wait()
            self.stop()
            return Outcome(rc, *read, elapsed, "worker", "worker hung" if hung else "worker died")
        reply = json.loads(line)
        note = ""
        if reply["threads"]:
            note = f"threads left running: {', '.join(reply['threads'])}"
            self.stop()
        return Outcome(reply["rc"], *read, elapsed, "worker", note)


def _read(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8", "replace")
    except OSError:
        return ""


# -- inside the worker -------------------------------------------------------------------------


def _run_in_process(argv: list[str], out: str, err: str) -> int:
    """``vidcls.cli.main(argv)`` with fds 1 and 2 in files; the exit code Python would give."""
    import traceback

    from vidcls.cli import main

    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(out, "wb") as fo, open(err, "wb") as fe:
        os.dup2(fo.fileno(), 1)
        os.dup2(fe.fileno(), 2)
        try:
            rc = main(argv)
        except SystemExit as e:  # argparse, sys.exit: as the interpreter reports them
            rc = e.code if isinstance(e.code, int) else 0 if e.code is None else 1
            if not isinstance(e.code, int | None):
                print(e.code, file=sys.stderr)
        except BaseException:  # noqa: BLE001 - printed as the interpreter would
            traceback.print_exc()
            rc = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
    return rc if isinstance(rc, int) else 0


def worker_main() -> None:
    """Serve requests (one JSON line each on stdin) until stdin closes."""
    import vidcls.cli  # noqa: F401 - imported once, before the first case

    replies = os.fdopen(os.dup(1), "w")
    for line in sys.stdin:
        request = json.loads(line)
        rc = _run_in_process(request["argv"], request["out"], request["err"])
        alive = [t.name for t in threading.enumerate() if not t.daemon and t.is_alive()]
        main = threading.main_thread().name
        replies.write(json.dumps({"rc": rc, "threads": [n for n in alive if n != main]}) + "\n")
        replies.flush()


if __name__ == "__main__" and sys.argv[1:] == ["--worker"]:
    worker_main()
