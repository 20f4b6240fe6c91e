"""What a running live engine looks like, for ``GET /api/groups`` (``vidcls serve --config``):
per group of cameras, where it runs (this machine and its process id; on Ray, its node), its
cameras, its state, its deaths and its load; on Ray, per node, whether it is alive and its
CPUs.

Where the numbers come from. A group process or Ray actor reports its own CPU time
(``time.process_time()``, its decoding processes not counted) with its batches every
:data:`~.group_child.REPORT` seconds; :class:`Load` (held by :class:`~.groups.Groups`) turns
two reports into CPU seconds per second, and counts each group's deaths. :class:`Tally`, one
more output of the engine, counts each view's results over the last :data:`WINDOW` seconds
and knows whether it is online. With one group (the cameras in the server's own process)
the CPU is the server's process's, pages and all. Ray's nodes are asked at most every
:data:`NODES_EVERY` seconds (:class:`Nodes`), never once per request.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections import deque

from .outputs import Output

WINDOW = 5.0  # seconds over which a camera's results per second are counted
NODES_EVERY = 3.0  # seconds Ray's list of nodes is kept before being asked again


class Load:
    """Per group (by index): CPU seconds per second between its last two reports, and its
    deaths so far."""

    def __init__(self) -> None:
        self._last: dict[int, tuple[int, float, float]] = {}  # index: (pid, cpu, at)
        self.cpu: dict[int, float] = {}
        self.deaths: dict[int, int] = {}

    def report(self, index: int, seconds: float, pid: int, at: float) -> None:
        """Group ``index``'s process ``pid`` had used ``seconds`` of CPU at ``at`` (its
        monotonic clock)."""
        last = self._last.get(index)
        if last is not None and last[0] == pid and at > last[2]:
            self.cpu[index] = max(0.0, (seconds - last[1]) / (at - last[2]))
        self._last[index] = (pid, seconds, at)

    def died(self, index: int) -> None:
        self.deaths[index] = self.deaths.get(index, 0) + 1
        self._last.pop(index, None)
        self.cpu.pop(index, None)


class Tally(Output):
    """An output that counts each view's results over the last :data:`WINDOW` seconds and
    keeps whether it is online and when it was last heard of (this process's monotonic
    clock); read from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._times: dict[str, deque] = {}
        self._first: dict[str, float] = {}
        self.online: dict[str, bool] = {}
        self.heard: dict[str, float] = {}

    def result(self, source, result) -> None:
        now = time.monotonic()
        with self._lock:
            times = self._times.setdefault(source, deque())
            times.append(now)
            self._first.setdefault(source, now)
            self._drop(times, now)
        self.heard[source] = now

    def status(self, source, online) -> None:
        self.online[source] = online
        self.heard[source] = time.monotonic()

    def rate(self, view: str) -> float:
        """``view``'s results per second over the last :data:`WINDOW` seconds (less since
        its first)."""
        now = time.monotonic()
        with self._lock:
            times = self._times.get(view)
            if not times:
                return 0.0
            self._drop(times, now)
            span = min(WINDOW, max(1.0, now - self._first[view]))
            return len(times) / span

    @staticmethod
    def _drop(times: deque, now: float) -> None:
        while times and times[0] < now - WINDOW:
            times.popleft()


class Nodes:
    """Ray's nodes (alive, address, CPUs total and free), asked at most every
    :data:`NODES_EVERY` seconds."""

    def __init__(self, ray) -> None:
        self.ray = ray
        self._lock = threading.Lock()
        self._at = -NODES_EVERY
        self._nodes: list[dict] = []

    def list(self) -> list[dict]:
        with self._lock:
            if time.monotonic() - self._at >= NODES_EVERY:
                self._nodes, self._at = self._ask(), time.monotonic()
            return self._nodes

    def _ask(self) -> list[dict]:
        try:
            nodes = self.ray.nodes()
            free = _free_per_node(self.ray)
        except Exception:  # noqa: BLE001 - a cluster being torn down: what was known stays
            return self._nodes
        return [
            {
                "id": n["NodeID"],
                "alive": bool(n.get("Alive")),
                "address": n.get("NodeManagerAddress"),
                "host": n.get("NodeManagerHostname"),
                "cpus": n.get("Resources", {}).get("CPU", 0.0),
                "cpus_free": free.get(n["NodeID"], {}).get("CPU", 0.0) if n.get("Alive") else 0.0,
            }
            for n in nodes
        ]


def _free_per_node(ray) -> dict[str, dict]:
    """Per node id, its resources free now (Ray has no public call for it)."""
    from ray._private.state import state

    return state.available_resources_per_node()


class Status:
    """The description of ``engine`` (a :class:`~.watch.Watch` or :class:`~.groups.Groups`)
    running ``specs`` (the cameras), with ``tally`` among its outputs."""

    def __init__(self, engine, specs: list, tally: Tally) -> None:
        self.engine, self.specs, self.tally = engine, specs, tally
        ray = getattr(getattr(engine, "transport", None), "ray", None)
        self.nodes = None if ray is None else Nodes(ray)
        self.host = socket.gethostname()
        self._mine = (time.process_time(), time.monotonic(), 0.0)  # cpu, at, rate

    def doc(self, running: bool) -> dict:
        """``{"transport", "groups", "nodes"}`` (see :mod:`vidcls.serve.groups`);
        ``running``: whether the engine's thread still runs."""
        groups = getattr(self.engine, "groups", None)
        nodes = None if self.nodes is None else self.nodes.list()
        if groups is None:
            out = [self._here(running)]
            transport = "here"
        else:
            known = {n["id"]: n for n in nodes or []}
            out = [self._group(g, known) for g in groups]
            transport = "processes" if self.nodes is None else "ray"
        if nodes is not None:
            nodes = [
                {**n, "groups": [g["index"] for g in out if g["node"] == n["id"]]} for n in nodes
            ]
        return {"transport": transport, "groups": out, "nodes": nodes}

    def _cameras(self, specs: list) -> list[dict]:
        out = []
        for spec in specs:
            views = [str(v) for v, _ in spec.views()]
            out.append(
                {
                    "name": spec.name,
                    "views": views,
                    "online": any(self.tally.online.get(v, False) for v in views),
                    "results_per_s": round(sum(self.tally.rate(v) for v in views), 2),
                }
            )
        return out

    def _here(self, running: bool) -> dict:
        """The one group: the cameras in this process."""
        cameras = self._cameras(self.specs)
        heard = any(v in self.tally.heard for c in cameras for v in c["views"])
        state = ("running" if heard else "starting") if running else "ended"
        return {
            "index": 0,
            "state": state,
            "deaths": 0,
            "here": True,
            "node": None,
            "host": self.host,
            "address": None,
            "pid": os.getpid(),
            "cpu": round(self._my_cpu(), 3),
            "results_per_s": round(sum(c["results_per_s"] for c in cameras), 2),
            "cameras": cameras,
            "error": None,
        }

    def _my_cpu(self) -> float:
        """This process's CPU seconds per second since the previous look (a second apart
        at least)."""
        cpu, at, rate = self._mine
        now = time.monotonic()
        if now - at >= 1.0:
            spent = time.process_time()
            rate = (spent - cpu) / (now - at)
            self._mine = (spent, now, rate)
        return rate

    def _group(self, g, nodes: dict) -> dict:
        load = self.engine.load
        cameras = self._cameras(g.plan.specs)
        where = getattr(g, "where", None)
        node = None if where is None else nodes.get(where[0], {"id": where[0]})
        return {
            "index": g.index,
            "state": self._state(g, cameras),
            "deaths": load.deaths.get(g.index, 0),
            "here": self.nodes is None,
            "node": None if node is None else node["id"],
            "host": self.host if self.nodes is None else None if node is None else node.get("host"),
            "address": None if node is None else node.get("address"),
            "pid": g.pid,
            "cpu": None if g.pid == 0 else _rounded(load.cpu.get(g.index)),
            "results_per_s": round(sum(c["results_per_s"] for c in cameras), 2),
            "cameras": cameras,
            "error": g.error or g.unplaced,
        }

    def _state(self, g, cameras: list[dict]) -> str:
        """``running``, ``starting`` (its process or actor is starting, again after a
        death too), ``restarting`` (dead, to start again), ``not placed`` (Ray has no room
        for it), ``given up`` (dead too often, or could not start) or ``ended``."""
        if g.done:
            return "given up" if g.error else "ended"
        if g.restart_at is not None or not g.alive:
            return "restarting"
        if g.unplaced is not None:
            return "not placed"
        heard = [self.tally.heard.get(v, -1.0) for c in cameras for v in c["views"]]
        return "running" if max(heard, default=-1.0) >= g.started_at else "starting"


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
