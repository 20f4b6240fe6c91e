"""Where live results and events go: stdout, a JSON Lines file, event sinks, a window, a
Python callback, all behind one :class:`Output` interface and fanned out by :class:`Outputs`.

Every live front end hands each source's results and segment events to one
:class:`Outputs`, on one thread, in the order they happened; the end events of segments still
open when a run stops (its sources ended, ``duration``, Ctrl-C, ``break``) come the same way
as every other event. Webhooks and MQTT (:mod:`vidcls.sinks`) are outputs too.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import BinaryIO, TextIO

from ..errors import VidclsError
from ..results import FrameResult, SegmentEvent
from ..writers import get_writer, write_error

log = logging.getLogger("vidcls")


class Output:
    """Receives a live run's results, events and source status; override what you need.

    ``result(source, result)``: each result (``result.events`` lists the events decided at
    that frame, which ``event`` also gets); ``event(source, event)``: every segment start and
    end, including the ends of segments closed when the run stops; ``status(source, online)``:
    a source came up or was lost; ``close(timeout)``: the run is over (deliver what is queued
    within ``timeout`` seconds). An output whose ``close`` waits on delivery (an event sink)
    sets ``waits`` so that :class:`Outputs` closes it alongside the others that wait.
    """

    waits = False

    def result(self, source: str, result: FrameResult) -> None:
        """One result of ``source``."""

    def event(self, source: str, event: SegmentEvent) -> None:
        """One segment start or end of ``source``."""

    def status(self, source: str, online: bool) -> None:
        """``source`` came up (True) or was lost (False)."""

    def close(self, timeout: float = 5.0) -> None:
        """No more calls: flush and release."""


class Outputs(Output):
    """Several outputs, each called in the order given (closed in that order too)."""

    def __init__(self, outputs: Iterable[Output] = ()) -> None:
        self.outputs: list[Output] = list(outputs)

    def add(self, output: Output) -> Output:
        """Append ``output``; returns it."""
        self.outputs.append(output)
        return output

    def result(self, source: str, result: FrameResult) -> None:
        for o in self.outputs:
            o.result(source, result)

    def event(self, source: str, event: SegmentEvent) -> None:
        for o in self.outputs:
            o.event(source, event)

    def status(self, source: str, online: bool) -> None:
        for o in self.outputs:
            o.status(source, online)

    def close(self, timeout: float = 5.0) -> None:
        """Close the outputs that wait on delivery all at once, within ``timeout`` seconds
        (and a moment's grace for their last words), and the others here, in order."""
        waiting = [o for o in self.outputs if o.waits]
        threads = [threading.Thread(target=_close, args=(o, timeout), daemon=True) for o in waiting]
        for t in threads:
            t.start()
        for o in self.outputs:
            if not o.waits:
                _close(o, timeout)
        deadline = time.monotonic() + timeout + 0.2
        for t in threads:
            t.join(max(deadline - time.monotonic(), 0.0))


def _close(output: Output, timeout: float) -> None:
    try:
        output.close(timeout)
    except Exception as e:  # one failing output must not keep the others open
        log.warning("closing %s failed: %s", type(output).__name__, e)


class Callbacks(Output):
    """Python callables as an output: ``on_result(source, result)``,
    ``on_event(source, event)``, ``on_status(source, online)``; any may be None."""

    def __init__(
        self,
        on_result: Callable[[str, FrameResult], None] | None = None,
        on_event: Callable[[str, SegmentEvent], None] | None = None,
        on_status: Callable[[str, bool], None] | None = None,
    ) -> None:
        self.on_result, self.on_event, self.on_status = on_result, on_event, on_status

    def result(self, source: str, result: FrameResult) -> None:
        if self.on_result is not None:
            self.on_result(source, result)

    def event(self, source: str, event: SegmentEvent) -> None:
        if self.on_event is not None:
            self.on_event(source, event)

    def status(self, source: str, online: bool) -> None:
        if self.on_status is not None:
            self.on_status(source, online)


class Printer(Output):
    """Results and events as text on a stream (stdout): ``fmt`` is a live format of
    :mod:`vidcls.writers`; ``results`` False prints events only; ``prefix`` names the source
    at the start of each table line (the other formats name it in every line)."""

    def __init__(
        self, fmt: str = "table", *, results: bool = True, prefix: bool = False, stream=None
    ) -> None:
        self.writer = get_writer(fmt)
        self.results, self.prefix = results, prefix and fmt == "table"
        self.stream: TextIO = stream or sys.stdout
        self._write(self.writer.start())

    def _write(self, text: str, source: str = "") -> None:
        if text:
            self.stream.write(f"[{source}] {text}" if self.prefix and source else text)
            self.stream.flush()

    def result(self, source: str, result: FrameResult) -> None:
        if self.results:
            self._write(self.writer.frame(result, source), source)

    def event(self, source: str, event: SegmentEvent) -> None:
        self._write(self.writer.event(event, source), source)

    def close(self, timeout: float = 5.0) -> None:
        self._write(self.writer.end())


class JsonLinesFile(Output):
    """Every result and event appended to a file as JSON Lines, a line at a time, so a crash
    or a full disk keeps every complete line before it."""

    def __init__(self, path) -> None:
        self.path = path
        self.writer = get_writer("jsonl")
        try:
            self.file: BinaryIO | None = open(path, "ab", buffering=0)  # noqa: SIM115
        except OSError as e:
            raise write_error(e, path) from None

    def _write(self, text: str) -> None:
        if self.file is None:
            return
        try:
            self.file.write(text.encode("utf-8"))
        except OSError as e:  # disk full: say so and stop; the lines before are kept
            raise write_error(e, self.path) from None

    def result(self, source: str, result: FrameResult) -> None:
        self._write(self.writer.frame(result, source))

    def event(self, source: str, event: SegmentEvent) -> None:
        self._write(self.writer.event(event, source))

    def close(self, timeout: float = 5.0) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


def as_output(target: Output | Callable) -> Output:
    """``target`` if it is an :class:`Output`, a callable ``f(source, result)`` as one."""
    if isinstance(target, Output):
        return target
    if callable(target):
        return Callbacks(on_result=target)
    raise VidclsError(f"not an output or a callable: {target!r}")
