"""Camera groups as Ray actors (``--ray``) on a real Ray: a started one, and a simulated
cluster (a head without CPUs and two worker nodes, ``ray.cluster_utils.Cluster``) shared by
the tests that need one. Files replayed on a virtual clock give what one process gives; a
node lost moves its group to the other node; clips reach the driver's folder."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time

import av
import pytest
from cli_here import run_here
from cli_run import assert_clean_error, run
from conftest import end_facts, four_cameras, needs_shared, video
from test_live_groups import Collect, _shape, _wait

from vidcls.config import load_config
from vidcls.live.build import from_config

ray = pytest.importorskip("ray", reason="--ray needs: pip install -e '.[ray]'")
pytestmark = needs_shared
MB = 1024 * 1024
VIEWS = ["ice", "eye", "android", "zoned/left"]


def _run(plan, outputs, **kw):
    engine = plan.engine(plan.load(), outputs)
    engine.run(**kw)
    return engine


def test_without_ray_or_at_a_bad_address_the_command_says_so_in_one_line(
    tmp_path, capfd, monkeypatch
):
    """Run here (``vidcls live --ray ADDRESS`` runs as a command in the tests below)."""
    if ray.is_initialized():  # left by another test in this process: it would be joined
        ray.shutdown()
    config = four_cameras(tmp_path)
    r = run_here(capfd, "live", "--config", config, "--ray", "127.0.0.1:1")
    assert_clean_error(r, "127.0.0.1:1")
    monkeypatch.setitem(sys.modules, "ray", None)  # Ray not installed, as far as vidcls can tell
    r = run_here(capfd, "live", "--config", config, "--ray")
    assert_clean_error(r, "pip install 'vidcls[ray]'")


def test_a_ray_started_here_runs_the_group_and_is_shut_down_after(tmp_path):
    """``--ray`` without an address: a Ray of its own, one actor, shut down at the end."""
    if ray.is_initialized():  # left by another test in this process
        ray.shutdown()
    here = Collect()
    engine = _run(from_config(load_config(four_cameras(tmp_path)), groups=1, ray=""), here)
    assert not ray.is_initialized()
    assert engine.unopened() == {} and engine.deaths == 0
    for view in VIEWS:
        assert len(here.of("result", view)) > 20 and here.of("status", view) == [True, False]


@pytest.fixture(scope="module")
def _cluster():
    from ray.cluster_utils import Cluster

    from vidcls.bench.cluster import HEAD

    if ray.is_initialized():
        ray.shutdown()
    c = Cluster(initialize_head=True, head_node_args=HEAD)
    ray.init(address=c.address, include_dashboard=False, log_to_driver=False)
    yield c
    ray.shutdown()
    c.shutdown()


@pytest.fixture
def cluster(_cluster):
    """The module's cluster with two worker nodes of two CPUs (a node a test before removed
    is replaced now, only for a test that needs it), every node Ray knows alive."""
    while len(_cluster.worker_nodes) < 2:
        _cluster.add_node(num_cpus=2, object_store_memory=80 * MB)
    _cluster.wait_for_nodes()
    return _cluster


@pytest.fixture(scope="module")
def one_process(tmp_path_factory) -> Collect:
    """What one process gives on the four cameras (replayed), for the cluster to match."""
    one = Collect()
    config = four_cameras(tmp_path_factory.mktemp("one"))
    _run(from_config(load_config(config), groups=1), one)
    return one


def _all_cpus_free(timeout: float = 60.0) -> None:
    """Every actor gone: the cluster's CPUs all free again (a hang guard)."""
    _wait(
        lambda: ray.available_resources().get("CPU", 0) == ray.cluster_resources()["CPU"],
        timeout,
    )


def test_on_a_cluster_the_groups_give_what_one_process_gives_and_clips_reach_here(
    cluster, one_process, tmp_path
):
    ray_clips = tmp_path / "clips"
    config = four_cameras(tmp_path, f"clips: {{folder: {ray_clips}}}")
    one, spread = one_process, Snapshots()
    engine = _run(from_config(load_config(config), groups=2, ray=cluster.address), spread)
    assert engine.unopened() == {} and engine.deaths == 0
    assert {g.where[0] for g in engine.groups} <= {n.node_id for n in cluster.worker_nodes}
    for view in VIEWS:
        assert _shape(spread, view) == _shape(one, view), view
        assert spread.of("status", view) == [True, False]
    ends = [e for i in spread.items if i[0] == "event" for e in [i[2]] if e.kind == "end"]
    clips = [e.clip for e in ends if e.clip is not None]
    assert clips and all(e.snapshot for e in ends)
    assert spread.snapshots == [e.snapshot for e in ends]  # each there as its event went out
    for path in clips:  # written here, at its place under the configured folder, playable
        assert path.startswith(str(ray_clips)), path
        with av.open(path) as f:
            assert sum(1 for _ in f.decode(video=0)) > 5
    _all_cpus_free()


class Snapshots(Collect):
    """Each snapshot an event names that is on disk as the event is handed on (as the MQTT
    sink reads it)."""

    def __init__(self) -> None:
        super().__init__()
        self.snapshots: list[str] = []

    def event(self, source, event):
        super().event(source, event)
        if event.snapshot is not None and os.path.isfile(event.snapshot):
            self.snapshots.append(event.snapshot)


def test_an_event_goes_at_once_its_snapshot_just_ahead_its_clip_once_written(tmp_path):
    """The actor's outbox: an end event is not held for its clip (as on one box); the
    snapshot goes just before it, the clip when written, both to their places here."""
    from vidcls.live.ray_actor import Outbox
    from vidcls.results import Segment, SegmentEvent

    local, here = tmp_path / "node", tmp_path / "here"
    (local / "cam").mkdir(parents=True)
    snapshot, clip = local / "cam" / "a.jpg", local / "cam" / "a.mp4"
    snapshot.write_bytes(b"jpeg")
    outbox = Outbox(local, str(here), post_roll=3.0)
    segment = Segment("situp", 1, 1.0, 2.0, 0.9)
    end = SegmentEvent("end", 2.0, segment, clip=str(clip), snapshot=str(snapshot))
    outbox.send([("e", "cam", end, time.monotonic()), ("s", "cam", True, time.monotonic())])
    items, last = outbox.take(0.0)
    assert not last and [i[0] for i in items] == ["f", "e", "s"]
    assert items[0][1:] == (("clip", "cam/a.jpg"), b"jpeg")
    assert items[1][2].snapshot == str(here / "cam" / "a.jpg")
    assert items[1][2].clip == str(here / "cam" / "a.mp4")
    assert outbox.take(0.0) == ([], False)  # the clip is being written
    clip.write_bytes(b"mp4")
    assert outbox.take(0.0) == ([("f", ("clip", "cam/a.mp4"), b"mp4")], False)
    outbox.close()
    assert outbox.take(0.0) == ([("done", [], {})], True)


def test_live_and_serve_join_the_cluster_with_the_same_events(cluster, one_process, tmp_path):
    pytest.importorskip("fastapi", reason="the server needs: pip install -e '.[serve]'")
    from fastapi.testclient import TestClient

    from vidcls.events import event_doc
    from vidcls.serve import ServeOptions
    from vidcls.serve.app import create_app

    config = four_cameras(tmp_path, "groups: 2")
    here = end_facts(event_doc(s, e) for k, s, e in one_process.items if k == "event")
    out = tmp_path / "live.jsonl"
    r = run("live", "--config", config, "-o", out, "--ray", cluster.address)
    assert r.returncode == 0, r.stderr
    lives = [here, end_facts(json.loads(line) for line in out.read_text().splitlines())]
    options = ServeOptions(
        config=str(config), data=str(tmp_path / "data"), max_threads=1, ray=cluster.address
    )
    with TestClient(create_app(options)) as client:
        _wait(lambda: client.get("/healthz").json()["cameras"] == "done")
        served = end_facts(client.get("/api/events").json()["events"])
    assert lives[0] and lives[0] == lives[1] == served
    _all_cpus_free()


def test_while_running_a_switch_and_an_asked_clip_reach_the_groups_and_one_without_room_waits(
    cluster, tmp_path, monkeypatch
):
    """Five groups of one CPU on four CPUs: the fifth waits, and its camera is reported (not
    silently dropped). A model switch (a file with its labels beside it) reaches every
    running group's cameras; a clip asked of a camera comes to the path asked for, here;
    stopping leaves nothing behind. On the real clock: looped files replayed as fast as the
    CPU goes would keep every core busy while it waits."""
    from conftest import CUSTOM

    from vidcls.live import ray_groups

    if not CUSTOM.is_file():
        pytest.skip(f"{CUSTOM} not found")
    monkeypatch.setattr(ray_groups, "PLACE_WAIT", 1.0)
    config = four_cameras(tmp_path, f"loop: true\nclips: {{folder: {tmp_path / 'clips'}}}")
    text = config.read_text().replace("replay: true", "")
    config.write_text(text + f"  more: {{source: {video('carving_ice_rpi.mp4')}}}\n")
    out = Collect()
    plan = from_config(load_config(config), groups=5, ray=cluster.address)
    engine = plan.engine(plan.load(), out)
    runner = threading.Thread(target=engine.run)
    runner.start()
    cameras = ["ice", "eye", "android", "zoned", "more"]

    def running():
        return [c for c in cameras if out.of("result", c) or out.of("result", f"{c}/left")]

    def custom(camera):  # its last results carry the new model's labels
        results = out.of("result", camera) or out.of("result", f"{camera}/left")
        return results and {r.top[0].label for r in results[-2:] if r.top} <= labels

    labels = set(CUSTOM.with_name("labels.txt").read_text().split())
    asked = tmp_path / "asked.mp4"
    try:  # four groups run, one is reported
        _wait(lambda: len(running()) == 4 and len(engine.unopened()) == 1)
        waiting, moving = engine.unopened(), running()
        engine.switch_model(str(CUSTOM))
        _wait(lambda: all(custom(c) for c in moving))
        assert engine.record(moving[0], 1.0, str(asked))
        _wait(lambda: asked.is_file())
    finally:
        engine.request_stop()
        runner.join(120)
    assert not runner.is_alive()
    assert set(waiting) == set(cameras) - set(moving)
    assert "no place on a Ray node" in next(iter(waiting.values()))
    with av.open(str(asked)) as f:
        assert sum(1 for _ in f.decode(video=0)) > 5
    _all_cpus_free()


def test_a_lost_node_moves_its_group_and_its_cameras_come_back(cluster, tmp_path):
    """Group 1 (android, zoned) loses its node (killed, not drained) once android's segment
    has started: its views go offline once and come back online once on the other node, the
    open segment ends interrupted, every start has one end, no event comes twice; group 0
    (ice, eye) never goes offline. Stopped once both views play again there (20 video
    seconds at most)."""
    config = load_config(four_cameras(tmp_path, "loop: true"))
    engine, lost, moved = None, {}, ("android", "zoned/left")

    def playing_again(view) -> bool:  # online after the loss, and results after that
        since = out.items[lost["items"] :]
        back = next((i for i, item in enumerate(since) if item[1:] == (view, True)), None)
        return back is not None and sum(i[:2] == ("result", view) for i in since[back:]) >= 3

    def remove(view, result):
        started = [e for e in out.of("event", "android") if e.kind == "start"]
        if view == "android" and started and not lost:
            node_id = engine.groups[1].where[0]
            node = next(n for n in cluster.worker_nodes if n.node_id == node_id)
            lost.update(node=node_id, at=time.monotonic(), items=len(out.items))
            cluster.remove_node(node, allow_graceful=False)
        elif lost and view in moved and all(playing_again(v) for v in moved):
            engine.request_stop()

    out = Collect(remove)
    plan = from_config(config, groups=2, ray=cluster.address)
    engine = plan.engine(plan.load(), out)
    engine.run(duration=20)
    assert lost and engine.deaths == 1
    assert engine.groups[1].where[0] != lost["node"]
    for view in ("ice", "eye"):
        assert out.of("status", view) == [True, False], view
    for view in ("android", "zoned/left"):
        assert out.of("status", view) == [True, False, True, False], view
        back = [i for i in out.items[lost["items"] :] if i[1:] == (view, True)]
        assert back, view
    ends = [e for e in out.of("event", "android") if e.kind == "end"]
    interrupted = [e for e in ends if e.interrupted]
    assert len(interrupted) == 1
    ids = [i[2].id for i in out.items if i[0] == "event"]
    assert len(ids) == len(set(ids))  # no event given twice
    for view in VIEWS:  # every start has exactly one end
        events = out.of("event", view)
        starts = {e.id for e in events if e.kind == "start"}
        ended = [e.start_id for e in events if e.kind == "end"]
        assert sorted(ended) == sorted(starts), view
    _all_cpus_free()


def test_a_group_that_dies_starts_again_on_another_node_if_one_has_room(cluster, tmp_path):
    """Three groups on two nodes of two CPUs: the one alone on its node crashes (its process
    killed); the other node is full, so it starts again where it was (its node lives on).
    Then one on the full node crashes: it starts again on the other node, not on its own,
    which has a CPU free again and which Ray alone could have chosen. Decoding in each
    group's threads (decoding processes in actors: the tests above)."""
    path = four_cameras(tmp_path, "loop: true")
    path.write_text(path.read_text().replace("replay: true", ""))  # on the real clock
    out = Collect()
    plan = from_config(load_config(path), groups=3, ray=cluster.address, decoders=0)
    engine = plan.engine(plan.load(), out)
    runner = threading.Thread(target=engine.run)
    runner.start()

    def online():
        return all(out.of("status", v)[-1:] == [True] for v in VIEWS)

    def crash(g, deaths: int) -> tuple[str, int]:
        _wait(lambda: online() and all(h.where is not None for h in engine.groups))
        was = g.where
        os.kill(was[1], signal.SIGKILL)
        _wait(lambda: engine.deaths == deaths and g.where is not None and g.where != was)
        _wait(online)
        return was

    try:
        _wait(lambda: all(h.where is not None for h in engine.groups))
        nodes = [h.where[0] for h in engine.groups]
        alone = next(h for h in engine.groups if nodes.count(h.where[0]) == 1)
        was = crash(alone, 1)
        assert alone.avoid == was[0] and alone.where[0] == was[0]  # no other node had room
        full = next(h for h in engine.groups if h is not alone)
        was = crash(full, 2)
        assert full.avoid == was[0] and full.where[0] != was[0]
    finally:
        engine.request_stop()
        runner.join(120)
    assert not runner.is_alive() and engine.deaths == 2
    for g in (alone, full):
        for view in g.views:
            assert out.of("status", view)[:3] == [True, False, True], view
    ids = [i[2].id for i in out.items if i[0] == "event"]
    assert len(ids) == len(set(ids))
    _all_cpus_free()


def test_bench_cluster_measures_both_engines_and_a_lost_node(cluster, monkeypatch):
    """A tiny ``vidcls bench --cluster``: four cameras, one process then two groups on the
    cluster, one node lost; the report's figures are there and agree with each other."""
    from conftest import MODELS

    from vidcls.bench import cluster as bench
    from vidcls.live.build import Plan, classifier_options
    from vidcls.live.sources import SourceSpec

    monkeypatch.setattr(bench, "WARMUP", 0.5)
    monkeypatch.setattr(bench, "SETTLE", 0.2)
    model = str(MODELS / "movinet_a0_stream_int8.tflite")
    names = ["carving_ice_rpi.mp4", "eye_makeup.avi"]
    specs = [SourceSpec(f"cam{i}", str(video(names[i % 2]))) for i in range(4)]
    plan = Plan(classifier_options({"model": model}), specs, loop=True)
    report = bench.measure_cluster(cluster, plan, seconds=1.0, rounds=1, cpus=2)
    assert (report.nodes, report.groups, report.cameras) == (2, 2, 4)
    for figures in (report.one, report.cluster):
        assert 0 < figures.rate_min <= figures.rate_mean and figures.p99_ms > 0
    (loss,) = report.losses
    assert loss.moved == 2 and loss.seconds is not None and loss.deaths >= 1
    assert loss.pairs == [1] and loss.others_offline == 0  # a pair per moved camera
    assert loss.repeated == 0 and loss.lost == 0 and report.unended == 0
    assert loss.interrupted <= loss.started_before
    lines = report.lines()
    assert len(lines) == 8 and lines[-2].split()[:2] == ["1", "2"]
    _all_cpus_free()
