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


@needs_shared
def test_heldout_bench_trains_without_each_block_and_classifies_it(tmp_path):
    """Two classes of four clips, two folds: each clip is classified once, by a model trained
    without its block; the folds' table and the total."""
    from conftest import MODELS, SHARED

    for c in ("dribbling", "shooting"):
        (tmp_path / "data" / c).mkdir(parents=True)
        for p in sorted((SHARED / "datasets/basketball" / c).glob("*.mp4"))[:4]:
            (tmp_path / "data" / c / p.name).symlink_to(p)
    env = {"VIDCLS_CACHE": str(tmp_path / "cache"), "VIDCLS_MIRROR": str(MODELS)}
    r = run("bench", "--heldout", tmp_path / "data", "--folds", "2", "--views", "1", env=env)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["fold", "clips", "unseen"]
    assert [line.split()[:2] for line in lines[1:]] == [["1", "4"], ["2", "4"], ["all", "8"]]
    assert r.stderr.count("unseen, top-1") == 2
