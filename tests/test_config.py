"""The cameras config file: what it sets per camera and zone, and every mistake as one line
naming the file, the line and the key."""

from __future__ import annotations

import json
import textwrap

import pytest
from cli_run import assert_clean_error, run
from conftest import needs_shared, video

from vidcls import VidclsError
from vidcls.config import load_config

GOOD = """\
model: a0
threshold: 0.2
clips: {folder: /var/lib/vidcls/clips, pre_roll: 5, post_roll: 3, keep_days: 14}
mqtt: mqtt://user:${MQTT_PASSWORD}@broker.local
cameras:
  yard:
    source: rtsp://camera.local/stream2
    threshold: 0.4
    cooldown: 60
    zones:
      pool: [0.5, 0.0, 1.0, 1.0]      # x1, y1, x2, y2 as fractions of the frame
      gate: {box: [0.0, 0.2, 0.3, 0.9], allow: [opening door, walking the dog], enter: 0.7}
  door:
    source: rtsp://door.local/live
"""


def write(tmp_path, text: str):
    path = tmp_path / "cameras.yml"
    path.write_text(textwrap.dedent(text))
    return path


def test_a_full_config(tmp_path, monkeypatch):
    monkeypatch.setenv("MQTT_PASSWORD", "s3cret")
    config = load_config(write(tmp_path, GOOD))
    c = config.file
    assert c.mqtt == "mqtt://user:s3cret@broker.local"  # from the environment
    assert (c.clips.folder, c.clips.pre_roll, c.clips.keep_days) == ("/var/lib/vidcls/clips", 5, 14)
    yard, door = config.specs()
    assert [(z.name, z.box) for z in yard.zones] == [
        ("pool", (0.5, 0.0, 1.0, 1.0)),
        ("gate", (0.0, 0.2, 0.3, 0.9)),
    ]
    assert door.zones == () and door.source == "rtsp://door.local/live"
    feeds = config.feeds()
    assert sorted(feeds) == ["door", "yard/gate", "yard/pool"]  # yard: zones only
    # The zone's own settings over the camera's over the file's.
    gate, pool = feeds["yard/gate"], feeds["yard/pool"]
    assert gate.changes == {"threshold": 0.4, "allow": ["opening door", "walking the dog"]}
    assert gate.segments == {"enter": 0.7} and gate.cooldown == 60
    assert pool.changes == {"threshold": 0.4} and pool.cooldown == 60
    assert feeds["door"].changes == {"threshold": 0.2} and feeds["door"].cooldown is None


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        ("cameras:\n  yard:\n    source: x.mp4\n    thresold: 0.4\n", 4,
         "cameras.yard.thresold: unknown key"),
        ("cameras:\n  yard:\n    source: x.mp4\n    threshold: high\n", 4,
         "cameras.yard.threshold: Input should be a valid number"),
        ("cameras:\n  yard:\n    source: x.mp4\n    threshold: 1.5\n", 4,
         "cameras.yard.threshold: Input should be less than or equal to 1"),
        ("cameras:\n  yard:\n    source: x.mp4\n    zones:\n      pool: [0.6, 0, 0.5, 1]\n", 5,
         "cameras.yard.zones.pool.box: Value error, [0.6, 0.0, 0.5, 1.0] must have 0 <= x1 < x2"),
        ("cameras:\n  yard:\n    source: x.mp4\n    zones:\n      pool:\n"
         "        box: [0, 0, 1, 1.2]\n", 6, "cameras.yard.zones.pool.box: Value error"),
        ("cameras:\n  yard:\n    zones: {}\n", 2, "cameras.yard.source: missing"),
        ("model: a0\n", None, "cameras: missing"),
        ("cameras:\n  yard: {source: x.mp4\n", 3, "not valid YAML"),
        ("clips: {folder: /c, pre_roll: -1}\ncameras:\n  yard: {source: x.mp4}\n", 1,
         "clips.pre_roll: Input should be greater than or equal to 0"),
        ("mqtt: mqtt://u:${NOT_SET_ANYWHERE}@h\ncameras:\n  yard: {source: x.mp4}\n", 1,
         "mqtt: environment variable NOT_SET_ANYWHERE is not set"),
        ("- a list\n", None, "expected a mapping"),
    ],
)  # fmt: skip
def test_each_mistake_is_one_line_naming_the_file_the_line_and_the_key(tmp_path, text, line, says):
    path = write(tmp_path, text)
    with pytest.raises(VidclsError) as e:
        load_config(path)
    message = str(e.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    if line is not None:
        assert f"line {line}: " in message, message
    assert says in message, message


def test_not_a_file_or_too_big(tmp_path):
    with pytest.raises(VidclsError, match="config file"):
        load_config(tmp_path)
    big = tmp_path / "big.yml"
    big.write_bytes(b"#" * (2 << 20))
    with pytest.raises(VidclsError, match="big.yml"):
        load_config(big)


@needs_shared
def test_live_from_a_config_a_missing_camera_is_one_line_and_the_others_run(tmp_path):
    path = write(
        tmp_path,
        f"""\
        replay: true  # a virtual clock: the same events on any machine
        cameras:
          ice:
            source: {video("carving_ice_rpi.mp4")}
            threshold: 0.1
          gone:
            source: {tmp_path / "missing.mp4"}
          side:
            source: {video("carving_ice_rpi.mp4")}
            deny: [carving ice]
        """,
    )
    r = run("live", "--config", path, timeout=120)
    assert r.returncode == 0, r.stderr
    errors = [line for line in r.stderr.splitlines() if "error" in line]
    assert errors == [f"vidcls: error: {path}: camera gone: {tmp_path / 'missing.mp4'}: "
                      "no such file, camera or stream"]  # fmt: skip
    events = [json.loads(line) for line in r.stdout.splitlines()]
    ice = [(e["event"], e["segment"]["label"]) for e in events if e["source"] == "ice"]
    assert ice == [("start", "carving ice"), ("end", "carving ice")]
    side = {e["segment"]["label"] for e in events if e["source"] == "side"}
    assert "carving ice" not in side  # denied there
    for name in ("ice", "side"):  # every tick of the 4.4 s file
        assert f"vidcls: {name}: 23 results (" in r.stderr and ", 0 dropped" in r.stderr


@needs_shared
def test_live_config_errors_are_one_line(tmp_path):
    clip = video("carving_ice_rpi.mp4")
    bad = write(tmp_path, f"cameras:\n  yard:\n    source: {clip}\n    allow: [no such action]\n")
    assert_clean_error(run("live", "--config", bad), bad, "no such action")
    good = write(tmp_path, f"cameras:\n  a: {{source: {video('carving_ice_rpi.mp4')}}}\n")
    assert_clean_error(run("live", "--config", good, video("carving_ice_rpi.mp4")), "config")
