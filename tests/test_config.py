"""The cameras config file: what it sets per camera and zone, and every mistake as one line
naming the file, the line and the key."""

from __future__ import annotations

import json
import resource
import subprocess
import textwrap

import pytest
from cli_here import run_here
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
        ("cameras:\n  yard: {source: x.mp4}\ngroups: 0\n", 3,
         "groups: Value error, auto or a number from 1 to 256, not 0"),
        ("groups: yes\ncameras:\n  yard: {source: x.mp4}\n", 1, "groups: Value error"),
        ("cameras_per_group: 0\ncameras:\n  yard: {source: x.mp4}\n", 1,
         "cameras_per_group: Input should be greater than or equal to 1"),
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
    assert r.returncode == 3, r.stderr  # the documented code: some cameras could not be opened
    errors = [line for line in r.stderr.splitlines() if "error" in line]
    assert errors == [f"vidcls: error: {path}: camera gone: {tmp_path / 'missing.mp4'}: "
                      "no such file, camera or stream",
                      f"vidcls: error: {path}: 1 of 3 cameras could not be opened (gone); "
                      "the others ran (exit code 3)"]  # fmt: skip
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


# -- hostile configs (issue 28): one line, exit 2, no traceback, bounded memory -------------

AS_LIMIT = 1 << 30  # bytes of address space a hostile config's run may take (the bomb: GBs)
HANG = 60  # seconds: a hang guard, not a measure of speed


def bomb(where: str) -> str:
    """A YAML "billion laughs": 10 strings, each next list 10 aliases of the one before."""
    lists = ["&l0 [" + ", ".join(f'"lol{i}"' for i in range(10)) + "]"]
    lists += [f"&l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, 9)]
    items = "".join(f"      - {x}\n" for x in lists)
    if where == "top":
        return (
            "".join(f"l{i}: {x}\n" for i, x in enumerate(lists))
            + "cameras:\n  a: {source: x.mp4}\n"
        )
    if where == "allow":
        return f"cameras:\n  a:\n    source: x.mp4\n    allow:\n{items}"
    return f"junk:\n{items}cameras:\n  a: {{source: x.mp4}}\n"


def run_limited(*args) -> subprocess.CompletedProcess:
    """``vidcls ARGS`` in a process that may map at most AS_LIMIT bytes, with a hang guard."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))

    return run(*args, preexec_fn=limit, timeout=HANG)


@needs_shared  # serve loads the default model from the shared mirror
@pytest.mark.parametrize("where", ["top", "allow", "unknown key"])
@pytest.mark.parametrize("command", ["live", "serve"])
def test_a_yaml_alias_bomb_is_one_line_in_bounded_memory(tmp_path, where, command):
    path = write(tmp_path, bomb(where))
    assert path.stat().st_size < 1000
    extra = (
        ["--headless", "--duration", "4"]
        if command == "live"
        else ["--data", tmp_path, "--port", "0"]
    )
    r = run_limited(command, "--config", path, *extra)
    line = assert_clean_error(r, path)
    assert "aliases (*l" in line and "repeat more than 100,000 values" in line


def test_aliases_that_stay_small_still_work(tmp_path):
    path = write(
        tmp_path,
        """\
        base: &base {source: x.mp4, threshold: 0.3}
        cameras:
          a: *base
          b: {<<: *base, threshold: 0.5}
        """,
    )
    with pytest.raises(VidclsError, match="line 1: base: unknown key"):
        load_config(path)  # aliases read as written; the unknown key is the only mistake
    path.write_text("cameras:\n  a: &a {source: x.mp4, threshold: 0.3}\n  b: *a\n")
    assert [s.name for s in load_config(path).specs()] == ["a", "b"]


@pytest.mark.parametrize(
    "text",
    [
        "cameras: " + "[" * 20000 + "]" * 20000 + "\n",
        "cameras: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n",
        # Aliases nested in aliases: each 30 deep, together thousands deep.
        "".join(
            f"a{i}: &a{i} " + "[" * 30 + (f"*a{i - 1}" if i else "1") + "]" * 30 + "\n"
            for i in range(100)
        )
        + "cameras:\n  a: {source: x.mp4}\n",
    ],
    ids=["lists", "mappings", "aliases"],
)
def test_yaml_nested_past_32_levels_is_one_line(tmp_path, text):
    path = write(tmp_path, text)
    r = run_limited("live", "--config", path, "--headless")
    line = assert_clean_error(r, path)
    assert "nested more than 32 deep" in line


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("mqtt: 'mqtt://[::1'\n", "line 1: mqtt: Value error, mqtt://[::1: MQTT URL must be"),
        ("mqtt: 'mqtt://u:pw@[::1'\n", "mqtt://***@[::1: MQTT URL must be"),
        ("webhook: 'http://[::1'\n", "line 1: webhook: Value error, http://[::1: webhook URL"),
        ("webhook: ['http://ok.local/x', 'http://[::1']\n", "http://[::1: webhook URL"),
        ("cameras:\n  b: {source: 'rtsp://[::1'}\n", "cameras.b.source: Value error, "
         "rtsp://[::1: not a valid URL (Invalid IPv6 URL)"),
        ("cameras:\n  b: {source: 'rtsp://cam:port/x'}\n", "not a valid URL (Port could not"),
        ("fps: 1e-300\n", "line 1: fps: Input should be greater than or equal to 0.01"),
        ("cameras:\n  b: {source: x.mp4, fps: 1e300}\n",
         "cameras.b.fps: Input should be less than or equal to 1000"),
    ],
)  # fmt: skip
def test_urls_and_rates_that_cannot_work_are_one_line(tmp_path, capfd, text, says):
    cameras = "" if "cameras:" in text else f"cameras:\n  a: {{source: {tmp_path / 'x.mp4'}}}\n"
    path = write(tmp_path, text + cameras)
    r = run_here(capfd, "live", "--config", path, "--headless", "--duration", "1")
    line = assert_clean_error(r, path)
    assert says in line, line
    assert "pw" not in line


def test_a_bad_url_or_rate_on_the_command_line_is_one_line(capfd):
    line = assert_clean_error(run_here(capfd, "live", "rtsp://[::1", "--headless"), "rtsp://[::1")
    assert "not a valid URL" in line  # refused at once, not retried with backoff
    line = assert_clean_error(run_here(capfd, "live", "a=http://u:pw@[::1", "--headless"))
    assert "http://***@[::1: not a valid URL" in line
    line = assert_clean_error(run_here(capfd, "live", "x.mp4", "--fps", "1e-300"), "--fps")
    assert "from 0.01 to 1000" in line


def test_thousands_of_missing_cameras_are_a_few_lines(tmp_path, capfd):
    many = "".join(f"  c{i}: {{source: /nowhere/{i}.mp4}}\n" for i in range(22000))
    path = write(tmp_path, "cameras:\n" + many)
    line = assert_clean_error(run_here(capfd, "live", "--config", path), path)
    assert "line 1: cameras: more than 1024" in line
    path.write_text("cameras:\n" + many[: many.index("  c40:")])
    line = assert_clean_error(run_here(capfd, "live", "--config", path), path)
    assert "no camera could be opened: camera c0: /nowhere/0.mp4: no such file" in line
    assert line.endswith("(and 39 more)")


@needs_shared
def test_some_missing_cameras_are_named_five_at_most(tmp_path):
    many = "".join(f"  c{i}: {{source: {tmp_path}/{i}.mp4}}\n" for i in range(40))
    path = write(
        tmp_path,
        f"replay: true\ncameras:\n{many}  ice: {{source: {video('carving_ice_rpi.mp4')}}}\n",
    )
    r = run("live", "--config", path, "--duration", "1", timeout=HANG)
    assert r.returncode == 3, r.stderr  # some cameras could not be opened; the others ran
    errors = [x for x in r.stderr.splitlines() if x.startswith("vidcls: error:")]
    assert errors == [
        *(f"vidcls: error: {path}: camera c{i}: {tmp_path}/{i}.mp4: no such file, camera or stream"
          for i in range(5)),
        f"vidcls: error: {path}: and 35 more cameras that cannot be opened",
        f"vidcls: error: {path}: 40 of 41 cameras could not be opened (c0, c1, c2, c3, c4 and "
        "35 more); the others ran (exit code 3)",
    ]  # fmt: skip
    assert "vidcls: ice: " in r.stderr


@needs_shared
@pytest.mark.parametrize("command", ["live", "serve"])
def test_a_clips_folder_that_is_a_file_is_refused_at_start(tmp_path, command):
    clip, afile = video("carving_ice_rpi.mp4"), tmp_path / "afile"
    afile.write_text("x")
    path = write(
        tmp_path, f"replay: true\nclips: {{folder: {afile}}}\ncameras:\n  a: {{source: {clip}}}\n"
    )
    extra = ["--headless"] if command == "live" else ["--data", tmp_path / "data", "--port", "0"]
    r = run(command, "--config", path, *extra, timeout=HANG)
    line = assert_clean_error(r, afile)
    assert "is a file, not a folder for the clips" in line
    assert afile.read_text() == "x"
