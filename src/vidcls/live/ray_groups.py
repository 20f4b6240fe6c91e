"""Camera groups on a Ray cluster: ``vidcls live|serve --config FILE --ray [ADDRESS]``.

What runs where. The driver (the process that runs ``vidcls live`` or ``serve``) holds
everything a camera's events reach: the printer, the results file, the sinks, the events
store, the clips folder. It joins the cluster at ADDRESS (or starts a Ray of its own on
this machine, shut down at the end) and runs a :class:`~.groups.Groups` whose groups are
Ray actors (:class:`RayActors`, this module) instead of processes: each actor asks Ray for
one CPU and runs exactly a group process's engine on its share of the cameras
(:mod:`.ray_actor`), on whichever node Ray places it (spread over the nodes). As many groups
as the measured cameras per group need (:mod:`.sizing`), at most one per CPU of the
cluster. The model's file (and labels beside it) goes to every actor through Ray's object
store, read once and put afresh for each actor started (:mod:`.ray_files`): a copy that
other nodes pulled lists them as its places, and a new actor whose node tried a lost one
first waited for Ray to declare that node dead (about 10 s) before fetching it elsewhere; so
does a model switched to while running. The cameras'
sources must be reachable from every node (network cameras; files at the same path).

How an event travels. A group's engine hands its results, events and status to a shipper,
as in a process; the actor keeps them until the driver takes them: the driver keeps one
``take`` call outstanding per actor and waits on all of them at once (``ray.wait``), then
hands each batch to :class:`~.groups.Groups`, which gives it to the outputs in order, on
its one thread. A clip or snapshot is recorded in a temporary folder on the actor's node
and sent to the driver, which writes it (``.part``, then renamed) at the same place under its
clips folder as one box would have. Events are not held back for their files: an event
names its clip and snapshot at their places here; the snapshot (written before the event is
made) travels just ahead of the event, the clip when complete (``post_roll`` seconds after
the segment's end), as on one box, where the event goes out while its clip is being
written. So ``/events`` plays every clip, whichever node recorded it.

When a node is lost (or an actor crashes). The outstanding ``take`` fails with a
``RayActorError``: that is the group's death, handled as a group process's death
(:mod:`.groups`): each of its views goes ``offline``, each segment it had started without
an end gets an end ``interrupted``, and a new actor is asked for (at once, then with
backoff). Not on the node it was lost on while another node has a free CPU: Ray
takes a few seconds to declare a killed node dead and would otherwise place the new actor
there, to die with it (a label selector on Ray's ``ray.io/node-id``, with that node as the
fallback, so a group whose actor crashed on a node that lives on starts again there when
no other node has room). With no room anywhere, Ray places it when a node has a CPU free
or joins. The views come back ``online`` once it runs. What the
driver had taken before the loss reached the outputs once; events are never sent twice
(what the lost actor had not yet handed over is lost with it). A group Ray cannot place
within :data:`PLACE_WAIT` seconds (no node has a free CPU) is logged, and its cameras are
reported as not running (:meth:`~.groups.Groups.unopened`, ``/healthz``'s
``failed_cameras``) until it is placed; Ray places it as soon as a node has room.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import replace

from ..errors import VidclsError
from .outputs import Output
from .ray_files import Landing, model_files, model_key

log = logging.getLogger("vidcls")
PLACE_WAIT = 15.0  # seconds an actor may take to be placed and start before it is reported
TAKE = 0.25  # seconds a take call waits for messages
REACH = 5.0  # seconds to reach a cluster's address before giving up
LOCAL = ("", "auto", "local")  # addresses that start a Ray here
NODE_LABEL = "ray.io/node-id"  # the label Ray gives every node: its id
UNPLACED = (
    "not running: its group has no place on a Ray node yet (none has a CPU free, or it is starting)"
)


def connect(address: str | None):
    """Ray, joined at ``address`` (``""``, ``auto`` or ``local``: a Ray started here, unless
    this process already runs one); and whether it was started here (to shut it down)."""
    try:
        import ray
    except ImportError:
        raise VidclsError("--ray needs Ray: pip install 'vidcls[ray]'") from None
    if ray.is_initialized():
        return ray, False
    address = address or ""
    kwargs = {"address": "local"}  # a Ray of its own even when another runs on this machine
    if address not in LOCAL:  # (ray.init() without an address would join the latest one)
        _reach(address)
        kwargs["address"] = address
    try:
        ray.init(**kwargs, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    except (ConnectionError, RuntimeError, ValueError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise VidclsError(f"cannot join the Ray cluster at {address} ({first})") from None
    return ray, True


def _reach(address: str) -> None:
    """A one-line VidclsError when nothing answers at ``address`` (Ray would retry for
    minutes)."""
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise VidclsError(f"--ray: {address} is not HOST:PORT (or ray://HOST:PORT)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), REACH).close()
    except OSError as e:
        why = e.strerror or str(e) or type(e).__name__
        raise VidclsError(f"cannot reach the Ray cluster at {address} ({why})") from None


def ray_groups(plan, outputs: Output, classifier=None):
    """``plan``'s cameras in groups of Ray actors, as :class:`~.groups.Groups`."""
    from .groups import Groups

    ray, started = connect(plan.ray)
    try:
        from .sizing import group_count

        transport = RayActors(ray, started, plan)
        count = group_count(plan, int(ray.cluster_resources().get("CPU", 1)))
        plan = replace(plan, specs=[_absolute(s) for s in plan.specs])
        return Groups(plan, outputs, count, classifier, transport)
    except BaseException:
        if started:
            ray.shutdown()
        raise


def _absolute(spec):
    """``spec`` with a file source as an absolute path (an actor runs in another folder)."""
    if os.path.exists(spec.source) and not os.path.isabs(spec.source):
        return replace(spec, source=os.path.abspath(spec.source))
    return spec


class RayGroup:
    """One group as a Ray actor (the driver's handle; see :class:`~.grouping.Group`)."""

    def __init__(self, index: int, plan, phase: int, actors: RayActors) -> None:
        self.index, self.plan, self.phase, self.actors = index, plan, phase, actors
        self.views = [v for s in plan.specs for v, _ in s.views()]
        self.actor = self.take = None
        self.tries = 0
        self.started_at = 0.0
        self.restart_at: float | None = None
        self.done = False
        self.error: str | None = None
        self.unplaced: str | None = None
        self.where: tuple[str, int] | None = None  # (node id, process id) once placed
        self.how = ""  # how its actor ended
        self.finished = False
        self.avoid: str | None = None  # the node its last actor was lost on

    def start(self, duration: float | None) -> None:
        bundle = self.actors.bundle(self.plan.classifier)
        self.actor = self.actors.remote(self.avoid, self.plan, self.phase, duration, bundle)
        self.take = self.actor.take.remote(TAKE)
        self.started_at, self.restart_at = time.monotonic(), None
        self.where, self.finished, self.how = None, False, ""

    def tell(self, command: tuple) -> bool:
        if self.actor is None or self.finished:
            return False
        if command[0] == "stop" and self.where is None:  # never placed: nothing to close
            self.done = True
            self.kill()
            return True
        if command[0] == "record" and self.unplaced is not None:
            return False  # no camera of it runs
        bundle = None
        try:
            if command[0] == "switch":
                options = replace(self.plan.classifier, model=command[2], labels=None)
                bundle = self.actors.bundle(options)
            elif command[0] == "record":
                self.actors.landing.expect(command[4])
        except (OSError, VidclsError) as e:
            log.error("group %d: %s", self.index, e)
            return False
        self.actor.tell.remote(command, bundle)  # a group not placed yet obeys once it is
        return not (command[0] == "switch" and self.unplaced is not None)  # no answer awaited

    def kill(self) -> None:
        if self.actor is not None:
            self.actors.ray.kill(self.actor, no_restart=True)
            self.finished, self.how = True, self.how or "stopped"

    def reap(self) -> str:
        self.actor = self.take = None
        node = "" if self.where is None else f" on node {self.where[0][:12]}"
        return f"{self.how}{node}"

    @property
    def alive(self) -> bool:
        return self.actor is not None and not self.finished

    @property
    def running(self) -> bool:
        return self.actor is not None

    @property
    def pid(self) -> int:
        return 0 if self.where is None or not self.alive else self.where[1]


class RayActors:
    """How the driver reaches Ray group actors: makes them (one CPU each, spread over the
    nodes), ships the models, waits on their ``take`` calls, writes the files they send,
    and at the end kills what is left and shuts down a Ray it started."""

    def __init__(self, ray, started: bool, plan) -> None:
        from .ray_actor import GroupActor

        self.ray, self.started = ray, started
        self.actor_class = ray.remote(num_cpus=1, max_concurrency=4, max_restarts=0)(GroupActor)
        self.landing = Landing(plan.clips)
        self.selectors = True  # whether this Ray takes label selectors
        self._bundles: dict[tuple, dict] = {}
        self.groups: list[RayGroup] = []

    def group(self, index: int, plan, phase: int) -> RayGroup:
        g = RayGroup(index, plan, phase, self)
        self.groups.append(g)
        return g

    def remote(self, avoid: str | None, *args):
        """A new actor, placed by Ray where there is room; not on node ``avoid`` while
        another node has room (a Ray without label selectors places it anywhere)."""
        actor = self.actor_class.options(scheduling_strategy="SPREAD")
        if avoid is not None and self.selectors:
            try:
                actor = self.actor_class.options(
                    scheduling_strategy="SPREAD",
                    label_selector={NODE_LABEL: f"!{avoid}"},
                    fallback_strategy=[{"label_selector": {NODE_LABEL: avoid}}],
                )
            except (TypeError, ValueError):  # options this Ray does not know
                self.selectors = False
        return actor.remote(*args)

    def bundle(self, options):
        """The files of ``options``' model (and labels), read once per file version, in a
        new object-store reference (held by this node alone, see the module's docstring)."""
        key = (*model_key(options.model), repr(options.labels))
        if key not in self._bundles:
            self._bundles[key] = model_files(options)
        return self.ray.put(self._bundles[key])

    def wait(
        self, groups: list[RayGroup], timeout: float
    ) -> Iterator[tuple[RayGroup, list | None]]:
        """Within ``timeout`` seconds, what the actors sent, a batch at a time, and
        ``(group, None)`` for each whose actor ended or was lost."""
        self._placement(groups)
        calls = {g.take: g for g in groups if g.take is not None}
        if not calls:
            time.sleep(timeout)
            return
        ready, rest = self.ray.wait(list(calls), num_returns=1, timeout=timeout)
        if ready and rest:
            ready += self.ray.wait(rest, num_returns=len(rest), timeout=0)[0]
        for call in ready:
            yield from self._answer(calls[call], call)

    def _answer(self, g: RayGroup, call) -> Iterator[tuple[RayGroup, list | None]]:
        from ray.exceptions import RayActorError, RayTaskError

        try:
            items, last, g.where = self.ray.get(call)
        except (RayActorError, RayTaskError) as e:
            g.take, g.finished = None, True
            g.how = g.how or f"its Ray actor was lost: {type(e).__name__}"
            g.avoid = g.where[0] if g.where is not None else g.avoid
            self.ray.kill(g.actor, no_restart=True)  # one unreachable for now stays gone
            yield g, None
            return
        if g.unplaced is not None:
            log.warning("group %d is placed at last (%s)", g.index, _named(g.views))
            g.unplaced = None
        yield g, [self._landed(item) for item in items if not self._file(item)]
        if last:
            g.take, g.finished, g.how = None, True, "ended"
            self.ray.kill(g.actor, no_restart=True)
            yield g, None
        elif g.take is not None:
            g.take = g.actor.take.remote(TAKE)

    def _file(self, item: tuple) -> bool:
        """Write ``item`` if it is a file sent; whether it was."""
        if item[0] != "f":
            return False
        self.landing.write(item[1], item[2])
        return True

    @staticmethod
    def _landed(item: tuple) -> tuple:
        """``item`` with its wall-clock ``sent`` as this process's monotonic time."""
        if item[0] in ("r", "e", "s"):
            return (*item[:3], time.monotonic() - (time.time() - item[3]))
        return item

    def _placement(self, groups: list[RayGroup]) -> None:
        """Report each group Ray has not placed within PLACE_WAIT seconds."""
        now = time.monotonic()
        for g in groups:
            waiting = g.take is not None and g.where is None and g.unplaced is None
            if waiting and now - g.started_at > PLACE_WAIT:
                g.unplaced = UNPLACED
                log.error("group %d (%s) %s", g.index, _named(g.views), g.unplaced)

    def close(self) -> None:
        """Kill every actor left; shut down the Ray started here."""
        for g in self.groups:
            if g.actor is not None:
                self.ray.kill(g.actor, no_restart=True)
                g.actor = g.take = None
        if self.started and self.ray.is_initialized():
            self.ray.shutdown()


def _named(views: list, most: int = 3) -> str:
    shown = ", ".join(map(str, views[:most]))
    return shown + (f" and {len(views) - most} more" if len(views) > most else "")
