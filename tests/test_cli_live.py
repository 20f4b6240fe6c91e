"""``vidcls live`` as a user runs it: one source or many, a network stream that dies and comes
back, Ctrl-C flushing every output with exit code 130, bad sources, no window here; the
example config as written, and a config with cameras that cannot be opened (exit code 3)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time

import pytest
from cli_here import run_here
from cli_run import CLI, assert_clean_error, run
from conftest import ROOT, SHARED, needs_shared, video

from vidcls.bench.cameras import CameraServer, camera_clip

pytestmark = needs_shared


@pytest.fixture(scope="module")
def live_ts(tmp_path_factory):
    out = tmp_path_factory.mktemp("stream") / "live.ts"  # 4 s: the camera server loops it
    return camera_clip(out, 172, 172, seconds=4, sources=[video("carving_ice_rpi.mp4")])


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _wait(condition, timeout=120.0):  # a hang guard
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _start(*args):
    return subprocess.Popen(
        [*CLI, "live", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )


def test_one_file_prints_every_result_and_its_segment(tmp_path):
    """Replayed on a virtual clock: the 4.4 s file gives a result at each of its 23 ticks of
    the model's 5 fps, on any machine."""
    r = run("live", video("carving_ice_rpi.mp4"), "--headless", "--top-k", "2", "--replay")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    results = [line for line in lines if " ms late]" in line]
    assert len(results) == 23 and "carving ice" in results[-1]
    assert [line.split()[0] for line in results[:3]] == ["0:00.00", "0:00.20", "0:00.40"]
    assert any("-- start carving ice" in line for line in lines)
    assert "-- end carving ice" in lines[-1]  # closed when the file ended
    report = r.stderr.strip().splitlines()[-1]
    assert report.startswith(
        "vidcls: carving_ice_rpi: 23 results (5.00/s) of 131 frames, 0 dropped"
    )


def test_replay_is_for_files_only(capfd):  # refused at once: checked in-process
    assert_clean_error(
        run_here(capfd, "live", "1", video("carving_ice_rpi.mp4"), "--replay"), "1", "only files"
    )


def test_a_dead_stream_comes_back_the_files_play_on_and_ctrl_c_flushes(live_ts, tmp_path):
    server = CameraServer(live_ts).start()
    url = server.url(0)
    out = tmp_path / "events.jsonl"
    sources = tmp_path / "cams.txt"
    sources.write_text(f"# a file\nice={video('carving_ice_rpi.mp4')}\n")
    proc = _start(
        f"net={url}",
        video("eye_makeup.avi"),
        "--sources",
        sources,
        "--loop",
        "-o",
        out,
        "--min-duration",
        "0.4",
        "--decoders",
        "2",
    )
    log: list[str] = []  # stderr as it comes: the warnings say when the stream was lost, back
    reader = threading.Thread(target=lambda: log.extend(proc.stderr), daemon=True)
    reader.start()
    try:
        _wait(lambda: out.exists() and sum(d.get("source") == "net" for d in _lines(out)) >= 8)
        server.kill()
        _wait(lambda: any(f"lost {url}" in line for line in log))
        down = len(_lines(out))
        _wait(lambda: sum(d["source"] == "ice" for d in _lines(out)[down:]) >= 5)  # goes on
        server.start()  # the camera comes back on the same port
        _wait(lambda: any(f"reconnected to {url}" in line for line in log))
        back = len(_lines(out))  # what comes now is the stream's since it came back
        _wait(lambda: sum(d.get("source") == "net" for d in _lines(out)[back:]) >= 8)
        proc.send_signal(signal.SIGINT)
        proc.wait(120)  # a hang guard: it exits at once
        stdout = proc.stdout.read()  # to its end (segment events only: a pipe's worth at most)
        reader.join(60)
        stderr = "".join(log)
    finally:
        server.kill()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    rows = _lines(out)  # every line is complete JSON
    assert {d["source"] for d in rows} == {"net", "eye_makeup", "ice"}
    for name in ("net", "eye_makeup", "ice"):
        assert f"vidcls: {name}: " in stderr
    net_report = stderr.split("vidcls: net: ")[1].split("\n")[0]
    assert "1 reconnects" in net_report
    # The files went on while the stream was away.
    for name in ("eye_makeup", "ice"):
        assert sum(d["source"] == name and "top" in d for d in rows[down:]) >= 3
    net = [d for d in rows if d["source"] == "net" and "top" in d]
    assert net[-1]["top"][0]["label"] == "carving ice"  # classified again after its reset
    # Ctrl-C closed every open segment: per source, starts and ends pair up.
    for name in ("net", "eye_makeup", "ice"):
        kinds = [d["event"] for d in rows if d["source"] == name and "event" in d]
        assert kinds.count("start") == kinds.count("end"), (name, kinds)
    # Printed: segment events only, as JSON Lines with the source name.
    printed = [json.loads(line) for line in stdout.splitlines()]
    assert printed and all("event" in d and "source" in d for d in printed)


def test_ctrl_c_on_one_source_closes_its_segment_and_exits_130(tmp_path):
    out = tmp_path / "live.jsonl"
    proc = _start(video("carving_ice_rpi.mp4"), "--loop", "--headless", "-o", out, "--replay")
    _wait(lambda: out.exists() and any("event" in d for d in _lines(out)))
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "vidcls: carving_ice_rpi: " in stderr
    rows = _lines(out)
    kinds = [d["event"] for d in rows if "event" in d]
    assert kinds and kinds.count("start") == kinds.count("end")
    assert rows[-1]["event"] == "end"  # the last thing written: the closing end event


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("/no/such/clip.mp4", "no such file, camera or stream"),
        ("gopher://example/x", "unsupported stream scheme"),
        ("/dev/video99", "cannot open"),
    ],
)
def test_bad_sources_are_clear_errors(source, message, capfd):
    # In-process: the same command with a good source runs as a process in the tests above.
    r = run_here(capfd, "live", source, "--headless", "--duration", "5")
    assert_clean_error(r, source, message)


def test_no_window_here_is_a_note_and_results_are_printed():
    import cv2

    try:
        cv2.namedWindow("probe")
        cv2.destroyAllWindows()
        pytest.skip("this OpenCV has a GUI")
    except cv2.error:
        pass
    r = run("live", video("carving_ice_rpi.mp4"), "--duration", "2", "--replay")
    assert r.returncode == 0, r.stderr
    assert "vidcls: note: no window here" in r.stderr
    results = [line.split()[0] for line in r.stdout.splitlines() if " ms late]" in line]
    assert results == [f"0:{t / 5:05.2f}" for t in range(11)]  # 0 to 2 s at 5 fps
    mosaic = run(
        "live", video("carving_ice_rpi.mp4"), video("eye_makeup.avi"), "--mosaic", "--replay"
    )
    assert mosaic.returncode == 0 and "printing events only" in mosaic.stderr


def test_the_example_config_runs_as_written_from_a_clone(tmp_path):
    """docs/cameras.example.yml, unchanged, from a clone's root beside the shared folder
    (``../shared``): every camera and zone runs, and the clips go under results/. Replayed
    on a virtual clock: 3 s of video, on any machine."""
    clone = tmp_path / "clone"
    clone.mkdir()
    (tmp_path / "shared").symlink_to(SHARED, target_is_directory=True)
    example = ROOT / "docs" / "cameras.example.yml"
    r = run("live", "--config", example, "--replay", "--duration", "3", cwd=clone)
    assert r.returncode == 0, r.stderr
    assert "error" not in r.stderr, r.stderr
    events = [json.loads(line) for line in r.stdout.splitlines()]
    started = {(e["source"], e.get("zone"), e["segment"]["label"]) for e in events}
    assert ("workshop", None, "carving ice") in started
    reports = {line.split(":")[1].strip(): line for line in r.stderr.splitlines()}
    for view in ("workshop", "bathroom", "gym/left", "gym/right"):
        assert "15 results (5.00/s)" in reports[view], r.stderr  # 3 s at 5 fps
    clips = clone / "results" / "vidcls-clips"
    ends = [e for e in events if e["event"] == "end"]
    assert ends and all((clone / e["clip"]).is_file() for e in ends)
    assert all(clips in (clone / e["clip"]).parents for e in ends)


def test_cameras_that_cannot_be_opened_end_the_run_with_3_after_the_others(tmp_path):
    """One camera missing, one not a video: both are named, the third plays to its end and
    its events are printed, then the run ends with the documented exit code 3."""
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    config = tmp_path / "cameras.yml"
    config.write_text(
        f"""\
replay: true
cameras:
  gone: {{source: {tmp_path / "missing.mp4"}}}
  ice: {{source: {video("carving_ice_rpi.mp4")}}}
  bad: {{source: {tmp_path / "bad.mp4"}}}
"""
    )
    r = run("live", "--config", config)
    assert r.returncode == 3, r.stderr
    assert "Traceback" not in r.stderr
    kinds = [(e["source"], e["event"]) for e in map(json.loads, r.stdout.splitlines())]
    assert ("ice", "start") in kinds and kinds[-1] == ("ice", "end")  # to the file's end
    lines = r.stderr.splitlines()
    assert lines[0] == (
        f"vidcls: error: {config}: camera gone: {tmp_path / 'missing.mp4'}: no such file, "
        "camera or stream"
    )
    assert any(x.startswith("vidcls: camera bad could not be opened: ") for x in lines)
    assert any(x.startswith("vidcls: ice: 23 results (5.00/s) of 131 frames") for x in lines)
    assert lines[-1] == (
        f"vidcls: error: {config}: 2 of 3 cameras could not be opened (gone, bad); "
        "the others ran (exit code 3)"
    )


def test_the_exit_codes_are_in_the_help():
    r = run("live", "--help")
    assert r.returncode == 0
    text = " ".join(r.stdout.split())
    assert "exit codes: 0 every source ran" in text
    assert "3 some of several sources (cameras) could not be opened or gave no frame" in text
