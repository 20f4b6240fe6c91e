"""Accuracy on a folder of labelled clips: the real A0 on shared clips, and the metrics.

Each clip is classified as ``vidcls classify`` classifies it: one test runs both commands on
the same clip and compares their probabilities.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from cli_here import run_here
from cli_run import assert_clean_error, run
from conftest import A0, SHARED, needs_shared, video

from vidcls.errors import VidclsError
from vidcls.results import Category
from vidcls.training import Evaluation, Prediction, evaluate, plot_confusion
from vidcls.training.dataset import load_dataset, natural_key
from vidcls.training.evaluation import OTHER
from vidcls.training.export import export_model
from vidcls.training.fit import SoftmaxClassifier
from vidcls.training.seen import TrainedOn

CARVING = ("carving_ice_rpi.mp4", "carving_ice_android.mp4")
BASKETBALL = SHARED / "datasets" / "basketball"


def by_label(root: Path, folders: dict[str, tuple[str, ...]]) -> Path:
    """``root/<label>/`` holding symlinks to shared clips."""
    for label, clips in folders.items():
        (root / label).mkdir(parents=True)
        for name in clips:
            (root / label / name).symlink_to(video(name))
    return root


# -- the real model on real clips --------------------------------------------------------


@needs_shared
def test_a0_on_carving_ice_clips_via_the_cli(tmp_path, capfd):
    """In this process (the command's own run is the log test's below)."""
    data = by_label(tmp_path / "data", {"carving ice": CARVING})
    report, png = tmp_path / "eval.json", tmp_path / "confusion.png"
    args = ["--format", "json", "--output", report, "--plot", png]
    r = run_here(capfd, "evaluate", data, "--model", A0, *args)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    doc = json.loads(r.stdout)
    assert set(doc) == {
        "model",
        "clips",
        "top1",
        "top5",
        "per_class",
        "confusion",
        "seen_in_training",
        "seen_left_out",
        "skipped",
        "predictions",
    }
    assert json.loads(report.read_text()) == doc
    assert doc["seen_in_training"] is None and doc["seen_left_out"] == 0  # A0 records nothing
    assert doc["clips"] == 2 and doc["skipped"] == []
    assert doc["top1"] == 1.0 and doc["top5"] == 1.0
    assert doc["per_class"] == {"carving ice": {"precision": 1.0, "recall": 1.0, "support": 2}}
    assert doc["confusion"] == {"labels": ["carving ice"], "matrix": [[2]]}
    assert sorted(Path(p["path"]).name for p in doc["predictions"]) == sorted(CARVING)
    for p in doc["predictions"]:
        assert set(p) == {"path", "label", "predicted", "top5", "top", "seen_in_training"}
        assert p["seen_in_training"] is None
        assert p["label"] == p["predicted"] == "carving ice" and len(p["top5"]) == 5
        assert [c["label"] for c in p["top"]] == p["top5"]
        scores = [c["score"] for c in p["top"]]
        assert scores == sorted(scores, reverse=True) and 0 < scores[0] <= 1
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@needs_shared
def test_a0_on_carving_ice_clips_in_python(tmp_path):
    data = by_label(tmp_path, {"carving ice": CARVING})
    result = evaluate(data, A0)
    assert result.classes == ["carving ice"]
    assert result.top1 == 1.0
    cols, m = result.confusion()
    assert cols == ["carving ice"] and m.shape == (1, 1) and m.tolist() == [[2]]
    assert "carving ice" in result.table()
    # Every frame (fps 0) instead of the model's 5 fps: the same verdict on these clips.
    assert evaluate(data, A0, fps=0).top1 == 1.0
    with pytest.raises(VidclsError, match="fps"):
        evaluate(data, A0, fps=-1)


@needs_shared
def test_a_folder_not_named_as_a_model_label_is_a_clean_error(tmp_path, capfd):
    data = by_label(tmp_path / "data", {"carving ice": CARVING[:1], "ice sculpting": CARVING[1:]})
    r = run_here(capfd, "evaluate", data, "--model", A0)
    assert_clean_error(r, "ice sculpting", data)
    with pytest.raises(VidclsError, match="ice sculpting"):
        evaluate(data, A0)


@needs_shared
def test_an_unreadable_clip_is_skipped_and_named(tmp_path):
    data = by_label(tmp_path, {"carving ice": CARVING[:1]})
    bad = data / "carving ice" / "broken.mp4"
    bad.write_bytes(b"\x00not a video" * 500)
    result = evaluate(data, A0)
    assert len(result.clips) == 1 and result.top1 == 1.0
    assert len(result.skipped) == 1 and str(bad) in result.skipped[0]


@needs_shared
def test_split_val_on_explicit_train_and_val_folders(tmp_path, capfd):
    data = tmp_path / "data"
    by_label(data / "train", {"carving ice": CARVING[:1], "situp": ("example_video01.mp4",)})
    by_label(data / "val", {"carving ice": CARVING[1:], "situp": ("example_video01.mp4",)})
    r = run_here(capfd, "evaluate", data, "--model", A0, "--split", "val", "--format", "json")
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["clips"] == 2
    assert all(Path(p["path"]).parent.parent.name == "val" for p in doc["predictions"])
    assert set(doc["per_class"]) == {"carving ice", "situp"}
    assert "note:" not in r.stderr  # the folders are the split: nothing assumed


@needs_shared
def test_split_val_for_a_model_that_records_nothing_says_what_it_assumed(tmp_path, capfd):
    """The official model records no training clips: --split val holds out the last 30 % of
    each class, as it always did, and says so in one line; not when --val-fraction is given."""
    data = by_label(tmp_path / "data", {"carving ice": CARVING})
    r = run_here(capfd, "evaluate", data, "--model", A0, "--split", "val", "--format", "json")
    assert r.returncode == 0, r.stderr
    (note,) = [line for line in r.stderr.splitlines() if "note:" in line]
    assert "does not record the clips it was trained on" in note and "0.3" in note
    doc = json.loads(r.stdout)
    assert [Path(p["path"]).name for p in doc["predictions"]] == ["carving_ice_rpi.mp4"]
    assert doc["seen_in_training"] is None
    given = "--val-fraction", "0.5"
    r = run_here(capfd, "evaluate", data, "--model", A0, "--split", "val", *given)
    assert r.returncode == 0 and "note:" not in r.stderr, r.stderr
    assert r.stdout.startswith(f"{A0}: 1 clip, top-1 100.0%, top-5 100.0%\n")


def basketball(root: Path, skip: int, n: int) -> list[Path]:
    """Copies of clips ``skip`` to ``skip + n`` (natural order) of two basketball classes under
    ``root/<class>/``, named ``clip_<i>.mp4`` (not as the originals)."""
    made = []
    for c in ("defense", "dribbling"):
        (root / c).mkdir(parents=True, exist_ok=True)
        clips = sorted((BASKETBALL / c).glob("*.mp4"), key=natural_key)[skip : skip + n]
        for i, p in enumerate(clips, start=skip):
            made.append(Path(shutil.copyfile(p, root / c / f"clip_{i}.mp4")))
    return made


def recording(out: Path, trained: Path) -> Path:
    """A real model (A0 with a random two-class head) recording that it was fitted on every
    clip in ``trained``, as ``vidcls train`` records it."""
    rng = np.random.default_rng(3)
    head = SoftmaxClassifier(rng.normal(0, 0.1, (2, 2048)), rng.normal(0, 1, 2))
    record = TrainedOn.of(load_dataset(trained, 0.0), 0.0)
    rows = rng.uniform(0, 6, (10, 2048))
    export_model(A0, head, ["defense", "dribbling"], None, rows, out, trained_on=record)
    return out


@needs_shared
@pytest.mark.skipif(not BASKETBALL.is_dir(), reason=f"{BASKETBALL} not found")
def test_split_val_leaves_out_the_clips_the_model_was_trained_on_by_content(tmp_path, capfd):
    """A model trained on every clip of a folder: --split val there is refused in one line;
    on a moved copy with other names and new clips it classifies the new clips alone, and
    --split all says how many of the clips the model saw."""
    seen = basketball(tmp_path / "data", 0, 3)
    model = recording(tmp_path / "m.tflite", tmp_path / "data")
    r = run_here(capfd, "evaluate", tmp_path / "data", "--model", model, "--split", "val")
    assert_clean_error(r, tmp_path / "data", "m.tflite was trained on all 6 clips here")
    with pytest.raises(VidclsError, match="none is held out"):
        evaluate(tmp_path / "data", model, split="val")

    moved = tmp_path / "moved"
    for p in seen:  # the same clips, in another folder under other names
        (moved / p.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(p, moved / p.parent.name / f"renamed_{p.name}")
    new = basketball(moved, 3, 2)
    r = run_here(capfd, "evaluate", moved, "--model", model, "--split", "val", "--format", "json")
    assert r.returncode == 0 and "note:" not in r.stderr, r.stderr
    doc = json.loads(r.stdout)
    assert sorted(p["path"] for p in doc["predictions"]) == sorted(map(str, new))
    assert doc["seen_in_training"] == 0 and doc["seen_left_out"] == 6
    assert not any(p["seen_in_training"] for p in doc["predictions"])

    r = run_here(capfd, "evaluate", moved, "--model", model)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].endswith(" (6 of them seen in training)")
    assert "10 clips" in r.stdout.splitlines()[0]
    r = run_here(
        capfd, "evaluate", moved, "--model", model, "--split", "val", "--val-fraction", "0.5"
    )
    assert r.returncode == 0 and "--val-fraction ignored" in r.stderr
    assert "4 clips" in r.stdout and "(held out: 6 clips seen in training left out)" in r.stdout


@needs_shared
@pytest.mark.parametrize("flag", ["--output", "--plot"])
def test_an_output_that_cannot_be_written_is_a_clean_error_before_any_work(tmp_path, capfd, flag):
    """A missing folder, or a folder where the file should go: one line, exit 2, and nothing
    evaluated first (the error is the only line: no phase has started)."""
    data = by_label(tmp_path / "data", {"carving ice": CARVING})
    suffix = ".json" if flag == "--output" else ".png"
    missing = tmp_path / "no" / "such" / f"x{suffix}"
    r = run_here(capfd, "evaluate", data, "--model", A0, flag, missing)
    assert_clean_error(r, missing.parent)
    assert not missing.parent.exists()
    folder = tmp_path / f"folder{suffix}"
    folder.mkdir()
    r = run_here(capfd, "evaluate", data, "--model", A0, flag, folder)
    assert_clean_error(r, folder, "folder")


@needs_shared
def test_without_a_terminal_the_evaluation_logs_its_start_and_duration(tmp_path):
    data = by_label(tmp_path / "data", {"carving ice": CARVING})
    r = run("evaluate", data, "--model", A0)
    assert r.returncode == 0, r.stderr
    start, end = r.stderr.splitlines()
    assert start == "vidcls: evaluating: 2 clips of 1 class ..."
    assert re.fullmatch(r"vidcls: evaluated in \d+\.\d s \(top-1 100\.0%\)", end), end
    assert r.stdout.startswith(f"{A0}: 2 clips, top-1 100.0%")


@needs_shared
def test_a_missing_data_folder_is_a_clean_error(tmp_path, capfd):
    missing = tmp_path / "missing"
    assert_clean_error(run_here(capfd, "evaluate", missing, "--model", A0), missing)


# -- the metrics, on hand-made predictions -------------------------------------------------


def _clip(label: str, predicted: str, top5: list[str] | None = None) -> Prediction:
    """A prediction whose leading labels are ``top5`` (scores falling from 0.5)."""
    top = [Category(name, i, 0.5 / (i + 1)) for i, name in enumerate(top5 or [predicted])]
    assert top[0].label == predicted
    return Prediction(f"{label}/{predicted}.mp4", label, top)


@pytest.fixture
def hand_made() -> Evaluation:
    """Three classes, eight clips; two predictions fall outside the dataset's classes."""
    e = Evaluation("hand.tflite", ["a", "b", "c"])
    e.clips = [
        _clip("a", "a", ["a", "b"]),
        _clip("a", "a"),
        _clip("a", "b", ["b", "a"]),  # wrong, right in top-5
        _clip("b", "b"),
        _clip("b", "zebra", ["zebra", "c"]),  # outside: (other); b not in top-5
        _clip("c", "c"),
        _clip("c", "a", ["a", "x", "c"]),  # wrong, right in top-5
        _clip("c", "yak", ["yak", "c"]),  # outside: (other); right in top-5
    ]
    return e


def test_top1_top5(hand_made):
    assert hand_made.top1 == pytest.approx(4 / 8)
    assert hand_made.top5 == pytest.approx(7 / 8)


@pytest.mark.parametrize("labels", [3, 5])
def test_no_top5_for_a_model_of_at_most_five_labels(hand_made, labels):
    hand_made.labels = labels  # top-5 of a 5-label model is 100 % by construction
    assert hand_made.top5 is None
    assert hand_made.to_dict()["top5"] is None
    first = hand_made.table().splitlines()[0]
    assert "top-1 50.0%" in first and "top-5" not in first


def test_top5_for_a_model_of_six_labels_or_more(hand_made):
    hand_made.labels = 6
    assert hand_made.top5 == pytest.approx(7 / 8)
    assert "top-5 87.5%" in hand_made.table().splitlines()[0]


def test_confusion_has_an_other_column_for_predictions_outside_the_classes(hand_made):
    cols, m = hand_made.confusion()
    assert cols == ["a", "b", "c", OTHER]
    assert m.shape == (3, 4)
    np.testing.assert_array_equal(m, [[2, 1, 0, 0], [0, 1, 0, 1], [1, 0, 1, 1]])
    assert m.sum() == len(hand_made.clips)


def test_precision_and_recall_per_class(hand_made):
    per = hand_made.per_class()
    assert list(per) == ["a", "b", "c"]  # no row for (other)
    # a: predicted 3 times (2 right); 3 true clips, 2 found.
    assert per["a"] == {
        "precision": pytest.approx(2 / 3),
        "recall": pytest.approx(2 / 3),
        "support": 3,
    }
    # b: predicted twice (1 right); 2 true clips, 1 found.
    assert per["b"] == {
        "precision": pytest.approx(1 / 2),
        "recall": pytest.approx(1 / 2),
        "support": 2,
    }
    # c: predicted once (right); 3 true clips, 1 found.
    assert per["c"] == {"precision": 1.0, "recall": pytest.approx(1 / 3), "support": 3}


def test_a_class_never_predicted_has_precision_zero_not_a_division_error():
    e = Evaluation("m", ["a", "b"])
    e.clips = [_clip("a", "a"), _clip("b", "a")]
    per = e.per_class()
    assert per["b"] == {"precision": 0.0, "recall": 0.0, "support": 1}
    assert per["a"]["precision"] == 0.5 and per["a"]["recall"] == 1.0
    cols, m = e.confusion()
    assert cols == ["a", "b"]  # every prediction is a dataset class: no (other) column
    assert m.tolist() == [[1, 0], [1, 0]]


def test_to_dict_and_table(hand_made, tmp_path):
    d = hand_made.to_dict()
    assert d["clips"] == 8 and d["top1"] == 0.5 and d["top5"] == 0.875
    assert d["confusion"]["labels"] == ["a", "b", "c", OTHER]
    assert d["confusion"]["matrix"] == [[2, 1, 0, 0], [0, 1, 0, 1], [1, 0, 1, 1]]
    assert d["predictions"] == [c.to_dict() for c in hand_made.clips]
    assert d["predictions"][0] == {
        "path": "a/a.mp4",
        "label": "a",
        "predicted": "a",
        "top5": ["a", "b"],
        "top": [
            {"label": "a", "index": 0, "score": 0.5},
            {"label": "b", "index": 1, "score": 0.25},
        ],
        "seen_in_training": None,
    }
    json.dumps(d)  # serializable as is
    table = hand_made.table()
    assert "top-1 50.0%" in table and "top-5 87.5%" in table and OTHER[:9] in table
    png = plot_confusion(hand_made, tmp_path / "c.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- one frame loop: evaluate and classify agree -----------------------------------------------


@needs_shared
@pytest.mark.parametrize("fps", [[], ["--fps", "native"], ["--fps", "3"]], ids=str)
def test_evaluate_and_classify_give_the_same_probabilities(tmp_path, capfd, fps):
    """The same clip, model and rate: ``evaluate``'s prediction is ``classify``'s summary
    (both commands run in this process: their real command lines run in other tests)."""
    data = by_label(tmp_path / "data", {"carving ice": CARVING[:1]})
    r = run_here(capfd, "evaluate", data, "--model", A0, "--format", "json", *fps)
    assert r.returncode == 0, r.stderr
    (prediction,) = json.loads(r.stdout)["predictions"]
    r = run_here(capfd, "classify", prediction["path"], "--model", A0, "--format", "json", *fps)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)["summary"]["top"]
    print(f"fps {fps or 'model'}: evaluate {prediction['top']}\nclassify {summary}")
    assert len(summary) == 5 and summary[0]["label"] == "carving ice"
    assert prediction["top"] == summary
