"""Camera groups on a simulated Ray cluster, and what a lost node costs them.

``python -m vidcls.bench.cluster [--nodes N] [--cameras 24] [--tries 3] CLIP...`` starts N Ray
worker nodes on this machine (``ray.cluster_utils.Cluster``, a head without CPUs; each node
its share of the cores, at least two logical CPUs, so a lost node's group has room on
another), runs ``cameras`` cameras (the clips, looped at real speed) in N groups (Ray
actors, spread over the nodes, as ``vidcls live --ray`` runs them) and, per try, kills the
processes of the node that holds group 1 (not drained: as a machine lost). Per try it
prints a JSON line: seconds from the kill to every moved camera's ``online``, offline/online
pairs per moved camera, offline events of the other cameras, events handed on twice, and
results per second per camera before the loss. The node is added back between tries.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections import Counter
from pathlib import Path

from ..live.outputs import Output

MB = 1024 * 1024


class Watched(Output):
    """Each view's status changes with their times, every event id, results per view."""

    def __init__(self) -> None:
        self.changes: dict[str, list[tuple[bool, float]]] = {}
        self.ids: list[str] = []
        self.results: Counter = Counter()
        self.lock = threading.Lock()

    def result(self, source, result) -> None:
        self.results[str(source)] += 1

    def event(self, source, event) -> None:
        self.ids.append(event.id)

    def status(self, source, online) -> None:
        with self.lock:
            self.changes.setdefault(str(source), []).append((online, time.monotonic()))

    def online(self, view: str) -> bool:
        with self.lock:
            changes = self.changes.get(view, [])
            return bool(changes) and changes[-1][0]


def _wait(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def one_try(cluster, plan, settle: float, timeout: float = 120.0) -> dict:
    """Run ``plan``, lose group 1's node once every camera is online and ``settle`` seconds
    passed, wait for its cameras, run ``settle`` seconds more, stop; the figures."""
    out = Watched()
    engine = plan.engine(plan.load(), out)
    runner = threading.Thread(target=engine.run, daemon=True)
    runner.start()
    views = [str(v) for v in engine.group_of]
    try:
        _wait(lambda: all(out.online(v) for v in views), timeout)
        time.sleep(settle)
        counted, begun = dict(out.results), time.monotonic()
        time.sleep(settle)
        rate = {v: (out.results[v] - counted.get(v, 0)) / (time.monotonic() - begun) for v in views}
        moved = [str(v) for v in engine.groups[1].views]
        node_id = engine.groups[1].where[0]
        node = next(n for n in cluster.worker_nodes if n.node_id == node_id)
        lost = time.monotonic()
        cluster.remove_node(node, allow_graceful=False)
        back = _wait(lambda: all(_came_back(out, v, lost) for v in moved), timeout)
        last = max((_came_back(out, v, lost) or lost) for v in moved)
        time.sleep(settle)
    finally:
        engine.request_stop()
        runner.join(timeout)
    stayed = [v for v in views if v not in moved]
    repeated = sum(n - 1 for n in Counter(out.ids).values() if n > 1)
    return {
        "cameras": len(views),
        "moved": len(moved),
        "back": back,
        "seconds_to_all_back": round(last - lost, 2) if back else None,
        "pairs_per_moved": sorted({_pairs(out, v, lost) for v in moved}),
        "offline_of_others": sum(_pairs(out, v, lost) for v in stayed),
        "events": len(out.ids),
        "repeated": repeated,
        "results_per_s_per_camera": round(sum(rate.values()) / len(rate), 2),
        "deaths": engine.deaths,
    }


def _came_back(out: Watched, view: str, lost: float) -> float | None:
    """When ``view`` said ``online`` after going offline past ``lost`` (None: not yet)."""
    with out.lock:
        changes = [c for c in out.changes.get(view, []) if c[1] >= lost]
    went = next((i for i, (online, _) in enumerate(changes) if not online), None)
    if went is None:
        return None
    return next((t for online, t in changes[went:] if online), None)


def _pairs(out: Watched, view: str, lost: float) -> int:
    """Offline changes of ``view`` after ``lost`` and before the run's end."""
    with out.lock:
        changes = [c for c in out.changes.get(view, []) if c[1] >= lost]
    return sum(1 for online, _ in changes[:-1] if not online)


def main(argv: list[str] | None = None) -> None:
    import os

    import ray
    from ray.cluster_utils import Cluster

    from ..live.build import Plan, classifier_options
    from ..live.sources import SourceSpec

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("clips", nargs="+", help="video files, looped as the cameras")
    p.add_argument("--nodes", type=int, default=2)
    p.add_argument("--cameras", type=int, default=24)
    p.add_argument("--tries", type=int, default=3)
    p.add_argument("--settle", type=float, default=5.0, help="seconds before and after a loss")
    p.add_argument("--model", default="a0")
    args = p.parse_args(argv)
    cpus = max(2, (os.cpu_count() or 1) // args.nodes)
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 0, "object_store_memory": 80 * MB}
    )
    for _ in range(args.nodes):
        cluster.add_node(num_cpus=cpus, object_store_memory=80 * MB)
    ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
    cluster.wait_for_nodes()
    clips = [str(Path(c).resolve()) for c in args.clips]
    specs = [SourceSpec(f"cam{i:02d}", clips[i % len(clips)]) for i in range(args.cameras)]
    plan = Plan(
        classifier_options({"model": args.model}),
        specs,
        loop=True,
        groups=args.nodes,
        ray=cluster.address,
    )
    try:
        for i in range(args.tries):
            figures = one_try(cluster, plan, args.settle)
            print(json.dumps({"try": i + 1, "nodes": args.nodes, **figures}), flush=True)
            cluster.add_node(num_cpus=cpus, object_store_memory=80 * MB)
    finally:
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    main()
