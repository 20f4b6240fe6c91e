"""Folders of labelled clips: natural order, contiguous and explicit splits, bad folders."""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from cli_here import run_here
from cli_run import assert_clean_error, run
from conftest import A0
from test_trainer import BASKETBALL, HANG, small_dataset, tiny_copy

from vidcls.errors import VidclsError
from vidcls.labels import embedded_labels
from vidcls.media import read_frames
from vidcls.training.dataset import labelled_clips, load_dataset, natural_key, scan_classes

needs_basketball = pytest.mark.skipif(
    not (A0.is_file() and BASKETBALL.is_dir()), reason=f"{A0} or {BASKETBALL} not found"
)


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory) -> Path:
    """A real 6-frame 32x32 H.264 clip made with PyAV."""
    path = tmp_path_factory.mktemp("media") / "tiny.mp4"
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=12)
        s.width = s.height = 32
        s.pix_fmt = "yuv420p"
        s.codec_context.time_base = Fraction(1, 12)
        for i in range(6):
            frame = av.VideoFrame.from_ndarray(
                np.full((32, 32, 3), 40 * i, np.uint8), format="rgb24"
            )
            frame.pts = i
            for packet in s.encode(frame):
                out.mux(packet)
        for packet in s.encode():
            out.mux(packet)
    return path


def make(root: Path, layout: dict[str, list[str]], clip: Path) -> Path:
    """Folders under ``root`` holding copies of ``clip`` under the given names."""
    for folder, names in layout.items():
        d = root / folder
        d.mkdir(parents=True, exist_ok=True)
        for name in names:
            shutil.copyfile(clip, d / name)
    return root


def names(clips) -> list[str]:
    return [c.path.name for c in clips]


def test_the_tiny_clip_is_a_real_video(tiny_clip):
    frames = read_frames(tiny_clip)
    assert len(frames) == 6 and frames[0].shape == (32, 32, 3)


def test_natural_sort_puts_clip_2_before_clip_10(tmp_path, tiny_clip):
    files = ["clip_10.mp4", "clip_2.mp4", "clip_1.mp4", "Clip_3.mp4", "clip_21.mp4"]
    make(tmp_path, {"a": files, "b": ["x.mp4"]}, tiny_clip)
    (tmp_path / "a" / "notes.txt").write_text("not a clip")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "clip.mp4").write_bytes(tiny_clip.read_bytes())
    found = scan_classes(tmp_path)
    assert list(found) == ["a", "b"]  # hidden folders and non-video files ignored
    assert [p.name for p in found["a"]] == [
        "clip_1.mp4",
        "clip_2.mp4",
        "Clip_3.mp4",
        "clip_10.mp4",
        "clip_21.mp4",
    ]
    assert sorted(map(Path, ["c_10", "c_9", "c_100"]), key=natural_key) == [
        Path("c_9"),
        Path("c_10"),
        Path("c_100"),
    ]


def test_contiguous_split_holds_out_the_last_30_percent_of_each_class(tmp_path, tiny_clip):
    layout = {
        "big": [f"clip_{i}.mp4" for i in range(1, 11)],  # 10 clips: 3 held out
        "small": ["s_1.mp4", "s_2.mp4"],  # 2 clips: round(0.6) = 1 held out
        "three": ["t_1.mp4", "t_2.mp4", "t_10.mp4"],  # round(0.9) = 1
        "single": ["only.mp4"],  # 1 clip: nothing to hold out
    }
    ds = load_dataset(make(tmp_path, layout, tiny_clip))
    assert ds.classes == ["big", "single", "small", "three"]
    by = {
        c: ([x for x in ds.train if x.label == c], [x for x in ds.val if x.label == c])
        for c in ds.classes
    }
    assert names(by["big"][0]) == [f"clip_{i}.mp4" for i in range(1, 8)]
    assert names(by["big"][1]) == ["clip_8.mp4", "clip_9.mp4", "clip_10.mp4"]
    assert names(by["small"][0]) == ["s_1.mp4"] and names(by["small"][1]) == ["s_2.mp4"]
    assert names(by["three"][1]) == ["t_10.mp4"]  # natural order: t_10 is last
    assert names(by["single"][0]) == ["only.mp4"] and by["single"][1] == []
    assert ds.counts() == {
        "big": {"train": 7, "val": 3},
        "single": {"train": 1, "val": 0},
        "small": {"train": 1, "val": 1},
        "three": {"train": 2, "val": 1},
    }
    assert all(ds.classes[c.index] == c.label for c in ds.train + ds.val)
    # No clip in both parts, none lost.
    assert len({c.path for c in ds.train} | {c.path for c in ds.val}) == 16


def test_val_fraction_zero_holds_nothing_out_and_a_bad_fraction_is_an_error(tmp_path, tiny_clip):
    root = make(tmp_path, {"a": ["1.mp4", "2.mp4"], "b": ["1.mp4", "2.mp4"]}, tiny_clip)
    ds = load_dataset(root, val_fraction=0.0)
    assert len(ds.train) == 4 and ds.val == []
    with pytest.raises(VidclsError, match="fraction"):
        load_dataset(root, val_fraction=1.0)


def test_explicit_train_and_val_folders_are_the_split(tmp_path, tiny_clip):
    make(
        tmp_path / "train",
        {"cat": ["c_1.mp4", "c_2.mp4"], "dog": ["d_1.mp4", "d_2.mp4"]},
        tiny_clip,
    )
    make(tmp_path / "val", {"dog": ["d_9.mp4"], "cat": ["c_9.mp4", "c_10.mp4"]}, tiny_clip)
    ds = load_dataset(tmp_path)
    assert ds.classes == ["cat", "dog"]
    assert names(ds.train) == ["c_1.mp4", "c_2.mp4", "d_1.mp4", "d_2.mp4"]
    assert names(ds.val) == ["c_9.mp4", "c_10.mp4", "d_9.mp4"]
    assert all(c.path.parent.parent.name == "train" for c in ds.train)
    assert all(c.path.parent.parent.name == "val" for c in ds.val)
    assert [c.index for c in ds.val] == [0, 0, 1]


def test_val_classes_not_in_train_are_an_error(tmp_path, tiny_clip):
    make(tmp_path / "train", {"cat": ["c_1.mp4"], "dog": ["d_1.mp4"]}, tiny_clip)
    make(tmp_path / "val", {"cat": ["c_2.mp4"], "horse": ["h_1.mp4"]}, tiny_clip)
    with pytest.raises(VidclsError, match="horse") as e:
        load_dataset(tmp_path)
    assert str(tmp_path) in str(e.value)


def test_an_empty_class_folder_is_skipped_with_a_warning(tmp_path, tiny_clip, caplog):
    root = make(tmp_path, {"a": ["1.mp4", "2.mp4"], "b": ["1.mp4", "2.mp4"]}, tiny_clip)
    (root / "empty_class").mkdir()
    (root / "text_only").mkdir()
    (root / "text_only" / "readme.txt").write_text("no clips here")
    with caplog.at_level(logging.WARNING, logger="vidcls"):
        ds = load_dataset(root)
    assert ds.classes == ["a", "b"]
    warnings = [r for r in caplog.records if r.name == "vidcls" and r.levelno == logging.WARNING]
    messages = [r.getMessage() for r in warnings]
    assert len(messages) == 2, messages
    assert any(str(root / "empty_class") in m for m in messages)
    assert any(str(root / "text_only") in m for m in messages)


def test_only_one_class_is_an_error(tmp_path, tiny_clip):
    root = make(tmp_path, {"lonely": ["1.mp4", "2.mp4"]}, tiny_clip)
    (root / "empty").mkdir()  # an empty folder does not count as a class
    with pytest.raises(VidclsError, match="at least 2") as e:
        load_dataset(root)
    assert "lonely" in str(e.value) and str(root) in str(e.value)


def test_no_class_folders_is_an_error(tmp_path, tiny_clip):
    shutil.copyfile(tiny_clip, tmp_path / "loose.mp4")
    with pytest.raises(VidclsError, match="at least 2"):
        load_dataset(tmp_path)


def test_a_missing_folder_is_an_error(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(VidclsError, match="not found") as e:
        load_dataset(missing)
    assert str(missing) in str(e.value)
    not_a_folder = tmp_path / "file.mp4"
    not_a_folder.write_bytes(b"x")
    with pytest.raises(VidclsError, match="not a folder"):
        load_dataset(not_a_folder)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(VidclsError, match="not a folder"):  # named, never opened
        load_dataset(fifo)


def bad_entries(folder: Path) -> dict[Path, str]:
    """Entries named like clips in ``folder`` that are not video files, and why, as named."""
    entries = {
        folder / "a_folder.mp4": "a folder",
        folder / "b_fifo.mp4": "FIFO",
        folder / "c_dangling.mp4": "broken symbolic link",
        folder / "d_loop.mp4": "symbolic links",
    }
    (folder / "a_folder.mp4").mkdir()
    os.mkfifo(folder / "b_fifo.mp4")
    (folder / "c_dangling.mp4").symlink_to(folder / "nowhere.mp4")
    (folder / "d_loop.mp4").symlink_to("d_loop.mp4")
    return entries


def test_entries_named_like_clips_that_are_not_files_are_skipped_and_named(
    tmp_path, tiny_clip, caplog
):
    root = make(tmp_path, {"a": ["1.mp4", "2.mp4", "3.mp4"], "b": ["1.mp4", "2.mp4"]}, tiny_clip)
    bad = bad_entries(root / "a")
    (root / "empty").mkdir()
    with caplog.at_level(logging.WARNING, logger="vidcls"):
        ds = load_dataset(root)
    assert names(ds.train) == ["1.mp4", "2.mp4", "1.mp4"] and names(ds.val) == ["3.mp4", "2.mp4"]
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(messages) == len(bad) + 1 == len(ds.skipped), messages
    for path, why in bad.items():
        (line,) = [s for s in ds.skipped if s.startswith(f"{path}: ")]
        assert why in line and any(line in m for m in messages)
    assert any(s.startswith(f"{root / 'empty'}: no video clips") for s in ds.skipped)


def test_evaluation_scans_once_and_names_what_it_skips(tmp_path, tiny_clip, caplog):
    root = make(tmp_path, {"a": ["1.mp4", "2.mp4"], "b": ["1.mp4", "2.mp4"]}, tiny_clip)
    (root / "empty").mkdir()
    os.mkfifo(root / "b" / "pipe.mp4")
    skipped: list[str] = []
    with caplog.at_level(logging.WARNING, logger="vidcls"):
        names_, val = labelled_clips(root, "val", 0.5, skipped)
    assert names_ == ["a", "b"] and [c.path for c in val] == [root / "a/2.mp4", root / "b/2.mp4"]
    assert len(skipped) == 2 and len(caplog.records) == 2  # each warned once, not twice


# -- the clips evaluate runs on ---------------------------------------------------------------


def test_labelled_clips_all_and_val_on_a_flat_folder(tmp_path, tiny_clip):
    root = make(tmp_path, {"b": ["b_1.mp4", "b_2.mp4", "b_3.mp4"], "a": ["a_1.mp4"]}, tiny_clip)
    names_, clips = labelled_clips(root)
    assert names_ == ["a", "b"]
    assert names(clips) == ["a_1.mp4", "b_1.mp4", "b_2.mp4", "b_3.mp4"]
    assert [c.index for c in clips] == [0, 1, 1, 1]
    # split="val": exactly what training holds out.
    _, val = labelled_clips(root, "val", val_fraction=0.34)
    assert val == load_dataset(root, 0.34).val
    assert names(val) == ["b_3.mp4"]


def test_labelled_clips_on_explicit_folders(tmp_path, tiny_clip):
    make(tmp_path / "train", {"cat": ["c_1.mp4"], "dog": ["d_1.mp4"]}, tiny_clip)
    make(tmp_path / "val", {"cat": ["c_9.mp4"], "dog": ["d_9.mp4"]}, tiny_clip)
    names_, clips = labelled_clips(tmp_path)
    assert names_ == ["cat", "dog"]
    assert sorted(names(clips)) == ["c_1.mp4", "c_9.mp4", "d_1.mp4", "d_9.mp4"]
    _, val = labelled_clips(tmp_path, "val")
    assert names(val) == ["c_9.mp4", "d_9.mp4"]
    assert all(c.path.parent.parent.name == "val" for c in val)


def test_labelled_clips_errors(tmp_path, tiny_clip):
    with pytest.raises(VidclsError, match="split"):
        labelled_clips(tmp_path, "test")
    (tmp_path / "empty").mkdir()
    with pytest.raises(VidclsError, match="no class folders") as e:
        labelled_clips(tmp_path)
    assert str(tmp_path) in str(e.value)


# -- bad data, through `vidcls train` and `vidcls evaluate` -----------------------------------


def hostile_dataset(root: Path) -> tuple[Path, list[Path]]:
    """A tiny real dataset (3 classes x 3 clips) plus one of each kind of bad data; and the
    bad entries. ``z_random.mp4`` sorts last: it is a validation clip."""
    data = tiny_copy(root)
    bad = [
        data / "defense" / "a_text.mp4",  # a text file renamed .mp4
        data / "defense" / "c_empty.mp4",  # zero bytes
        data / "defense" / "z_random.mp4",  # random bytes
        data / "dribbling" / "a_fifo.mp4",  # a FIFO: never opened, so never a hang
        data / "dribbling" / "b_folder.mp4",  # a folder named like a clip
        data / "passing" / "a_dangling.mp4",  # a broken link
        data / "empty_class",  # a class folder without clips
    ]
    bad[0].write_text("This is not a video.\n" * 200)
    bad[1].touch()
    bad[2].write_bytes(random.Random(0).randbytes(30_000))
    os.mkfifo(bad[3])
    bad[4].mkdir()
    bad[5].symlink_to(root / "nowhere.mp4")
    bad[6].mkdir()
    return data, bad


@needs_basketball
def test_bad_data_is_named_never_a_traceback_or_a_hang(tmp_path):
    data, bad = hostile_dataset(tmp_path / "data")
    out = tmp_path / "m.tflite"  # one view: the bad entries are never augmented anyway
    r = run("train", data, "-o", out, "--views", "1", timeout=HANG)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    warnings = [line for line in r.stderr.splitlines() if line.startswith("vidcls: skipping ")]
    for path in bad:
        assert [w for w in warnings if f" {path}: " in w], (path, r.stderr)
    report = json.loads((tmp_path / "m.report.json").read_text())
    skipped = report["skipped"]
    assert len(skipped) == len(bad) and all(any(str(p) in s for s in skipped) for p in bad)
    assert "z_random.mp4" in (tmp_path / "m.report.md").read_text()
    assert embedded_labels(out) == ["defense", "dribbling", "passing"]
    assert report["int8"]["clips"] > 0  # the readable clips checked the export
    # evaluate names the same entries, and evaluates the good clips.
    r = run("evaluate", data, "--model", out, "--format", "json", timeout=HANG)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    doc = json.loads(r.stdout)
    assert doc["clips"] == 9 and len(doc["skipped"]) == len(bad)
    for path in bad:
        assert f" {path}: " in r.stderr, (path, r.stderr)


@needs_basketball
def test_no_readable_clip_or_one_class_is_a_one_line_error(tmp_path, capfd):
    data, _ = hostile_dataset(tmp_path / "data")
    for clip in data.glob("*/*_*[0-9].mp4"):  # the good clips
        clip.write_bytes(b"\x00" * 1000)
    r = run("train", data, "-o", tmp_path / "m.tflite", "--views", "2", timeout=HANG)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("vidcls: error: ")]
    assert errors == [f"vidcls: error: {data}: no readable training clips"], r.stderr
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert_clean_error(run_here(capfd, "train", fifo, "-o", tmp_path / "m.tflite"), fifo)
    one = small_dataset(tmp_path / "one", classes=("defense",))
    out = tmp_path / "m.tflite"
    assert_clean_error(run_here(capfd, "train", one, "-o", out, "--views", "2"), one, "2")
    assert not out.exists()


def test_class_folders_that_cannot_be_labels_or_lead_outside_are_skipped(
    tmp_path, tiny_clip, capfd
):
    """(issue 28) A linked class folder outside DIR, a name with a line break, ``unlabelled/``
    (clips still to label) and a name too long for a label are not classes: each is named
    and skipped, by training and by ``dataset check`` alike."""
    root = make(
        tmp_path / "d",
        {"a": ["1.mp4", "2.mp4", "3.mp4"], "b": ["1.mp4", "2.mp4", "3.mp4"]},
        tiny_clip,
    )
    outside = make(tmp_path / "outside", {"c": ["1.mp4", "2.mp4", "3.mp4"]}, tiny_clip) / "c"
    (root / "c").symlink_to(outside)
    make(root, {"line\nbreak": ["1.mp4"], "unlabelled": ["1.mp4"], "x" * 120: ["1.mp4"]}, tiny_clip)
    (root / "inside").symlink_to(root / "a")  # a link within DIR is followed as before
    ds = load_dataset(root)
    assert ds.classes == ["a", "b", "inside"]
    why = {
        "c": "a symbolic link to a folder outside the dataset",
        "line\nbreak": "has a line break or a control character",
        "unlabelled": "'unlabelled' is for clips still to label",
        "x" * 120: "over 100 characters",
    }
    for name, problem in why.items():
        assert f"{root / name}: {problem}" in ds.skipped
    r = run_here(capfd, "dataset", "check", root, "--format", "json")
    report = json.loads(r.stdout)
    assert sorted(report["classes"]) == ["a", "b", "inside"]
