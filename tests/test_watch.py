"""Several live sources in one process (decoded in two child processes): a network stream
that dies and comes back while two files play on undisturbed, events with source names, Ctrl-C
flushing every output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
from cli_run import CLI
from conftest import needs_shared, video

from vidcls.cameras import CameraServer, camera_clip

pytestmark = needs_shared


@pytest.fixture(scope="module")
def live_ts(tmp_path_factory):
    out = tmp_path_factory.mktemp("stream") / "live.ts"
    return camera_clip(out, 172, 172, seconds=13, sources=[video("carving_ice_rpi.mp4")])


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_dead_source_reconnects_others_undisturbed_ctrl_c_flushes(live_ts, tmp_path):
    server = CameraServer(live_ts).start()
    url = server.url(0)
    out = tmp_path / "events.jsonl"
    sources = tmp_path / "cams.txt"
    sources.write_text(f"# two files\nice={video('carving_ice_rpi.mp4')}\n")
    proc = subprocess.Popen(
        [*CLI, "live", f"net={url}", str(video("eye_makeup.avi")), "--sources", sources]
        + ["--loop", "-o", out, "--min-duration", "0.4", "--decoders", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(0.2)
            if out.exists() and sum(d.get("source") == "net" for d in _lines(out)) >= 8:
                break
        server.kill()
        killed = time.monotonic()
        time.sleep(3.0)
        server.start()  # the camera comes back on the same port
        restarted = time.monotonic()
        time.sleep(4.0)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        server.kill()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    rows = _lines(out)  # every line is complete JSON
    assert {d["source"] for d in rows} == {"net", "eye_makeup", "ice"}
    # The report names every source; only the network one reconnected.
    for name in ("net", "eye_makeup", "ice"):
        assert f"vidcls: {name}: " in stderr
    assert "net: " in stderr and "1 reconnects" in stderr.split("vidcls: net: ")[1].split("\n")[0]
    # The files were classified at the model's rate all through the outage.
    outage = restarted - killed
    for name in ("eye_makeup", "ice"):
        times = [d["time"] for d in rows if d["source"] == name and "top" in d]
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        assert max(gaps) < 0.5, (name, max(gaps))
        assert len(times) >= 5 * (outage + 4)
    # The network source came back (its state reset) and is classified again.
    net = [d for d in rows if d["source"] == "net" and "top" in d]
    assert net[-1]["top"][0]["label"] == "carving ice"
    # Ctrl-C closed every open segment: per source, starts and ends pair up.
    for name in ("net", "eye_makeup", "ice"):
        kinds = [d["event"] for d in rows if d["source"] == name and "event" in d]
        assert kinds.count("start") == kinds.count("end"), (name, kinds)
    # Printed: segment events only, as JSON Lines with the source name.
    printed = [json.loads(line) for line in stdout.splitlines()]
    assert printed and all("event" in d and "source" in d for d in printed)
