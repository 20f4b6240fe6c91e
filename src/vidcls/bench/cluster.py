"""``vidcls bench --cluster N``: camera groups on N Ray nodes of this machine against one
process, and what a lost node costs them.

N Ray worker nodes are started here (``ray.cluster_utils.Cluster``, a head without CPUs;
each node its share of the cores as logical CPUs, at least two, so a lost node's group has
room on another). The cameras (the shared clips, or ``--video``, looped at real speed) run
first in one process (the engine ``vidcls live`` runs), then in N groups as Ray actors
(``vidcls live --ray``), each measured for the same seconds after a warm-up: results per
second per camera (mean, min) and p99 latency (capture to result, here), and their ratio.
Then, per round, the node that holds a group is removed (its processes killed, not
drained, as a machine lost) and it reports: seconds from the loss to every moved camera's
``online``, offline/online pairs per moved camera, other cameras that went offline, events
handed on twice, starts decided before the loss that had no end once the cameras were
back, and the ends ``interrupted``. A node is added back between rounds.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..live.outputs import Output

MB = 1024 * 1024
WARMUP = 5.0  # seconds every camera runs before it is measured
SETTLE = 3.0  # seconds after the moved cameras are back before the next round
BACK_WAIT = 120.0  # seconds the moved cameras have to come back before a round gives up
# The head node: no CPUs (no group runs there), and none of the helpers the measure has no
# use for (the autoscaler's monitor, the log monitor: the actors' logs are not shown here,
# the dashboard's modules), each a Python process of its own taking CPU at the start.
HEAD = {
    "num_cpus": 0,
    "object_store_memory": 80 * MB,
    "include_dashboard": False,
    "no_monitor": True,
    "include_log_monitor": False,
}


class Watched(Output):
    """Per view: results' arrival times and latencies, status changes; every event."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.results: dict[str, list[tuple[float, float]]] = {}
        self.changes: dict[str, list[tuple[bool, float]]] = {}
        self.events: list[tuple[str, object, float]] = []  # (view, event, arrival)

    def result(self, source, result) -> None:
        with self.lock:
            latency = result.latency_ms if result.latency_ms is not None else math.nan
            self.results.setdefault(str(source), []).append((time.monotonic(), latency))

    def event(self, source, event) -> None:
        with self.lock:
            self.events.append((str(source), event, time.monotonic()))

    def status(self, source, online) -> None:
        with self.lock:
            self.changes.setdefault(str(source), []).append((online, time.monotonic()))

    def online(self, view: str) -> bool:
        with self.lock:
            changes = self.changes.get(view, [])
            return bool(changes) and changes[-1][0]

    def span(self, views: list[str], begin: float, end: float) -> Figures:
        """Results per second per view and p99 latency between ``begin`` and ``end``."""
        with self.lock:
            got = {v: [r for r in self.results.get(v, []) if begin <= r[0] < end] for v in views}
        rates = [len(r) / (end - begin) for r in got.values()]
        latencies = [lat for r in got.values() for _, lat in r if not math.isnan(lat)]
        p99 = float(np.percentile(latencies, 99)) if latencies else math.nan
        return Figures(float(np.mean(rates)), min(rates), p99)


@dataclass
class Figures:
    """One engine's measured span: results per second per camera and latency."""

    rate_mean: float
    rate_min: float
    p99_ms: float


@dataclass
class Loss:
    """One node removed: what its cameras and the events went through."""

    moved: int  # cameras of the groups on the node
    seconds: float | None  # from the loss to every moved camera online (None: not back)
    noticed: float  # from the loss to the last moved camera offline (the death noticed)
    pairs: list[int]  # the distinct counts of offline/online pairs of the moved cameras
    others_offline: int  # offline changes of the cameras not moved
    repeated: int  # events handed on twice (same id) since the loss
    started_before: int  # moved cameras' starts their lost groups had handed on
    lost: int  # of those, without an end once they were back
    interrupted: int  # ends "interrupted" since the loss
    deaths: int  # group deaths the round cost

    @property
    def holds(self) -> bool:
        return (
            self.seconds is not None
            and self.seconds <= 15.0
            and self.pairs == [1]
            and self.repeated == 0
            and self.lost == 0
        )


@dataclass
class ClusterReport:
    """The whole run's figures (see the module's docstring)."""

    nodes: int
    cpus: int  # logical CPUs per node
    groups: int
    cameras: int
    seconds: float
    one: Figures
    cluster: Figures
    losses: list[Loss] = field(default_factory=list)
    unended: int = 0  # starts without an end after the run (every engine stopped)

    @property
    def ratio(self) -> float:
        return self.cluster.rate_min / self.one.rate_min if self.one.rate_min else math.nan

    def lines(self) -> list[str]:
        o, c = self.one, self.cluster
        out = [
            f"{self.cameras} cameras, {self.seconds:g} s measured each after {WARMUP:g} s; "
            f"cluster: {self.nodes} nodes x {self.cpus} logical CPUs, {self.groups} groups",
            f"{'engine':<12} {'res/s avg':>9} {'res/s min':>9} {'p99 ms':>8}",
            f"{'one process':<12} {o.rate_mean:>9.2f} {o.rate_min:>9.2f} {o.p99_ms:>8.0f}",
            f"{'cluster':<12} {c.rate_mean:>9.2f} {c.rate_min:>9.2f} {c.p99_ms:>8.0f}",
            f"cluster / one process: res/s avg {c.rate_mean / o.rate_mean:.3f}, "
            f"min {self.ratio:.3f}, p99 {c.p99_ms / o.p99_ms:.2f}",
            f"{'loss':>4} {'moved':>5} {'back s':>7} {'seen s':>6} {'pairs':>5} {'others':>6} "
            f"{'twice':>5} {'starts':>6} {'lost':>4} {'interr':>6} {'deaths':>6}",
        ]
        for i, x in enumerate(self.losses, 1):
            back = "-" if x.seconds is None else f"{x.seconds:.2f}"
            pairs = ",".join(map(str, x.pairs))
            out.append(
                f"{i:>4} {x.moved:>5} {back:>7} {x.noticed:>6.2f} {pairs:>5} {x.others_offline:>6} "
                f"{x.repeated:>5} {x.started_before:>6} {x.lost:>4} {x.interrupted:>6} "
                f"{x.deaths:>6}  {'holds' if x.holds else 'fails'}"
            )
        out.append(f"starts without an end after the run: {self.unended}")
        return out


def _wait(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _say(text: str) -> None:
    print(f"bench --cluster: {text}", file=sys.stderr, flush=True)


class Running:
    """An engine of ``plan`` running in a thread, its outputs :class:`Watched`."""

    def __init__(self, plan) -> None:
        self.out = Watched()
        self.engine = plan.engine(plan.load(), self.out)
        self.views = [str(v) for v in self.engine.sources]
        self.thread = threading.Thread(target=self.engine.run, daemon=True)
        self.thread.start()

    def measure(self, seconds: float) -> Figures:
        """Once every camera is online, ``WARMUP`` s, then ``seconds`` measured."""
        if not _wait(lambda: all(self.out.online(v) for v in self.views), BACK_WAIT):
            _say("not every camera came online")
        time.sleep(WARMUP)
        begin = time.monotonic()
        time.sleep(seconds)
        return self.out.span(self.views, begin, time.monotonic())

    def stop(self) -> None:
        self.engine.request_stop()
        self.thread.join(BACK_WAIT)


def lose_a_node(cluster, running: Running, cpus: int, add_back: bool = True) -> Loss:
    """Remove the node of the first group placed on a worker node; the figures once its
    cameras are back (or BACK_WAIT s passed) and SETTLE s more; a node added back if
    ``add_back`` (for another round)."""
    engine, out = running.engine, running.out
    workers = {n.node_id: n for n in cluster.worker_nodes}
    _wait(lambda: all(g.where is not None for g in engine.groups), BACK_WAIT)
    node_id = next(g.where[0] for g in engine.groups if g.where and g.where[0] in workers)
    moved = [str(v) for g in engine.groups if g.where and g.where[0] == node_id for v in g.views]
    with out.lock:
        before = len(out.events)
    deaths = engine.deaths
    lost_at = time.monotonic()
    cluster.remove_node(workers[node_id], allow_graceful=False)
    back = _wait(lambda: all(_came_back(out, v, lost_at) for v in moved), BACK_WAIT)
    last = max((_came_back(out, v, lost_at) or lost_at) for v in moved)
    went = {v: _went_offline(out, v, lost_at) for v in moved}
    with out.lock:
        events = list(out.events)
    ended = {e.start_id for _, e, _ in events if e.kind == "end"}
    starts = [e for v, e, t in events if e.kind == "start" and v in moved and t <= went[v]]
    time.sleep(SETTLE)
    with out.lock:
        since = out.events[before:]
    ids = Counter(e.id for _, e, _ in since)
    loss = Loss(
        moved=len(moved),
        seconds=round(last - lost_at, 2) if back else None,
        noticed=round(max(went.values()) - lost_at, 2),
        pairs=sorted({_pairs(out, v, lost_at) for v in moved}),
        others_offline=sum(_pairs(out, v, lost_at) for v in running.views if v not in moved),
        repeated=sum(n - 1 for n in ids.values()),
        started_before=len(starts),
        lost=sum(1 for e in starts if e.id not in ended),
        interrupted=sum(1 for _, e, _ in since if e.kind == "end" and e.interrupted),
        deaths=engine.deaths - deaths,
    )
    if add_back:
        cluster.add_node(num_cpus=cpus, object_store_memory=80 * MB)
        cluster.wait_for_nodes()
    return loss


def _came_back(out: Watched, view: str, lost: float) -> float | None:
    """When ``view`` said ``online`` after going offline past ``lost`` (None: not yet)."""
    with out.lock:
        changes = [c for c in out.changes.get(view, []) if c[1] >= lost]
    went = next((i for i, (online, _) in enumerate(changes) if not online), None)
    if went is None:
        return None
    return next((t for online, t in changes[went:] if online), None)


def _went_offline(out: Watched, view: str, lost: float) -> float:
    """When ``view`` went offline past ``lost``: all its lost group handed on came before."""
    with out.lock:
        changes = out.changes.get(view, [])
        return next((t for online, t in changes if t >= lost and not online), math.inf)


def _pairs(out: Watched, view: str, lost: float) -> int:
    """Offline changes of ``view`` since ``lost`` that it came back from."""
    with out.lock:
        changes = [c for c in out.changes.get(view, []) if c[1] >= lost]
    return sum(1 for i, (online, _) in enumerate(changes) if not online and i + 1 < len(changes))


def measure_cluster(cluster, plan, seconds: float, rounds: int, cpus: int) -> ClusterReport:
    """``plan``'s cameras in one process, then as Ray groups on ``cluster`` (joined by this
    process's Ray), ``rounds`` nodes lost; see the module's docstring."""
    _say(f"{len(plan.specs)} cameras in one process")
    running = Running(replace(plan, groups=1, ray=None))
    try:
        one = running.measure(seconds)
    finally:
        running.stop()
    nodes = len(cluster.worker_nodes)
    _say(f"{one}; now in {nodes} groups on {nodes} Ray nodes")
    running = Running(replace(plan, groups=nodes, ray=cluster.address))
    try:
        spread = running.measure(seconds)
        _say(f"{spread}")
        groups, cameras = len(running.engine.groups), len(running.views)
        report = ClusterReport(nodes, cpus, groups, cameras, seconds, one, spread)
        for i in range(rounds):
            report.losses.append(lose_a_node(cluster, running, cpus, i + 1 < rounds))
            _say(f"loss {i + 1}: {report.losses[-1]}")
    finally:
        running.stop()
    ended = {e.start_id for _, e, _ in running.out.events if e.kind == "end"}
    starts = [e for _, e, _ in running.out.events if e.kind == "start"]
    report.unended = sum(1 for e in starts if e.id not in ended)
    return report


def run_cluster(
    nodes: int, model: str, cameras: int, video: str | None, seconds: float, rounds: int
) -> ClusterReport:
    """Start ``nodes`` Ray nodes here, measure (see the module's docstring), print."""
    import ray
    from ray.cluster_utils import Cluster

    from ..live.build import Plan, classifier_options
    from ..live.sources import SourceSpec
    from .clips import shared_clips

    clips = [str(Path(video).resolve())] if video else [str(p) for p in shared_clips()]
    specs = [SourceSpec(f"cam{i:02d}", clips[i % len(clips)]) for i in range(cameras)]
    plan = Plan(classifier_options({"model": model}), specs, loop=True)
    cpus = max(2, math.ceil((os.cpu_count() or 1) / nodes))
    if ray.is_initialized():
        ray.shutdown()
    load = os.getloadavg()[0]
    _say(f"starting {nodes} Ray nodes of {cpus} logical CPUs (load {load:.2f})")
    with contextlib.redirect_stdout(sys.stderr):  # Ray prints a lost node's last log lines
        cluster = Cluster(initialize_head=True, head_node_args=HEAD)
        try:
            for _ in range(nodes):
                cluster.add_node(num_cpus=cpus, object_store_memory=80 * MB)
            ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
            cluster.wait_for_nodes()
            report = measure_cluster(cluster, plan, seconds, rounds, cpus)
        finally:
            ray.shutdown()
            cluster.shutdown()
    print("\n".join(report.lines()), flush=True)
    print(f"load average (1 min) before {load:.2f}, after {os.getloadavg()[0]:.2f}", flush=True)
    return report
