"""Camera groups as Ray actors (``--ray``) on a real Ray: a started one, and a simulated
cluster (a head without CPUs and two worker nodes, ``ray.cluster_utils.Cluster``) shared by
the tests that need one. Files replayed on a virtual clock give what one process gives; a
node lost moves its group to the other node; clips reach the driver's folder."""

from __future__ import annotations

import json
import sys
import threading
import time

import av
import pytest
from cli_run import assert_clean_error, run
from conftest import needs_shared, video
from test_live_groups import Collect, _shape, _wait

from vidcls.config import load_config
from vidcls.live.build import from_config

ray = pytest.importorskip("ray", reason="--ray needs: pip install -e '.[ray]'")
pytestmark = needs_shared
MB = 1024 * 1024
VIEWS = ["ice", "eye", "android", "zoned/left"]


def _config(tmp_path, extra: str = ""):
    path = tmp_path / "cameras.yml"
    path.write_text(
        f"""\
replay: true
min_duration: 0.4
{extra}
cameras:
  ice: {{source: {video("carving_ice_rpi.mp4")}}}
  eye: {{source: {video("eye_makeup.avi")}}}
  android: {{source: {video("carving_ice_android.mp4")}}}
  zoned:
    source: {video("eye_makeup.avi")}
    zones: {{left: [0, 0, 0.5, 1]}}
"""
    )
    return path


def _run(plan, outputs, **kw):
    engine = plan.engine(plan.load(), outputs)
    engine.run(**kw)
    return engine


def test_without_ray_or_at_a_bad_address_the_command_says_so_in_one_line(tmp_path):
    config = _config(tmp_path)
    r = run("live", "--config", config, "--ray", "127.0.0.1:1")
    assert_clean_error(r, "127.0.0.1:1")
    code = (  # Ray not installed, as far as vidcls can tell
        "import sys; sys.modules['ray'] = None; from vidcls.cli import main; "
        f"sys.exit(main(['live', '--config', {str(config)!r}, '--ray']))"
    )
    r = run_python(code)
    assert_clean_error(r, "pip install 'vidcls[ray]'")


def run_python(code: str):
    import subprocess

    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


def test_a_ray_started_here_runs_the_group_and_is_shut_down_after(tmp_path):
    """``--ray`` without an address: a Ray of its own, one actor, shut down at the end."""
    if ray.is_initialized():  # left by another test in this process
        ray.shutdown()
    here = Collect()
    engine = _run(from_config(load_config(_config(tmp_path)), groups=1, ray=""), here)
    assert not ray.is_initialized()
    assert engine.unopened() == {} and engine.deaths == 0
    for view in VIEWS:
        assert len(here.of("result", view)) > 20 and here.of("status", view) == [True, False]


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    c = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 0, "object_store_memory": 80 * MB}
    )
    for _ in range(2):
        c.add_node(num_cpus=2, object_store_memory=80 * MB)
    ray.init(address=c.address, include_dashboard=False, log_to_driver=False)
    c.wait_for_nodes()
    yield c
    ray.shutdown()
    c.shutdown()


def _all_cpus_free(timeout: float = 60.0) -> None:
    """Every actor gone: the cluster's CPUs all free again (a hang guard)."""
    _wait(
        lambda: ray.available_resources().get("CPU", 0) == ray.cluster_resources()["CPU"],
        timeout,
    )


def test_on_a_cluster_the_groups_give_what_one_process_gives_and_clips_reach_here(
    cluster, tmp_path
):
    ray_clips = tmp_path / "clips"
    config = _config(tmp_path)
    one, spread = Collect(), Collect()
    _run(from_config(load_config(config), groups=1), one)
    text = config.read_text().replace(
        "replay: true", f"replay: true\nclips: {{folder: {ray_clips}}}"
    )
    config.write_text(text)
    engine = _run(from_config(load_config(config), groups=2, ray=cluster.address), spread)
    assert engine.unopened() == {} and engine.deaths == 0
    assert {g.where[0] for g in engine.groups} <= {n.node_id for n in cluster.worker_nodes}
    for view in VIEWS:
        assert _shape(spread, view) == _shape(one, view), view
        assert spread.of("status", view) == [True, False]
    ends = [e for i in spread.items if i[0] == "event" for e in [i[2]] if e.kind == "end"]
    clips = [e.clip for e in ends if e.clip is not None]
    assert clips and all(e.snapshot for e in ends)
    for path in clips:  # written here, at its place under the configured folder, playable
        assert path.startswith(str(ray_clips)), path
        with av.open(path) as f:
            assert sum(1 for _ in f.decode(video=0)) > 5
    _all_cpus_free()


def _ends(docs) -> list[tuple]:
    out = []
    for d in docs:
        if d.get("event") == "end":
            s = d["segment"]
            out.append((d["source"], d.get("zone"), s["label"], s["start"], s["end"], s["peak"]))
    return sorted(out)


def test_live_and_serve_join_the_cluster_with_the_same_events(cluster, tmp_path):
    pytest.importorskip("fastapi", reason="the server needs: pip install -e '.[serve]'")
    from fastapi.testclient import TestClient

    from vidcls.events import event_doc
    from vidcls.serve import ServeOptions
    from vidcls.serve.app import create_app

    config = _config(tmp_path, "groups: 2")
    one = Collect()
    _run(from_config(load_config(config), groups=1), one)
    here = _ends(event_doc(s, e) for k, s, e in one.items if k == "event")
    out = tmp_path / "live.jsonl"
    r = run("live", "--config", config, "-o", out, "--ray", cluster.address)
    assert r.returncode == 0, r.stderr
    lives = [here, _ends(json.loads(line) for line in out.read_text().splitlines())]
    options = ServeOptions(
        config=str(config), data=str(tmp_path / "data"), max_threads=1, ray=cluster.address
    )
    with TestClient(create_app(options)) as client:
        _wait(lambda: client.get("/healthz").json()["cameras"] == "done")
        served = _ends(client.get("/api/events").json()["events"])
    assert lives[0] and lives[0] == lives[1] == served
    _all_cpus_free()


def test_while_running_a_switch_and_an_asked_clip_reach_the_groups_and_one_without_room_waits(
    cluster, tmp_path, monkeypatch
):
    """Five groups of one CPU on four CPUs: the fifth waits, and its camera is reported (not
    silently dropped). A model switch (a file with its labels beside it) reaches every
    running group's cameras; a clip asked of a camera comes to the path asked for, here;
    stopping leaves nothing behind."""
    from conftest import CUSTOM

    from vidcls.live import ray_groups

    if not CUSTOM.is_file():
        pytest.skip(f"{CUSTOM} not found")
    monkeypatch.setattr(ray_groups, "PLACE_WAIT", 1.0)
    config = _config(tmp_path, f"loop: true\nclips: {{folder: {tmp_path / 'clips'}}}")
    config.write_text(config.read_text() + f"  more: {{source: {video('carving_ice_rpi.mp4')}}}\n")
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
    (ice, eye) never goes offline."""
    config = load_config(_config(tmp_path, "loop: true"))
    engine, lost = None, {}

    def remove(view, result):
        started = [e for e in out.of("event", "android") if e.kind == "start"]
        if view == "android" and started and not lost:
            node_id = engine.groups[1].where[0]
            node = next(n for n in cluster.worker_nodes if n.node_id == node_id)
            lost.update(node=node_id, at=time.monotonic(), items=len(out.items))
            cluster.remove_node(node, allow_graceful=False)

    out = Collect(remove)
    plan = from_config(config, groups=2, ray=cluster.address)
    engine = plan.engine(plan.load(), out)
    try:
        engine.run(duration=20)
    finally:
        cluster.add_node(num_cpus=2, object_store_memory=80 * MB)  # for the tests after
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
