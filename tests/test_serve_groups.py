"""``GET /api/groups`` on a real ``vidcls serve --config``: the cameras' groups, where each
runs and its load. Processes: every camera in one group, each group a live process; a group
killed (-9) comes back in a new process with its death counted; sign-in guards the route.
Ray (a simulated cluster of this machine, the server's app in this process): groups carry
their node, nodes their CPUs, a group without room is "not placed" until a node joins and
takes it."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest
from conftest import MODELS, ROOT, needs_shared, video
from serve_process import ServerProcess, server_env

from vidcls.serve.users import Users

pytestmark = needs_shared
pytest.importorskip("fastapi", reason="the server needs: pip install -e '.[serve]'")
HANG = 180  # seconds: a hang guard for a state to come, not a measure of speed
MB = 1024 * 1024


def _config(tmp_path, extra: str, names: list[str]):
    clips = {"ice": "carving_ice_rpi.mp4", "eye": "eye_makeup.avi"}
    clips["android"] = "carving_ice_android.mp4"
    lines = [f"  {n}: {{source: {video(clips[n])}}}" for n in names]
    path = tmp_path / "cameras.yml"
    path.write_text("loop: true\n" + extra + "cameras:\n" + "\n".join(lines) + "\n")
    return path


def _until(get, check, what: str, server: ServerProcess | None = None) -> dict:
    """``get()`` until ``check`` passes on it (a hang guard of HANG seconds)."""
    deadline = time.monotonic() + HANG
    while True:
        doc = get()
        if check(doc):
            return doc
        log = "" if server is None else server.output()
        assert time.monotonic() < deadline, f"no {what} in {HANG} s: {doc}\n{log}"
        time.sleep(0.3)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_process_groups_are_listed_and_one_killed_comes_back_in_a_new_process(tmp_path):
    config = _config(tmp_path, "groups: 2\n", ["ice", "eye", "android"])
    data = tmp_path / "data"
    users = Users(data)
    users.add("vic", "viewer-password", role="viewer")
    _, token = users.new_token("vic")
    args = ["--config", str(config), "--data", str(data), "--auth", "--log-level", "warning"]
    with ServerProcess(args, server_env(tmp_path / "cache", MODELS), tmp_path / "log") as s:
        anonymous = httpx.get(s.url + "/api/groups", timeout=30)
        assert anonymous.status_code == 401, anonymous.text

        def get() -> dict:
            r = httpx.get(s.url + "/api/groups", headers={"authorization": f"Bearer {token}"})
            assert r.status_code == 200, r.text
            return r.json()

        def settled(doc: dict) -> bool:
            return all(g["state"] == "running" and g["cpu"] is not None for g in doc["groups"])

        doc = _until(get, settled, "two running groups", s)
        assert doc["cameras"] == "watching" and doc["transport"] == "processes"
        assert doc["nodes"] is None and doc["failed_cameras"] == {}
        groups = doc["groups"]
        assert [g["index"] for g in groups] == [0, 1]
        named = sorted(c["name"] for g in groups for c in g["cameras"])
        assert named == ["android", "eye", "ice"]  # every camera in exactly one group
        pids = [g["pid"] for g in groups]
        assert len(set(pids)) == 2 and s.proc.pid not in pids and all(map(_alive, pids))
        assert all(g["here"] and g["deaths"] == 0 and g["cpu"] >= 0 for g in groups)

        os.kill(pids[0], signal.SIGKILL)
        seen = set()

        def back(doc: dict) -> bool:
            g = doc["groups"][0]
            seen.add(g["state"])
            return g["deaths"] == 1 and g["state"] == "running" and g["pid"] not in (0, pids[0])

        doc = _until(get, back, "group 0 back in a new process", s)
        assert _alive(doc["groups"][0]["pid"]) and not _alive(pids[0])
        other = doc["groups"][1]
        assert other["deaths"] == 0 and other["pid"] == pids[1] and other["state"] == "running"
        assert [c["name"] for c in doc["groups"][0]["cameras"]] == [
            c["name"] for c in groups[0]["cameras"]
        ]
        assert seen  # what was seen on the way (starting, or running already)
        if Path("/usr/bin/chromium").exists():
            _page_shows_the_groups(s, token, doc)


def _page_shows_the_groups(s: ServerProcess, token: str, doc: dict) -> None:
    """The events page's Cameras strip in headless Chromium: this machine, two groups,
    their cameras with a state dot."""
    playwright = pytest.importorskip("playwright.sync_api")
    args = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"]  # fmt: skip
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=args)
        page = browser.new_page(
            viewport={"width": 900, "height": 900},
            extra_http_headers={"authorization": f"Bearer {token}"},
        )
        page.set_default_timeout(120_000)  # waits end when their condition holds (hang guard)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(s.url + "/events")
        page.wait_for_selector("#groups:not([hidden]) .group[data-state=running] .dot.ok")
        page.wait_for_function("document.querySelectorAll('#groups .group').length === 2")
        text = page.inner_text("#groups")
        for c in (c for g in doc["groups"] for c in g["cameras"]):
            assert c["name"] in text
        assert "group 0" in text and "group 1" in text and "1 death" in text
        assert page.locator("#groups .node").count() == 1  # this machine
        (ROOT / "test-artifacts").mkdir(exist_ok=True)
        page.screenshot(path=ROOT / "test-artifacts" / "web_groups.png")
        browser.close()
    assert errors == []


def test_ray_groups_carry_their_node_and_one_without_room_waits_for_a_node(tmp_path, monkeypatch):
    """A cluster of one CPU (the head) and two groups: one runs there, the other is not
    placed; a node that joins takes it. The server in this process (the Ray driver), so that
    a group is reported "not placed" after 1 s instead of 15."""
    ray = pytest.importorskip("ray", reason="--ray needs: pip install -e '.[ray]'")
    from fastapi.testclient import TestClient
    from ray.cluster_utils import Cluster

    from vidcls.bench.cluster import HEAD
    from vidcls.cli import build_parser
    from vidcls.cli.serve import serve_options
    from vidcls.live import ray_groups
    from vidcls.serve.app import create_app

    monkeypatch.setattr(ray_groups, "PLACE_WAIT", 1.0)
    if ray.is_initialized():  # left by another test in this process
        ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={**HEAD, "num_cpus": 1})
    try:
        config = _config(tmp_path, "groups: 2\n", ["ice", "eye"])
        args = ["serve", "--config", str(config), "--data", str(tmp_path / "data")]
        args += ["--ray", cluster.address]  # the command's flags, made into its options
        options = serve_options(build_parser().parse_args(args))
        assert options.ray == cluster.address
        with TestClient(create_app(options)) as client:

            def get() -> dict:
                r = client.get("/api/groups")
                assert r.status_code == 200, r.text
                return r.json()

            def one_waits(doc: dict) -> bool:
                states = sorted(g["state"] for g in doc["groups"])
                return states == ["not placed", "running"]

            doc = _until(get, one_waits, "one group running, one not placed")
            assert doc["transport"] == "ray"
            [node] = doc["nodes"]
            assert node["alive"] and node["cpus"] == 1 and node["address"]
            running = next(g for g in doc["groups"] if g["state"] == "running")
            waiting = next(g for g in doc["groups"] if g["state"] == "not placed")
            assert running["node"] == node["id"] and running["pid"] > 0 and not running["here"]
            assert running["pid"] != os.getpid()  # in a Ray worker, not the server
            assert node["groups"] == [running["index"]]
            assert waiting["node"] is None and waiting["pid"] == 0 and waiting["error"]
            assert set(doc["failed_cameras"]) == {c["name"] for c in waiting["cameras"]}

            cluster.add_node(num_cpus=1, object_store_memory=80 * MB)

            def both_run(doc: dict) -> bool:
                return [g["state"] for g in doc["groups"]] == ["running", "running"] and len(
                    {n["id"] for n in doc["nodes"] if n["cpus"] == 1 and n["groups"]}
                ) == 2

            doc = _until(get, both_run, "the joined node running the waiting group")
            moved = doc["groups"][waiting["index"]]
            assert moved["node"] not in (None, node["id"]) and moved["error"] is None
            assert moved["deaths"] == 0 and doc["failed_cameras"] == {}
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()
