"""Gathering a dataset: annotations (CSV and classify's segment JSON) cut into class folders,
and event clips imported to label; through Python and ``vidcls dataset cut|import``."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

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
    done = import_events(clips, data)
    names = sorted(p.name for p in (data / UNLABELLED).iterdir())
    assert names == ["door_20261203-101500_dribbling.mp4", "yard_20261203-101502_passing.mp4"]
    assert len(done.copied) == 2 and done.present == [] and done.skipped == []
    r = run("dataset", "import", clips, "-o", data)
    assert r.returncode == 0, r.stderr
    assert "imported 0 clips" in r.stdout and "(2 were already there)" in r.stdout
    assert_clean_error(run_here(capfd, "dataset", "import", tmp_path / "none", "-o", data), "none")


# -- hostile annotations, cuts and imports (issue 28) ---------------------------------------

HANG = 120  # seconds: a hang guard for a command, not a measure of speed


@pytest.mark.parametrize(
    "text,problem",
    [
        ("game1.mp4,1e18,2e18,x\n", "1e+18 s is past any video (at most 1e+08 s)"),
        ("game1.mp4,1,2," + "a" * 300 + "\n", "not a label: 'aaaa"),
        ('game1.mp4,1,2,"a\nb"\n', "not a label: 'a\\nb' (has a line break"),
        ("game1.mp4,1,2,a\tb\n", "has a line break or a control character"),
        ("game1.mp4,1,2,unlabelled\n", "'unlabelled' is for clips still to label"),
        ('{"source": "game1.mp4", "segments": [{"start": 1, "end": 2, "label": ["a", "b"]}]}',
         "not a label: ['a', 'b'] (must be text, not list)"),
        ('{"source": ["game1.mp4"], "segments": [{"start": 1, "end": 2, "label": "a"}]}',
         "a video is named by text, not list"),
        ('{"source": "game1.mp4", "segments": [{"start": true, "end": 2, "label": "a"}]}',
         "not a time in seconds: True"),
        ("[" * 100_000, "JSON nested more than 32 deep"),
        ('{"a": ' * 50_000 + "1" + "}" * 50_000, "JSON nested more than 32 deep"),
        ("game1.mp4,1,2," + "x" * 200_000 + "\n", "not CSV (field larger than field limit"),
        ("x" * 300 + ".mp4,1,2,a\n", "the video 'xxxx"),
        ("/".join(["d" * 200] * 30) + ".mp4,1,2,a\n", "is neither given nor beside"),
        ("game1.mp4\0,1,2,a\n", "the video 'game1.mp4\\x00' is neither given nor beside"),
    ],
)  # fmt: skip
def test_hostile_annotations_are_one_line(videos, tmp_path, capfd, text, problem):
    f = videos[0].parent / f"hostile-{os.getpid()}.csv"  # beside the videos it names
    try:
        f.write_text(text)
        r = run_here(capfd, "dataset", "cut", *videos, "--annotations", f, "-o", tmp_path / "d")
        line = assert_clean_error(r, f)
        assert problem in line, line
        assert r.stdout == "" and not (tmp_path / "d").exists()  # nothing cut, nothing made
    finally:
        f.unlink()


def test_cut_errors_come_before_any_progress(videos, tmp_path, capfd):
    """What can be known before cutting is said before the first progress line."""
    text = tmp_path / "text.mp4"
    text.write_text("not a video")
    cases = [
        (f"{videos[0]},1,2,a\n{videos[0]},30,31,b\n", "span 30-31 s starts after the video's end"),
        (f"{videos[0]},1,2,a\n{text},0,1,b\n", "not a readable video"),
        (f"{videos[0]},1,2,a\n{videos[0]},0,0.0000001,b\n", "shorter than one frame"),
        (f"{videos[0]},1,2,a\n{videos[0]},0,1e-320,b\n", "shorter than one frame"),
    ]  # fmt: skip
    for i, (rows, problem) in enumerate(cases):
        f = tmp_path / f"a{i}.csv"
        f.write_text(rows)
        r = run_here(
            capfd, "dataset", "cut", videos[0], text, "--annotations", f, "-o", tmp_path / "d"
        )
        assert problem in assert_clean_error(r), r.stderr  # one line: no "cutting:" before it
        assert not (tmp_path / "d").exists()
    f = tmp_path / "ok.csv"
    f.write_text(f"{videos[0]},1,2,a\n")
    afile = tmp_path / "afile"
    afile.write_text("x")
    r = run_here(capfd, "dataset", "cut", videos[0], "--annotations", f, "-o", afile)
    assert "is a file, not a folder" in assert_clean_error(r, afile)
    data, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    data.mkdir()
    elsewhere.mkdir()
    (data / "a").symlink_to(elsewhere)
    r = run_here(capfd, "dataset", "cut", videos[0], "--annotations", f, "-o", data)
    assert "is a symbolic link" in assert_clean_error(r, data / "a")
    assert list(elsewhere.iterdir()) == []


def event_clips(root, videos, tmp_path):
    """An event-clips folder with good clips and every kind of file an import must skip."""
    (root / "door").mkdir(parents=True)
    (root / "yard").mkdir()
    shutil.copyfile(videos[0], root / "door" / "1_a.mp4")
    shutil.copyfile(videos[1], root / "yard" / "3_c.mp4")
    bad = {
        "yard/2_b.mp4": "cannot be read (Permission denied)",
        "yard/empty.mp4": "empty",
        "yard/notes.mp4": "not a readable video",
        "yard/pipe.mp4": "not a regular file",
        "yard/link.mp4": "a symbolic link to outside the folder: not followed",
        "yard/broken.mp4": "a broken symbolic link",
    }
    shutil.copyfile(videos[1], root / "yard" / "2_b.mp4")
    (root / "yard" / "2_b.mp4").chmod(0)
    (root / "yard" / "empty.mp4").touch()
    (root / "yard" / "notes.mp4").write_text("notes, not a video")
    os.mkfifo(root / "yard" / "pipe.mp4")
    secret = tmp_path / "secret.mp4"
    shutil.copyfile(videos[0], secret)
    (root / "yard" / "link.mp4").symlink_to(secret)
    (root / "yard" / "broken.mp4").symlink_to(tmp_path / "nowhere.mp4")
    return bad


def as_a_user(*args) -> list[str]:
    """``vidcls ARGS`` as a user whom file permissions bind (root without the capabilities
    that let it read any file)."""
    cmd = [sys.executable, "-m", "vidcls.cli", *map(str, args)]
    if os.geteuid() != 0:
        return cmd
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: permissions cannot be tried")
    caps = "-dac_override,-dac_read_search"
    return ["setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}", *cmd]


def test_import_checks_every_file_then_copies_the_valid_ones(videos, tmp_path):
    clips, data = tmp_path / "clips", tmp_path / "data"
    bad = event_clips(clips, videos, tmp_path)
    cmd = as_a_user("dataset", "import", clips, "-o", data)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=HANG)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert (
        r.stdout == f"imported 2 clips into {data}/unlabelled (0 were already there; 6 skipped)\n"
    )
    skipped = r.stderr.splitlines()
    assert len(skipped) == len(bad), r.stderr  # each named once, on a line of its own
    for name, why in bad.items():
        assert any(x.startswith(f"vidcls: skipped {clips / name}: {why}") for x in skipped), name
    assert sorted(p.name for p in (data / UNLABELLED).iterdir()) == ["door_1_a.mp4", "yard_3_c.mp4"]


def test_an_import_with_nothing_valid_or_a_linked_target_copies_nothing(videos, tmp_path, capfd):
    clips = tmp_path / "clips"
    (clips / "cam").mkdir(parents=True)
    (clips / "cam" / "a.mp4").write_text("text")
    (clips / "cam" / "b.mp4").touch()
    r = run_here(capfd, "dataset", "import", clips, "-o", tmp_path / "data")
    line = assert_clean_error(r, clips)
    assert "no clip can be imported: " in line and "(and 1 more)" in line
    assert not (tmp_path / "data" / UNLABELLED).exists()
    shutil.copyfile(videos[0], clips / "cam" / "a.mp4")
    elsewhere, data = tmp_path / "elsewhere", tmp_path / "linked"
    elsewhere.mkdir()
    data.mkdir()
    (data / UNLABELLED).symlink_to(elsewhere)
    r = run_here(capfd, "dataset", "import", clips, "-o", data)
    assert "is a symbolic link or not a folder: nothing imported" in assert_clean_error(r)
    assert list(elsewhere.iterdir()) == []


def test_an_import_that_fails_half_way_takes_back_its_copies(videos, tmp_path):
    """The second copy fails (no more than 200 kB may be written, as on a full disk): the
    first is removed again, and the one line says nothing was imported."""
    clips, data = tmp_path / "clips", tmp_path / "data"
    (clips / "cam").mkdir(parents=True)
    shutil.copyfile(videos[0], clips / "cam" / "1.mp4")
    rng = np.random.default_rng(0)
    noise = [rng.integers(0, 255, (96, 128, 3), np.uint8) for _ in range(40)]
    big = encode_h264(clips / "cam" / "2.mp4", noise, 128, 96, 10)
    assert videos[0].stat().st_size < 150_000 < 200_000 < big.stat().st_size
    cmd = ["prlimit", "--fsize=200000", sys.executable, "-m", "vidcls.cli"]
    r = subprocess.run(
        [*cmd, "dataset", "import", clips, "-o", data], capture_output=True, text=True, timeout=HANG
    )
    line = assert_clean_error(r, data / UNLABELLED)
    assert f"cannot copy {big} (File too large): nothing imported" in line
    assert list((data / UNLABELLED).iterdir()) == []


def test_import_names_files_with_odd_names_on_one_line_each(videos, tmp_path):
    clips, data = tmp_path / "clips", tmp_path / "data"
    (clips / "cam").mkdir(parents=True)
    shutil.copyfile(videos[0], clips / "cam" / "ok.mp4")
    shutil.copyfile(videos[0], clips / "cam" / "new\nline.mp4")
    shutil.copyfile(videos[0], clips / "cam" / ("y" * 250 + ".mp4"))  # cam_ + it: over 255
    done = import_events(clips, data)
    assert [p.name for p in done.copied] == ["cam_ok.mp4"]
    assert sorted(done.skipped) == [
        f"{clips}/cam/new\\nline.mp4: a line break or control character in its name",
        f"{clips}/cam/{'y' * 250}.mp4: its name would be too long for a file",
    ]
