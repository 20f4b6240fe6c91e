"""Gathering a dataset: annotations (CSV and classify's segment JSON) cut into class folders,
and event clips imported to label; through Python and ``vidcls dataset cut|import``."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from cli_here import run_here
from cli_run import assert_clean_error, run
from test_cut import FPS, GOP

from vidcls import VidclsError
from vidcls.bench.clips import encode_h264
from vidcls.media import read_clip
from vidcls.training.collect import (
    UNLABELLED,
    clip_name,
    cut_annotations,
    import_events,
    read_annotations,
)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """Two 20 s videos (10 fps, a keyframe every 2.5 s) in one folder."""
    folder = tmp_path_factory.mktemp("videos")
    options = {"g": str(GOP), "keyint_min": str(GOP), "sc_threshold": "0", "bf": "2"}
    made = []
    for name, base in (("game1.mp4", 40), ("game2.mp4", 160)):
        frames = [np.full((48, 64, 3), base + n % 50, np.uint8) for n in range(FPS * 20)]
        made.append(encode_h264(folder / name, frames, 64, 48, FPS, options=options))
    return made


def test_csv_cut_writes_one_clip_per_annotation_in_class_folders(videos, tmp_path):
    csv = videos[0].parent / "spans.csv"
    csv.write_text(
        "video,start,end,label\n"
        "game1.mp4,1.0,3.0,shooting\n"
        f"{videos[1]},4.2,5.5,passing\n"
        "game2.mp4,10,12.3,shooting\n"
    )
    found = read_annotations(csv, [videos[1]])  # game1.mp4 is found beside the CSV
    assert [(a.video.name, a.label, a.line) for a in found] == [
        ("game1.mp4", "shooting", 2),
        ("game2.mp4", "passing", 3),
        ("game2.mp4", "shooting", 4),
    ]
    out = tmp_path / "data"
    cuts = cut_annotations(found, out, progress=False)
    assert sorted(p.parent.name for p in out.glob("*/*.mp4")) == ["passing", "shooting", "shooting"]
    for a, cut in zip(found, cuts, strict=True):
        assert cut.path == out / a.label / clip_name(a)
        frames, _ = read_clip(cut.path)
        assert abs(len(frames) / FPS - (a.end - a.start)) <= 1 / FPS + 1e-9


def test_the_segment_json_of_classify_is_annotations_too(videos, tmp_path):
    docs = [
        {"source": str(videos[0]), "segments": [{"label": "dribbling", "start": 2, "end": 4.5}]},
        {"source": str(videos[1]), "segments": [{"label": "defense", "start": 0.5, "end": 1.5}]},
    ]
    one_per_line = tmp_path / "segments.jsonl"
    one_per_line.write_text("\n".join(json.dumps(d) for d in docs) + "\n")
    as_list = tmp_path / "segments.json"
    as_list.write_text(json.dumps(docs))
    for f in (one_per_line, as_list):
        found = read_annotations(f, videos)
        assert [(a.video, a.start, a.end, a.label) for a in found] == [
            (videos[0], 2.0, 4.5, "dribbling"),
            (videos[1], 0.5, 1.5, "defense"),
        ]


@pytest.mark.parametrize(
    "text,problem",
    [
        ("game1.mp4,1,2\n", "expected 4 columns"),
        ("game1.mp4,3,2,x\n", "start (3) is not before end (2)"),
        ("game1.mp4,abc,2,x\n", "not a time in seconds"),
        ("game1.mp4,1,2,../up\n", "plain folder name"),
        ("nowhere.mp4,1,2,x\n", "neither given nor beside"),
        ("video,start,end,label\n", "no annotations"),
        ('{"segments": 3}', "'source' and 'segments'"),
    ],
)
def test_bad_annotations_name_the_file_and_line(videos, tmp_path, text, problem):
    f = tmp_path / "bad.csv"
    f.write_text(text)
    with pytest.raises(VidclsError, match=re.escape(problem)) as e:
        read_annotations(f, videos)
    assert str(f) in str(e.value)


def test_dataset_cut_command_and_its_errors(videos, tmp_path, capfd):
    csv = tmp_path / "a.csv"
    csv.write_text(f"{videos[0]},2.5,5.0,shooting\n{videos[0]},6,7,passing\n")
    out = tmp_path / "data"
    r = run("dataset", "cut", videos[0], "--annotations", csv, "-o", out)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("wrote 2 clips of 2 labels")
    assert "vidcls: cut in " in r.stderr
    assert len(list(out.glob("*/*.mp4"))) == 2
    r = run("dataset", "cut", videos[0], "--annotations", csv, "-o", out, "--copy")
    assert r.returncode == 0 and "2 stream-copied, 0 re-encoded" in r.stderr
    missing = tmp_path / "missing.csv"
    r = run_here(capfd, "dataset", "cut", videos[0], "--annotations", missing, "-o", out)
    assert_clean_error(r, missing)
    assert_clean_error(run_here(capfd, "dataset", "cut", videos[0], "-o", out), "--annotations")


def test_import_copies_event_clips_once_into_unlabelled(videos, tmp_path, capfd):
    clips = tmp_path / "clips"
    (clips / "door").mkdir(parents=True)
    (clips / "yard").mkdir()
    (clips / "door" / "20261203-101500_dribbling.mp4").write_bytes(videos[0].read_bytes())
    (clips / "yard" / "20261203-101502_passing.mp4").write_bytes(videos[1].read_bytes())
    (clips / "yard" / ".20261203-101503_passing.mp4.part").write_bytes(b"half")  # in progress
    (clips / "yard" / "snap.jpg").write_bytes(b"\xff\xd8")
    data = tmp_path / "data"
    copied, present = import_events(clips, data)
    names = sorted(p.name for p in (data / UNLABELLED).iterdir())
    assert names == ["door_20261203-101500_dribbling.mp4", "yard_20261203-101502_passing.mp4"]
    assert len(copied) == 2 and present == []
    r = run("dataset", "import", clips, "-o", data)
    assert r.returncode == 0, r.stderr
    assert "imported 0 clips" in r.stdout and "(2 were already there)" in r.stdout
    assert_clean_error(run_here(capfd, "dataset", "import", tmp_path / "none", "-o", data), "none")
