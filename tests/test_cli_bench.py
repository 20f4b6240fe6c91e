"""The benchmarks run and print their tables (their figures are checked by reading them, not
here: timings are not asserted)."""

from __future__ import annotations

from cli_run import run
from conftest import needs_shared, video

pytestmark = needs_shared


def test_bench_prints_every_stage_for_both_loops():
    r = run("bench", "--video", video("carving_ice_rpi.mp4"), "--frames", "5", "--threads", "1")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    for stage in ("decode", "preprocess", "invoke", "state", "postprocess", "total"):
        assert f"  {stage}" in out
    assert "ratio official/vidcls" in out and "floor, invoke() alone" in out
    assert "peak RSS" in out


def test_batch_bench_prints_both_modes():
    r = run("bench", "--batch", "4", timeout=600)
    assert r.returncode == 0, r.stderr
    assert "single process" in r.stdout and "local pool" in r.stdout
    assert "videos/s" in r.stdout
