"""The inside of a group process (see :mod:`.groups`): its share of the cameras built as one
process builds them all (:meth:`vidcls.live.build.Plan.watch`), everything it hands its
outputs shipped to the parent in batches, and the parent's commands obeyed.

Messages to the parent, a list at a time over one pipe: ``("r", view, result, sent)``,
``("e", view, event, sent)``, ``("s", view, online, sent)`` (``sent``: ``time.monotonic()``
when the output had it, the same clock in every process), ``("reply", ask, value)``,
``("done", stats, unopened)``, ``("error", message)`` (the group could not start) and, every
:data:`REPORT` seconds, ``("c", cpu, pid, at)`` (the process's CPU seconds so far at its
monotonic ``at``: its load, :mod:`.status`).
Commands from the parent: ``("stop",)``, ``("switch", ask, model)``, ``("record", ask, view,
seconds, path)`` and ``("reset", view)``. A result is shipped without its probabilities.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import threading
import time

from ..errors import VidclsError
from .decoders import exit_with
from .outputs import Output

log = logging.getLogger("vidcls")
BATCH = 0.005  # seconds a message may wait for others to go with it
MOST = 20_000  # messages waiting at most; then the engine waits (a parent that lags)
REPORT = 2.0  # seconds between the group's reports of its CPU time


class Shipper(Output):
    """An output that sends everything to the parent over ``conn``, from a thread of its
    own (the only writer of the pipe), a batch at a time."""

    def __init__(self, conn) -> None:
        self.conn = conn
        self._items: list[tuple] = []
        self._cond = threading.Condition()
        self._closed = False
        self.broken = False
        self._thread = threading.Thread(target=self._send, name="vidcls-shipper", daemon=True)
        self._thread.start()

    def put(self, item: tuple) -> None:
        """Ship ``item`` with the next batch."""
        with self._cond:
            while len(self._items) >= MOST and not self.broken:
                self._cond.wait(0.1)
            self._items.append(item)
            self._cond.notify_all()

    def result(self, source, result) -> None:
        result.probabilities = None  # nobody past the group needs them
        if result.events:
            result.events = [_as_now(e) for e in result.events]
        self.put(("r", source, result, time.monotonic()))

    def event(self, source, event) -> None:
        self.put(("e", source, _as_now(event), time.monotonic()))

    def status(self, source, online) -> None:
        self.put(("s", source, online, time.monotonic()))

    def _send(self) -> None:
        reported = time.monotonic() - REPORT  # the first report at once
        while True:
            with self._cond:
                while not self._items and not self._closed:
                    due = reported + REPORT - time.monotonic()
                    if due <= 0:
                        break
                    self._cond.wait(due)
                if not self._items and self._closed:
                    return
            time.sleep(BATCH)
            with self._cond:
                batch, self._items = self._items, []
                self._cond.notify_all()
            if time.monotonic() - reported >= REPORT:
                reported = time.monotonic()
                batch.append(("c", time.process_time(), os.getpid(), reported))
            try:
                self.conn.send(batch)
            except (OSError, ValueError):  # the parent is gone
                self.broken = True
                return

    def close(self, timeout: float = 5.0) -> None:
        """Send what is left, then stop."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)


def _as_now(event):
    """``event`` as it is now: a start's segment goes on changing until it ends, and the
    message is pickled a moment later."""
    return dataclasses.replace(event, segment=dataclasses.replace(event.segment))


def run_group(plan, phase: int, duration: float | None, conn, commands, parent: int) -> None:
    """A group process's main: build the share, run it, report, obey commands."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    exit_with(parent)
    serve_group(plan, phase, duration, conn, commands)


def serve_group(plan, phase: int, duration: float | None, conn, commands) -> None:
    """Build the share, run it, report, obey commands: the messages to ``conn`` (anything
    with ``send(batch)``), the commands from ``commands`` (``recv()``, EOFError when the
    parent is gone). A group process's body, and a Ray group actor's
    (:mod:`.ray_actor`)."""
    shipper = Shipper(conn)
    try:
        watch = plan.watch(plan.load(), shipper, phase)
    except (VidclsError, OSError, ValueError) as e:
        shipper.put(("error", str(e)))
        shipper.close()
        return
    threading.Thread(
        target=_obey, args=(watch, commands, shipper), name="vidcls-commands", daemon=True
    ).start()
    try:
        watch.run(duration)
    except Exception as e:  # reported, as one process's run would log it
        log.error("%s", e)
    shipper.put(("done", watch.stats(), watch.unopened()))
    shipper.close(30.0)


def _obey(watch, commands, shipper: Shipper) -> None:
    """The parent's commands, one at a time, until it says stop or is gone."""
    while True:
        try:
            command = commands.recv()
        except (EOFError, OSError):
            watch.request_stop()
            return
        kind = command[0]
        if kind == "stop":
            watch.request_stop()
        elif kind == "reset":
            watch.reset(command[1])
        elif kind == "switch":
            try:
                watch.switch_model(command[2])
                value = None
            except VidclsError as e:
                value = str(e)
            shipper.put(("reply", command[1], value))
        elif kind == "record":
            _, ask, view, seconds, path = command
            shipper.put(("reply", ask, watch.record(view, seconds, path)))
