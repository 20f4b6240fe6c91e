"""The benchmarks run and print their tables (their figures are checked by reading them, not
here: timings are not asserted)."""

from __future__ import annotations

from cli_here import run_here
from cli_run import assert_clean_error, run
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


def test_batch_bench_prints_both_modes(capfd):
    """Two links and a 0.2 s 1080p clip (--clip-seconds; the default 10 s only takes longer)."""
    r = run("bench", "--batch", "2", "--clip-seconds", "0.2", timeout=600)
    assert r.returncode == 0, r.stderr
    assert "single process" in r.stdout and "local pool" in r.stdout
    assert "videos/s" in r.stdout
    assert r.stdout.startswith("2 links to ") and " + one 1080p 0.2 s clip;" in r.stdout
    assert "encoding a 1920x1080 0.2 s H.264 clip" in r.stderr
    bad = run_here(capfd, "bench", "--batch", "2", "--clip-seconds", "-1")
    assert_clean_error(bad, "--clip-seconds must be 0 or 0.1-3600")


@needs_shared
def test_heldout_bench_trains_without_each_block_and_classifies_it(tmp_path, monkeypatch, capsys):
    """Two classes of four clips, two folds: each clip is classified once, by a model trained
    without its block; the folds' table and the total. Through the command's entry point in
    this process: the trainings are what take the time (bench's command line runs above)."""
    from conftest import MODELS, SHARED

    from vidcls.cli import main

    for c in ("dribbling", "shooting"):
        (tmp_path / "data" / c).mkdir(parents=True)
        for p in sorted((SHARED / "datasets/basketball" / c).glob("*.mp4"))[:4]:
            (tmp_path / "data" / c / p.name).symlink_to(p)
    monkeypatch.setenv("VIDCLS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("VIDCLS_MIRROR", str(MODELS))
    monkeypatch.delenv("VIDCLS_VERBOSE", raising=False)
    code = main(["bench", "--heldout", str(tmp_path / "data"), "--folds", "2", "--views", "1"])
    out, err = capsys.readouterr()
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["fold", "clips", "unseen"]
    assert [line.split()[:2] for line in lines[1:]] == [["1", "4"], ["2", "4"], ["all", "8"]]
    assert err.count("unseen, top-1") == 2
