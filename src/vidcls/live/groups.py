"""Camera groups: a live engine's cameras shared among processes, so inference runs on every
core, behaving as one engine to its outputs.

Design. :class:`Groups` splits the cameras of a :class:`~.build.Plan` into ``count`` shares
of consecutive cameras with about as many views each (a camera's zones stay with it), and
starts a process per share (the ``spawn`` way: no inherited threads) that builds its share
exactly as one process builds them all and runs it (:mod:`.group_child`): its own model,
scheduler (two workers unless told), decoding processes (as many all told as one process
would have), clips and snapshots (written there, on the same disk). The
share's views are given the ticks' phases they have in one process, so on a virtual clock
(``--replay``) each group replays its files as one process would: the same results.

Everything a group's engine hands its outputs comes to the parent over a pipe, a batch at a
time, and the parent's one thread (the caller of :meth:`Groups.run`) hands it to the real
outputs (printer, file, sinks, the events store: one writer), in the order the group made
it: a camera's events come from one group, so they stay in decision order. A result's
latency includes its way to the parent (on the real clock); its probabilities stay behind.
The parent forwards a view's status only when it changes.

Commands go the other way: stop (each group closes its open segments and flushes, then
reports its stats), switch_model (checked here first, then every group switches; a group
started later uses the new model), record (the view's group records the clip), reset.

A group process that dies (kill -9, a crash) is noticed by its sentinel: each of its views
that was online goes ``offline``, each segment it had started without an end gets an end
``interrupted`` (at the view's last result), and the group is started again with the same
cameras (at once, then after 1, 2, 4... s, up to 30 s, if it keeps dying within a minute);
each view says ``online`` again when its source is back. After :data:`MAX_TRIES` deaths in
a row the group is given up (logged; its cameras are reported as not opened). The other
groups go on untouched (on a virtual clock exactly; on the real one, a group starting again
spends a few CPU seconds on imports, its model and decoders, which near the machine's
capacity delays the others' results meanwhile). A group that cannot start (its model fails)
is not retried.

The way to the groups is a transport: :class:`~.grouping.Processes` (pipes, sentinels) here;
on a Ray cluster, :class:`~.ray_groups.RayActors` (the same messages, each group an actor,
a lost node a death as above).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import replace

from ..errors import VidclsError
from ..results import FrameResult, SegmentEvent
from .grouping import Group, Processes, decoders_per_group, shares
from .outputs import Output
from .stats import SourceStats
from .status import Load

log = logging.getLogger("vidcls")
MAX_TRIES = 5  # deaths in a row before a group is given up
STEADY = 60.0  # seconds a group must live for its deaths to be forgiven
STOP_WAIT = 30.0  # seconds a group has to close its segments and report when stopped
ASK_WAIT = 120.0  # seconds for a group to answer a command (a model switch loads a model)


class Groups:
    """``plan``'s cameras in ``count`` group processes, results, events and status to
    ``outputs`` on the thread that runs it. As a :class:`~.watch.Watch`: :meth:`run`,
    :meth:`results`, :meth:`request_stop`, :meth:`stop`, :meth:`switch_model`,
    :meth:`record`, :meth:`reset`, :meth:`stats`, :meth:`unopened`, ``sources`` (the views'
    names). ``transport``: how groups are started and heard (:class:`~.grouping.Processes`
    unless given; :class:`~.ray_groups.RayActors` on Ray)."""

    def __init__(self, plan, outputs: Output, count: int, classifier=None, transport=None) -> None:
        from ..errors import leave_if_importing_in_a_child

        leave_if_importing_in_a_child("watching cameras in groups")
        self.plan, self.outputs = plan, outputs
        self._layout = None if classifier is None else classifier.model.layout
        self.transport = transport or Processes()
        self.groups: list[Group] = []
        phase, parts = 0, shares(plan.specs, count)
        decoders = decoders_per_group(plan, len(parts))
        for i, share in enumerate(parts):
            share = replace(plan.subset(share), decoders=decoders, workers=plan.workers or 2)
            group = self.transport.group(i, share, phase)
            phase += len(group.views)
            self.groups.append(group)
        self.group_of = {v: g for g in self.groups for v in g.views}
        self.sources = dict.fromkeys(self.group_of)  # the views; their sources are in groups
        self._online = dict.fromkeys(self.group_of, False)
        self._open: dict[str, SegmentEvent] = {}  # each view's started segment without an end
        self._last: dict[str, float] = {}  # each view's last result time
        self._stats: dict[str, SourceStats] = {}
        self._unopened: dict[str, str] = {}
        self._asks: dict[int, Future] = {}
        self._ask_ids = itertools.count()
        self._stop_asked = threading.Event()
        self._stopping = False
        self._running = False
        self._duration: float | None = None
        self.deaths = 0  # group processes that died, all told
        self.load = Load()  # each group's CPU use (as it reports it) and deaths

    def pids(self) -> list[int]:
        """The group processes' ids, in group order (0 for one not running)."""
        return [g.pid for g in self.groups]

    def run(self, duration: float | None = None, display=None) -> list[SourceStats]:
        """Run every group until each has ended, ``duration`` seconds passed (video seconds
        with ``replay``), :meth:`request_stop` or Ctrl-C; see :meth:`Watch.run`."""
        for _ in self.results(duration, display):
            pass
        return self.stats()

    def results(self, duration: float | None = None, display=None) -> Iterator[FrameResult]:
        """As :meth:`run`, yielding each result after the outputs had it."""
        if display is not None:
            raise VidclsError("a window needs the cameras in one group (--groups 1)")
        self._duration = duration
        end = None if duration is None or self.plan.replay else time.monotonic() + duration
        self._running = True
        try:
            for g in self.groups:
                g.start(duration)
            while not self._stop_asked.is_set() and not all(g.done for g in self.groups):
                if end is not None and time.monotonic() >= end:
                    break
                yield from self._turn(0.25)
        finally:
            self.stop()

    def _turn(self, timeout: float) -> Iterator[FrameResult]:
        """Hand on what the groups sent, notice deaths, start again those due."""
        now = time.monotonic()
        due = [g.restart_at for g in self.groups if g.restart_at is not None]
        if due:
            timeout = max(0.0, min(timeout, min(due) - now))
        for g, batch in self.transport.wait(self.groups, timeout):
            if batch is None:
                self._ended(g)
            else:
                yield from self._hand_on(g, batch)
        now = time.monotonic()
        for g in self.groups:
            if g.restart_at is not None and now >= g.restart_at and not self._stopping:
                log.warning("group %d starts again (%s)", g.index, _named(g.views))
                g.start(self._duration)

    def _hand_on(self, g: Group, batch: list) -> Iterator[FrameResult]:
        now = time.monotonic()
        for item in batch:
            kind = item[0]
            if kind == "r":
                _, view, result, sent = item
                if result.latency_ms is not None and not self.plan.replay:
                    result.latency_ms += 1e3 * (now - sent)  # its way here included
                self._last[view] = result.time
                self.outputs.result(view, result)
                yield result
            elif kind == "e":
                _, view, event, _ = item
                if event.kind == "start":
                    self._open[view] = event
                else:
                    self._open.pop(view, None)
                self.outputs.event(view, event)
            elif kind == "s":
                self._status(item[1], item[2])
            elif kind == "reply":
                ask = self._asks.pop(item[1], None)
                if ask is not None:
                    ask.set_result(item[2])
            elif kind == "done":
                g.done = True
                self._stats.update({s.name: s for s in item[1]})
                self._unopened.update(item[2])
            elif kind == "error":
                g.done, g.error = True, item[1]
                log.error("group %d could not start: %s", g.index, item[1])
            elif kind == "c":
                self.load.report(g.index, *item[1:])

    def _status(self, view: str, online: bool) -> None:
        if self._online.get(view) != online:
            self._online[view] = online
            self.outputs.status(view, online)

    def _ended(self, g: Group) -> None:
        """``g``'s process is gone: done, or lost (its views offline, their open segments
        closed as interrupted, a restart planned or the group given up)."""
        how = g.reap()
        if g.done:
            return
        self.deaths += 1
        self.load.died(g.index)
        log.error("group %d (%s) died (%s)", g.index, _named(g.views), how)
        self._lost(g.views)
        if self._stopping:
            g.done = True
            return
        if time.monotonic() - g.started_at > STEADY:
            g.tries = 0
        g.tries += 1
        if g.tries > MAX_TRIES:
            g.done, g.error = True, f"its group process died {MAX_TRIES} times"
            log.error("group %d given up: %s", g.index, g.error)
            return
        g.restart_at = time.monotonic() + (0.0 if g.tries == 1 else min(30.0, 2.0 ** (g.tries - 2)))

    def _lost(self, views: list[str]) -> None:
        for view in views:
            start = self._open.pop(view, None)
            if start is not None:
                at = max(self._last.get(view, start.time), start.time)
                segment = replace(start.segment, end=max(at, start.segment.end))
                self.outputs.event(
                    view, SegmentEvent("end", at, segment, start_id=start.id, interrupted=True)
                )
            self._status(view, False)

    def request_stop(self) -> None:
        """Ask a run going on in another thread to end (within a quarter of a second)."""
        self._stop_asked.set()

    def stop(self) -> None:
        """Stop every group (each closes its open segments and reports) and hand on what
        they send until they have ended."""
        if self._stopping:
            return
        self._stopping = True
        for g in self.groups:
            g.tell(("stop",))
        deadline = time.monotonic() + STOP_WAIT
        try:
            while any(g.running for g in self.groups):
                if time.monotonic() >= deadline:
                    for g in self.groups:
                        if g.alive:
                            log.error("group %d did not stop: killed", g.index)
                            g.kill()
                    deadline = float("inf")
                for _ in self._turn(0.25):
                    pass
        finally:  # an output that fails (a full disk) leaves no group running
            for g in self.groups:
                if g.running:
                    g.kill()
            self.transport.close()
        self._lost(list(self.group_of))  # what a lost group left open, and every view offline
        self._running = False
        for ask in self._asks.values():
            ask.set_result(None)

    def _ask(self, g: Group, command: tuple):
        """Send ``command`` (its second item the ask's id) and wait for the answer."""
        if not self._running or not g.alive:
            return None
        ask_id = next(self._ask_ids)
        future: Future = Future()
        self._asks[ask_id] = future
        if not g.tell((command[0], ask_id, *command[1:])):
            self._asks.pop(ask_id, None)
            return None
        try:
            return future.result(ASK_WAIT)
        except TimeoutError:
            self._asks.pop(ask_id, None)
            return None

    def switch_model(self, model) -> None:
        """Classify every camera with ``model`` from its next frame, in every group (see
        :meth:`Watch.switch_model`); checked here first: VidclsError, nothing changed, when
        it cannot be loaded or does not fit the cameras."""
        from ..classifier import VideoClassifier

        old = self.plan.classifier
        options = replace(old, model=model, labels=None, fit=None, crop=False)
        new = VideoClassifier.create_from_options(options)
        check = self._layout or VideoClassifier.create_from_options(old).model.layout
        if (check.height, check.width) != (new.model.layout.height, new.model.layout.width):
            raise VidclsError(
                f"the new model takes {new.model.layout.width}x{new.model.layout.height} "
                f"pictures, the running one {check.width}x{check.height}: restart to switch",
                model,
            )
        for name, view in self.plan.settings.items():
            try:
                new.new_stream(**view.changes)
            except (VidclsError, ValueError) as e:
                raise VidclsError(f"{name}: {e}", model) from None
        self.plan.classifier, self._layout = options, new.model.layout
        problems = []
        for g in self.groups:
            g.plan.classifier = options  # a group started again runs it too
            answer = self._ask(g, ("switch", model))
            if isinstance(answer, str):
                problems.append(answer)
        if problems:
            raise VidclsError(problems[0], model)

    def record(self, name: str, seconds: float, path: str) -> bool:
        """Ask view ``name``'s group for a clip (see :meth:`Watch.record`)."""
        g = self.group_of.get(name)
        if g is None or self.plan.clips is None:
            return False
        return bool(self._ask(g, ("record", name, seconds, path)))

    def reset(self, name: str) -> None:
        g = self.group_of.get(name)
        if g is not None:
            g.tell(("reset", name))

    def stats(self) -> list[SourceStats]:
        """Per view, its group's last report (a group that never reported: its error)."""
        out = []
        for view, g in self.group_of.items():
            stats = self._stats.get(view)
            if stats is None:
                stats = SourceStats(str(view), error=g.error or "its group did not report")
            out.append(stats)
        return out

    def unopened(self) -> dict[str, str]:
        """Per camera that gave no frame (see :meth:`Watch.unopened`), and those of groups
        that could not start or were given up."""
        out = dict(self._unopened)
        for g in self.groups:
            why = g.error or g.unplaced
            if why is not None:
                out.update({s.name: why for s in g.plan.specs})
        return out


def _named(views: list[str], most: int = 3) -> str:
    shown = ", ".join(map(str, views[:most]))
    return shown + (f" and {len(views) - most} more" if len(views) > most else "")
