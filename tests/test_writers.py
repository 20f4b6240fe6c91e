"""Output formats from one registry, and atomic files."""

from __future__ import annotations

import csv
import io
import json
import os
import stat

import pytest

from vidcls.events import frame_doc
from vidcls.results import Category, FrameResult, Segment, SegmentEvent, VideoResult
from vidcls.writers import (
    WRITERS,
    atomic_path,
    frame_rows,
    get_writer,
    read_rows,
    render,
    video_row,
    write_rows,
    write_text,
)


def result(source: str = "clip.mp4", fps: float | None = 5.0) -> VideoResult:
    top = [Category("carving ice", 72, 0.9), Category("café crème", 1, 0.05)]
    frames = [FrameResult(0.0, top[:1]), FrameResult(0.2, top)]
    segments = [Segment("carving ice", 72, 0.0, 0.4, 0.95)]
    return VideoResult(source, "a0", fps, frames, top, segments=segments)


def test_registry_has_every_text_format():
    assert set(WRITERS) == {"table", "json", "jsonl", "csv", "srt"}
    with pytest.raises(ValueError, match="unknown format"):
        get_writer("xml")


def test_json_is_one_object_for_one_video_and_a_list_for_several():
    one = json.loads(render([result()], "json"))
    assert one["fps"] == 5.0 and one["frames"][1]["top"][1]["label"] == "café crème"
    assert one["segments"][0]["peak"] == 0.95
    two = json.loads(render([result("a.mp4"), result("b.mp4", fps=None)], "json"))
    assert [d["source"] for d in two] == ["a.mp4", "b.mp4"] and two[1]["fps"] is None


def test_summary_only_leaves_frames_out_of_every_format():
    r = result()
    assert json.loads(render([r], "json", frames=False))["frames"] == []
    assert "0:00.20" not in render([r], "table", frames=False)
    lines = [json.loads(x) for x in render([r], "jsonl", frames=False).splitlines()]
    assert [set(x) for x in lines] == [{"source", "segment"}, {"source", "model", "fps", "summary"}]
    lines = [json.loads(x) for x in render([r], "jsonl").splitlines()]
    assert lines[: len(r.frames)] == [frame_doc(r.source, f) for f in r.frames]  # as live


def test_csv_has_one_header_and_a_row_per_category():
    text = render([result("a.mp4"), result("b.mp4")], "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert text.count("source,kind") == 1
    kinds = [r["kind"] for r in rows if r["source"] == "a.mp4"]
    assert kinds == ["frame", "frame", "frame", "segment", "summary", "summary"]


def test_table_says_native_and_counts_frames():
    text = render([result(fps=None)], "table")
    assert "native, 2 frames fed" in text and "carving ice (peak 0.95)" in text


def test_live_lines_carry_timing_and_events():
    f = FrameResult(3.8, [Category("carving ice", 72, 0.968)], infer_ms=4.1, input_fps=30.0)
    f.latency_ms = 32.0
    line = get_writer("table").frame(f, "cam")
    assert line.strip() == "0:03.80  carving ice 0.968  [4.1 ms, 30.0 fps in, 32 ms late]"
    doc = json.loads(get_writer("jsonl").frame(f, "cam"))
    assert doc == {
        "source": "cam",
        "time": 3.8,
        "top": [{"label": "carving ice", "index": 72, "score": 0.968}],
        "infer_ms": 4.1,
        "latency_ms": 32.0,
        "input_fps": 30.0,
    }
    e = SegmentEvent("start", 1.0, Segment("carving ice", 72, 0.0, 1.0, 0.9))
    assert json.loads(get_writer("jsonl").event(e, "cam"))["event"] == "start"
    rows = list(csv.reader(io.StringIO(get_writer("csv").frame(f, "cam"))))
    assert rows == [["cam", "frame", "3.8000", "1", "carving ice", "72", "0.968000", ""]]
    rows = list(csv.reader(io.StringIO(get_writer("csv").event(e, "cam"))))
    assert rows == [["cam", "start", "1.0000", "", "carving ice", "72", "0.900000", "1.0000"]]
    with pytest.raises(ValueError):
        get_writer("json").frame(f, "cam")  # one document: not a live format


def test_srt_from_the_registry():
    assert render([result()], "srt").startswith("1\n00:00:00,000 --> 00:00:00,400\ncarving ice")


def test_atomic_file_keeps_the_old_one_when_writing_fails(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    os.chmod(target, 0o640)
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk trouble")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]  # no temporary left behind
    write_text(target, "new")
    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # the file's own mode is kept


def test_new_files_get_the_umask_mode(tmp_path):
    old = os.umask(0o022)
    try:
        write_text(tmp_path / "new.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.txt").stat().st_mode) == 0o644


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_rows_round_trip_with_numeric_fps_and_unicode(tmp_path, suffix):
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    rows = [video_row(result("ünïcode.mp4")), video_row(result("b.mp4", fps=None))]
    write_rows(tmp_path / f"v{suffix}", rows)
    back = read_rows(tmp_path / f"v{suffix}")
    assert [r["source"] for r in back] == ["ünïcode.mp4", "b.mp4"]
    assert back[0]["fps"] == 5.0 and back[1]["fps"] is None
    assert back[0]["top"][0] == {"label": "carving ice", "index": 72, "score": 0.9}
    frames = frame_rows(result())
    write_rows(tmp_path / f"f{suffix}", frames, "frames")
    assert read_rows(tmp_path / f"f{suffix}") == frames
    if suffix == ".jsonl":
        assert "ünïcode" in (tmp_path / f"v{suffix}").read_text("utf-8")
