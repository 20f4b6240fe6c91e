"""Live classification: a real HTTP stream on loopback that drops and comes back, the freshest
frame under a slow consumer, files at real speed, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from cli_run import CLI
from conftest import needs_shared, video

from vidcls import ClassifierOptions, VidclsError, VideoClassifier
from vidcls.cameras import CameraServer, camera_clip
from vidcls.display import LiveWindow
from vidcls.pipeline import Pipeline, classify_live

pytestmark = needs_shared


@pytest.fixture(scope="module")
def live_ts(tmp_path_factory):
    out = tmp_path_factory.mktemp("stream") / "live.ts"
    return camera_clip(out, 172, 172, seconds=13, sources=[video("carving_ice_rpi.mp4")])


class Reader(threading.Thread):
    """Collects a process's output lines with the time each arrived."""

    def __init__(self, stream):
        super().__init__(daemon=True)
        self.stream, self.lines = stream, []

    def run(self):
        for line in self.stream:
            self.lines.append((time.monotonic(), line.rstrip("\n")))


def test_http_stream_drop_reconnects_and_results_resume(live_ts):
    server = CameraServer(live_ts).start()
    url = server.url(0)
    proc = subprocess.Popen(
        [*CLI, "live", url, "--headless", "--format", "jsonl", "--duration", "16"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    out, err = Reader(proc.stdout), Reader(proc.stderr)
    out.start()
    err.start()
    try:
        deadline = time.monotonic() + 30
        while sum("top" in line for _, line in out.lines) < 8 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sum("top" in line for _, line in out.lines) >= 8, err.lines
        server.kill()
        killed = time.monotonic()
        time.sleep(2.0)
        server.start()  # the camera comes back on the same port
        restarted = time.monotonic()
        assert proc.wait(timeout=40) == 0
    finally:
        server.kill()
        if proc.poll() is None:
            proc.kill()
    out.join(5)
    err.join(5)
    log = "\n".join(line for _, line in err.lines)
    assert "Traceback" not in log
    assert "lost " + url in log
    assert "reconnected to " + url in log
    assert "state reset" in log
    results = [(t, json.loads(line)) for t, line in out.lines]
    results = [(t, d) for t, d in results if "top" in d]
    before = [d for t, d in results if t < killed]
    after = [d for t, d in results if t > restarted + 0.5]
    assert len(before) >= 8 and len(after) >= 5, (len(before), len(after), log)
    # The model classifies the stream after the reconnect too (after its state was reset).
    assert after[-1]["top"][0]["label"] == "carving ice"
    # Nothing is classified while the server is down (no stale frames replayed).
    gap = [t for t, _ in results if killed + 0.5 < t < restarted]
    assert not gap


def test_freshest_frame_bounded_latency_with_a_slow_consumer():
    """A consumer 10x slower than the source sees fresh frames: latency does not grow."""
    clf = VideoClassifier.create_from_options(ClassifierOptions(window=4.0))
    latencies, times = [], []

    def slow(result):
        latencies.append(result.latency_ms)
        times.append(result.time)
        time.sleep(0.35)  # the consumer can take ~3 frames per second of a 30 fps source

    pipeline = Pipeline(clf)
    for result in pipeline.live(str(video("carving_ice_android.mp4")), duration=5.0):
        slow(result)
    stats = pipeline.stats
    assert stats.fed >= 8
    assert stats.captured >= 120  # the source ran at its own speed meanwhile
    lat = np.array(latencies)
    # Each result's frame is at most about one source frame old (33 ms), plus scheduling slack.
    assert lat.max() < 120, lat
    # No queue: the last results are no later than the first ones.
    assert np.median(lat[-4:]) < np.median(lat[:4]) + 40, lat


def test_file_at_real_speed_with_segment_events():
    clf = VideoClassifier.create_from_options(ClassifierOptions(window=4.0, top_k=3))
    pipeline = Pipeline(clf, segments=True)
    t0 = time.monotonic()
    results = list(pipeline.live(str(video("carving_ice_rpi.mp4"))))
    events = [e for r in results for e in r.events] + pipeline.finish()
    stats = pipeline.stats
    elapsed = time.monotonic() - t0
    assert 4.0 < elapsed < 7.0  # a 4.4 s clip played at its real speed
    assert 18 <= stats.fed <= 25  # fed at about 5 fps
    assert results[-1].top[0].label == "carving ice"
    assert [e.kind for e in events] == ["start", "end"]
    assert events[0].segment.label == "carving ice"


def test_cli_ctrl_c_ends_cleanly_and_flushes(tmp_path):
    out = tmp_path / "live.jsonl"
    proc = subprocess.Popen(
        [*CLI, "live", str(video("carving_ice_rpi.mp4")), "--loop", "--headless", "-o", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    time.sleep(4)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert "frames classified" in stderr
    lines = out.read_text().splitlines()
    assert len(lines) >= 5
    for line in lines:
        json.loads(line)  # every line complete
    assert any("top" in json.loads(line) for line in lines)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("/no/such/clip.mp4", "no such file, camera or stream"),
        ("gopher://example/x", "unsupported stream scheme"),
        ("/dev/video99", "cannot open"),
    ],
)
def test_bad_sources_are_clear_errors(source, message):
    r = subprocess.run(
        [*CLI, "live", source, "--headless", "--duration", "5"],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=60,
    )
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vidcls: error:") and message in lines[0]


def test_window_without_gui_is_a_clear_error():
    import cv2

    try:
        cv2.namedWindow("probe")
        cv2.destroyAllWindows()
        pytest.skip("this OpenCV has a GUI")
    except cv2.error:
        pass
    with pytest.raises(VidclsError, match="--headless"):
        LiveWindow()


def test_unreadable_network_source_keeps_retrying_then_stops(tmp_path):
    t0 = time.monotonic()
    results = list(classify_live("http://127.0.0.1:9/none.ts", duration=2.0))
    assert results == [] and 1.5 < time.monotonic() - t0 < 8
    assert Path(tmp_path).exists()


def test_classify_live_is_a_generator_one_can_break_out_of():
    t0 = time.monotonic()
    for n, result in enumerate(classify_live(str(video("carving_ice_android.mp4")), top_k=2), 1):
        assert len(result.top) == 2 and result.latency_ms is not None
        assert result.infer_ms is not None and result.input_fps is not None
        if n == 3:
            break
    assert time.monotonic() - t0 < 3  # the capture thread stopped with the generator
