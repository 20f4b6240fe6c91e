"""The capacity benchmark's machinery: real cameras on loopback, watched as `vidcls live` does."""

from __future__ import annotations

import math
import os

import pytest
from conftest import needs_shared, video

from vidcls import ClassifierOptions, VideoClassifier
from vidcls.bench import streams as capacity
from vidcls.bench.cameras import CameraServer, camera_clip

pytestmark = needs_shared


@pytest.fixture(scope="module")
def small_clip(tmp_path_factory):
    out = tmp_path_factory.mktemp("cams") / "cam.ts"
    return camera_clip(out, 320, 180, seconds=4, sources=[video("carving_ice_android.mp4")])


def test_measure_reports_rates_latency_drops_and_cpu(small_clip, monkeypatch):
    monkeypatch.setattr(capacity, "WARMUP", 2.0)
    clf = VideoClassifier.create_from_options(ClassifierOptions(window=None, top_k=1))
    with CameraServer(small_clip) as server:
        run = capacity.measure(clf, [server.url(i) for i in range(3)], 3.0, workers=1)
    assert run.streams == 3 and run.model_rate == 5.0
    # Results decided in the 3 s span: a tick every 0.2 s at most (16), whatever the speed.
    assert 0 < run.rate_mean <= 16 / 3 and run.rate_min <= run.rate_mean
    assert 0 < run.p50_ms <= run.p99_ms and math.isfinite(run.p99_ms)
    assert run.cpu_cores > 0 and run.infer_ms > 0
    assert run.dropped >= 0
    assert run.row().split()[0] == "3" and run.row().split()[-1] in ("holds", "fails")


def test_holds_needs_both_latency_and_every_streams_rate():
    def run(p99, rate_min):
        return capacity.Capacity(8, 20, p99, 5.0, rate_min, 0, 1.0, 1.5, 5.0, 5.0)

    assert run(150, 4.6).holds
    assert not run(250, 4.9).holds
    assert not run(150, 4.4).holds


def test_measure_in_groups_counts_every_process(small_clip):
    """Two groups watching three cameras: rates, latency, and the memory and CPU of the
    groups and their decoders (the camera server's left out)."""
    from vidcls.bench.grouped import descendants, measure_groups

    options = ClassifierOptions(window=None, top_k=1)
    with CameraServer(small_clip) as server:
        urls = [server.url(i) for i in range(3)]
        run = capacity.Capacity(**measure_groups(options, urls, 3.0, 2, 2.0, server=server.pid))
        assert server.pid not in descendants(os.getpid(), {server.pid})
    assert run.streams == 3 and run.groups == 2 and run.model_rate == 5.0
    assert 0 < run.rate_mean <= 16 / 3 and run.rate_min <= run.rate_mean
    assert 0 < run.p50_ms <= run.p99_ms and math.isfinite(run.p99_ms)
    assert run.cpu_cores > 0 and run.rss_mb > 200  # three processes at least: 100 MB each
    assert run.row().split()[:2] == ["3", "2"]


def test_the_ceiling_adds_up_what_one_camera_costs(small_clip):
    from vidcls.bench.ceiling import Ceiling, measure_ceiling

    clf = VideoClassifier.create_from_options(ClassifierOptions(window=4.0, top_k=3))
    c = measure_ceiling(clf, small_clip, 2)
    assert c.fps == 30 and c.rate == 5.0 and c.cores == 2
    assert c.decode_ms > 0 and c.prepare_ms > 0 and c.model_ms > 0
    assert c.camera_ms == pytest.approx(30 * c.decode_ms + 5 * (c.prepare_ms + c.model_ms))
    assert c.cameras == int(2000 / c.camera_ms)
    assert f"2 cores hold at most {c.cameras} cameras" in c.line()
    # Twice the cores, twice the cameras (to rounding); a camera of fewer frames costs less.
    made = Ceiling(1.0, 0.5, 3.0, 5, 5.0, 2)
    assert made.camera_ms == 22.5 and made.cameras == 88
    assert Ceiling(1.0, 0.5, 3.0, 5, 5.0, 4).cameras == 177
