"""Batch jobs: inputs, outputs, a failing file, SIGKILL at a random point and a resume, Ray."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from cli_run import CLI, assert_clean_error
from cli_run import run as vidcls
from conftest import VIDEOS, needs_shared

from vidcls import VidclsError
from vidcls.batch import BatchOptions, PartStore, list_inputs, run_batch

pytestmark = needs_shared


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """Copies (symlinks) of the shared clips in nested folders, plus one broken file."""
    root = tmp_path_factory.mktemp("archive")
    clips = sorted(p for p in VIDEOS.iterdir() if p.suffix in (".mp4", ".avi"))
    for i in range(4):
        folder = root / f"cam{i % 2}" / f"day{i}"
        folder.mkdir(parents=True)
        for clip in clips:
            (folder / f"{clip.stem}_{i}{clip.suffix}").symlink_to(clip)
    (root / "cam0" / "broken.mp4").write_bytes(b"not a video at all" * 100)
    (root / "cam0" / "notes.txt").write_text("ignored")
    return root


def rows_of(path: Path) -> list[dict]:
    """Rows read with pyarrow or json directly (not vidcls's reader)."""
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pylist()
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def comparable(rows: list[dict]) -> dict:
    """Each input's result, scores rounded (so runs on other thread counts compare)."""
    out = {}
    for r in rows:
        top = [(c["label"], round(c["score"], 4)) for c in r["top"]]
        out[r["source"]] = (r["status"], r["frames"], top)
    return out


@pytest.fixture(scope="module")
def reference(archive, tmp_path_factory):
    """An uninterrupted local run."""
    out = tmp_path_factory.mktemp("ref") / "results.parquet"
    summary = run_batch(str(archive), out, BatchOptions(workers=2, chunk=2))
    return out, summary


def test_inputs_from_folder_glob_and_manifests(archive, tmp_path):
    from_folder = list_inputs(str(archive))
    assert len(from_folder) == 17 and all(os.path.isabs(p) for p in from_folder)
    assert not any(p.endswith(".txt") for p in from_folder)
    assert list_inputs(str(archive / "cam*" / "day*" / "*.avi")) == [
        p for p in from_folder if p.endswith(".avi")
    ]
    txt = tmp_path / "list.txt"
    txt.write_text("# clips\n" + "\n".join(os.path.relpath(p, tmp_path) for p in from_folder[:3]))
    assert list_inputs(str(txt)) == from_folder[:3]
    csv_file = tmp_path / "list.csv"
    csv_file.write_text("id,path\n" + "".join(f"{i},{p}\n" for i, p in enumerate(from_folder[:2])))
    assert list_inputs(str(csv_file)) == from_folder[:2]
    import pyarrow as pa

    pq.write_table(pa.table({"url": from_folder[:4]}), tmp_path / "list.parquet")
    assert list_inputs(str(tmp_path / "list.parquet")) == from_folder[:4]
    assert list_inputs("http://127.0.0.1:1/x.mp4") == ["http://127.0.0.1:1/x.mp4"]
    with pytest.raises(VidclsError, match="no such folder"):
        list_inputs(str(tmp_path / "missing"))


def test_every_input_once_and_the_broken_one_recorded(reference, archive):
    out, summary = reference
    rows = rows_of(out)
    assert [r["source"] for r in rows] == sorted(list_inputs(str(archive)))
    broken = [r for r in rows if r["status"] == "error"]
    assert [r["source"] for r in broken] == [str(archive / "cam0" / "broken.mp4")]
    assert "not a readable video" in broken[0]["error"]
    ok = [r for r in rows if r["status"] == "ok"]
    assert all(r["top"] and r["frames"] > 0 and r["label"] == r["top"][0]["label"] for r in ok)
    carving = [r for r in ok if "carving_ice" in r["source"]]
    assert carving and all(r["label"] == "carving ice" for r in carving)
    assert summary.processed == 17 and summary.failed == 1
    assert all(r["fps"] == 5.0 for r in ok) and broken[0]["fps"] is None  # a number, or null
    assert not out.with_name(out.name + ".parts").exists()  # parts merged and removed


def test_sigkill_at_a_random_point_then_resume(archive, tmp_path):
    big = tmp_path / "big"  # long enough (48 videos, one per part) to be killed mid-way
    for i, src in enumerate(p for p in list_inputs(str(archive)) if "broken" not in p):
        for k in range(3):
            (big / str(k)).mkdir(parents=True, exist_ok=True)
            (big / str(k) / f"{i}_{Path(src).name}").symlink_to(src)
    expected = tmp_path / "expected.parquet"
    run_batch(str(big), expected, BatchOptions(workers=2, chunk=4))
    out = tmp_path / "results.parquet"
    parts = out.with_name(out.name + ".parts")
    cmd = [*CLI, "batch", str(big), "--out", str(out), "--workers", "2", "--chunk", "1"]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=dict(os.environ),
        start_new_session=True,  # so the workers can be killed with it
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(parts.glob("rows-*")):
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.02)
    time.sleep(random.uniform(0, 1.0))  # a random point in the middle of the job
    assert proc.poll() is None, "the job ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    committed = len(list(parts.glob("rows-*")))
    assert 1 <= committed < 48 and not out.exists()
    before = PartStore(out).done()
    assert len(before) == committed
    r = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ), timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"{committed} already done" in r.stderr
    rows = rows_of(out)
    assert len(rows) == len({x["source"] for x in rows}) == 48
    assert comparable(rows) == comparable(rows_of(expected))


def test_rerun_after_completion_does_nothing_and_new_inputs_are_added(archive, tmp_path):
    clips = list_inputs(str(archive))
    manifest = tmp_path / "m.txt"
    manifest.write_text("\n".join(clips[:3]))
    out = tmp_path / "r.jsonl"
    first = run_batch(str(manifest), out, BatchOptions(workers=1))
    assert first.processed == 3
    again = run_batch(str(manifest), out, BatchOptions(workers=1))
    assert (again.done_before, again.processed) == (3, 0)
    manifest.write_text("\n".join(clips[:5]))
    more = run_batch(str(manifest), out, BatchOptions(workers=1))
    assert (more.done_before, more.processed) == (3, 2)
    assert sorted(r["source"] for r in rows_of(out)) == sorted(clips[:5])


def test_per_frame_rows_and_segments_in_jsonl(archive, tmp_path):
    clip = next(p for p in list_inputs(str(archive)) if "carving_ice_rpi" in p)
    out = tmp_path / "one.jsonl"
    options = BatchOptions(workers=1, per_frame=True, segments=True, top_k=2)
    s = run_batch(clip, out, options)
    assert s.frames_output == tmp_path / "one.frames.jsonl"
    (row,) = rows_of(out)
    frames = rows_of(s.frames_output)
    assert len(frames) == 2 * row["frames"]
    assert {f["rank"] for f in frames} == {1, 2}
    assert [f["time"] for f in frames] == sorted(f["time"] for f in frames)
    assert row["segments"] and row["segments"][0]["label"] == "carving ice"


def test_bad_outputs_are_clear_errors(archive, tmp_path):
    r = subprocess.run(
        [*CLI, "batch", str(archive), "--out", str(tmp_path / "r.csv")],
        capture_output=True,
        text=True,
        env=dict(os.environ),
    )
    assert r.returncode == 2 and "must end in .parquet or .jsonl" in r.stderr
    assert "Traceback" not in r.stderr
    r = subprocess.run(
        [*CLI, "batch", str(tmp_path / "none"), "--out", str(tmp_path / "r.parquet")],
        capture_output=True,
        text=True,
        env=dict(os.environ),
    )
    assert r.returncode == 2 and r.stderr.count("\n") == 1


def test_ray_gives_the_same_rows(reference, archive, tmp_path):
    pytest.importorskip("ray")
    out = tmp_path / "ray.parquet"
    r = subprocess.run(
        [*CLI, "batch", str(archive), "--out", str(out), "--ray", "--workers", "2"],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    assert comparable(rows_of(out)) == comparable(rows_of(reference[0]))


def test_native_fps_is_null_and_jsonl_keeps_non_ascii(archive, tmp_path):
    clip = next(p for p in list_inputs(str(archive)) if "carving_ice_rpi" in p)
    folder = tmp_path / "vidéos"
    folder.mkdir()
    (folder / "sculpture_glacée.mp4").symlink_to(clip)
    out = tmp_path / "r.jsonl"
    r = vidcls("batch", folder, "--out", out, "--fps", "native", "--workers", "1")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [str(out)]
    assert "1 videos: 0 already done, 1 classified (0 failed)" in r.stderr
    text = out.read_text("utf-8")
    assert "sculpture_glacée.mp4" in text and "\\u00e9" not in text
    (row,) = rows_of(out)
    assert row["fps"] is None and row["status"] == "ok"
    default = run_batch(clip, tmp_path / "d.jsonl", BatchOptions(workers=1))
    assert default.processed == 1
    (five,) = rows_of(tmp_path / "d.jsonl")
    assert five["fps"] == 5.0 and row["frames"] > 2 * five["frames"]  # every frame of 30 fps


@pytest.mark.parametrize(
    "options",
    [
        {"chunk": 0},
        {"workers": 0},
        {"threads": 0},
        {"prefetch": -1},
        {"fps": -1.0},
        {"fps": float("nan")},
        {"top_k": -1},
        {"threshold": 2.0},
        {"window": 0.0},
        {"ray": 5},
    ],
)
def test_options_are_checked_when_made(options):
    with pytest.raises(VidclsError, match=next(iter(options))):
        BatchOptions(**options)


def test_bad_flags_and_models_are_one_line_errors(archive, tmp_path):
    out = tmp_path / "r.jsonl"
    assert_clean_error(vidcls("batch", archive, "--out", out, "--chunk", "0"), "chunk")
    assert_clean_error(vidcls("batch", archive, "--out", out, "--window", "-1"), "window")
    assert_clean_error(vidcls("batch", archive, "--out", out, "--model", "a9"), "a9")
    labels = tmp_path / "labels.txt"
    labels.write_text("one\ntwo\n")
    r = vidcls("batch", archive, "--out", out, "--labels", labels, "--workers", "2")
    assert_clean_error(r, labels, "label count 2")  # from the workers, as one line
    assert not out.exists()
