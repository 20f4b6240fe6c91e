"""The one builder from a cameras config to a running engine: the layers of options (the
builder's defaults, the CLI's flags, the file, the forcing flags), and a group's share."""

from __future__ import annotations

import textwrap
import time

import pytest
from cli_run import run
from conftest import end_facts, needs_shared, video

from vidcls.config import load_config
from vidcls.live.build import Plan, classifier_options, from_config

CONFIG = """\
threshold: 0.2
min_duration: 1.5
webhook: http://127.0.0.1:9/hook
clips: {folder: CLIPS, pre_roll: 2, snapshots: false}
cameras:
  yard:
    source: rtsp://camera.local/stream2
    zones:
      pool: [0.5, 0.0, 1.0, 1.0]
      gate: {box: [0.0, 0.2, 0.3, 0.9], enter: 0.7}
  door:
    source: rtsp://door.local/live
    fps: 2
"""


def _config(tmp_path, extra: str = ""):
    path = tmp_path / "cameras.yml"
    text = CONFIG.replace("CLIPS", str(tmp_path / "clips")) + textwrap.dedent(extra)
    path.write_text(text)
    return load_config(path)


def test_the_file_goes_over_the_flags_and_the_flags_over_the_defaults(tmp_path):
    config = _config(tmp_path)
    plain = from_config(config)
    o = plain.classifier
    assert (o.model, o.top_k, o.threshold, o.window, o.window_mode) == ("a0", 3, 0.2, 4.0, "decay")
    assert plain.segments.min_duration == 1.5 and plain.segments.enter == 0.3
    flagged = from_config(config, {"top_k": 5, "threshold": 0.9, "enter": 0.6, "window": 2.0})
    o = flagged.classifier
    assert (o.top_k, o.threshold, o.window) == (5, 0.2, 2.0)  # the file's threshold wins
    assert flagged.segments.enter == 0.6 and flagged.segments.min_duration == 1.5
    assert from_config(config, {"cumulative": True}).classifier.window is None
    # The file's sinks, and the flags' added; the clips as the file says (snapshots too).
    forced = from_config(config, webhooks=["http://127.0.0.1:9/more"], loop=True, groups=2)
    assert forced.sinks.webhooks == ["http://127.0.0.1:9/hook", "http://127.0.0.1:9/more"]
    assert forced.loop and not forced.replay and forced.groups == 2
    assert plain.clips.pre_roll == 2 and plain.clips.snapshots is False
    assert (tmp_path / "clips").is_dir()
    gate = plain.settings["yard/gate"].segments
    assert plain.settings["door"].fps == 2 and gate == {"min_duration": 1.5, "enter": 0.7}


def test_the_config_says_how_many_groups(tmp_path):
    config = _config(tmp_path, "groups: auto\ncameras_per_group: 10\n")
    plan = from_config(config)
    assert (plan.groups, plan.per_group) == ("auto", 10)
    assert from_config(config, groups=3).groups == 3  # the flag over the file


def test_a_share_keeps_its_cameras_views_only(tmp_path):
    plan = from_config(_config(tmp_path))
    door = plan.subset([s for s in plan.specs if s.name == "door"])
    assert [s.name for s in door.specs] == ["door"] and set(door.settings) == {"door"}
    assert door.groups == 1 and door.classifier == plan.classifier


def test_the_options_without_a_config_are_the_same_defaults():
    o = classifier_options({})
    assert (o.top_k, o.window, o.window_mode) == (3, 4.0, "decay")
    assert isinstance(Plan(o, []).segments, bool)


@needs_shared
def test_live_config_and_serve_config_give_the_same_events(tmp_path):
    """One config, replayed: ``vidcls live --config`` (in one process and in two groups) and
    ``vidcls serve --config`` (its events page's list) give the same segments."""
    import json

    pytest.importorskip("fastapi", reason="the server needs: pip install -e '.[serve]'")
    from fastapi.testclient import TestClient

    from vidcls.serve import ServeOptions
    from vidcls.serve.app import create_app

    config = tmp_path / "cameras.yml"
    config.write_text(
        f"""\
replay: true
groups: 2
min_duration: 0.4
cameras:
  ice: {{source: {video("carving_ice_rpi.mp4")}}}
  eye: {{source: {video("eye_makeup.avi")}, threshold: 0.1}}
  zoned:
    source: {video("carving_ice_android.mp4")}
    zones: {{left: [0, 0, 0.5, 1]}}
"""
    )
    lives = []
    for groups in ("1", "2"):
        out = tmp_path / f"live-{groups}.jsonl"
        r = run("live", "--config", config, "--groups", groups, "-o", out)
        assert r.returncode == 0, r.stderr
        lives.append(end_facts(json.loads(line) for line in out.read_text().splitlines()))
    options = ServeOptions(config=str(config), data=str(tmp_path / "data"), max_threads=1)
    with TestClient(create_app(options)) as client:
        deadline = time.monotonic() + 120  # a hang guard: the files are replayed at once
        while client.get("/healthz").json()["cameras"] != "done":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        served = end_facts(client.get("/api/events").json()["events"])
    assert lives[0] and {d[0] for d in lives[0]} == {"ice", "eye", "zoned"}
    assert lives[0] == lives[1] == served


@needs_shared
def test_start_config_runs_a_config_from_python(tmp_path):
    from vidcls.live import Output, start_config

    class Count(Output):
        def __init__(self):
            self.results = {}

        def result(self, source, result):
            self.results[source] = self.results.get(source, 0) + 1

    config = tmp_path / "cameras.yml"
    config.write_text(
        f"replay: true\ncameras:\n  ice: {{source: {video('carving_ice_rpi.mp4')}}}\n"
    )
    count = Count()
    start_config(config, count).run()
    assert count.results == {"ice": 23}  # the 4.4 s file at 5 fps, as vidcls live gives
