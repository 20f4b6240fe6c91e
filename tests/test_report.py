"""The training report beside the model: Markdown, JSON and the confusion matrix picture."""

from __future__ import annotations

import json
from pathlib import Path

from vidcls.results import Category
from vidcls.training import Evaluation, Prediction, TrainOptions, TrainResult, write_report
from vidcls.training.report import report_text

CLASSES = ["jump", "run"]


def result(tmp_path: Path, validated: bool = True) -> TrainResult:
    evaluation = Evaluation(str(tmp_path / "m.tflite"), CLASSES)
    if validated:
        for path, label, top in (("a", "jump", "jump"), ("b", "run", "jump"), ("c", "run", "run")):
            other = "run" if top == "jump" else "jump"
            tops = [Category(top, CLASSES.index(top), 0.8)]
            tops.append(Category(other, CLASSES.index(other), 0.2))
            evaluation.clips.append(Prediction(path, label, tops))
    return TrainResult(
        model_path=tmp_path / "m.tflite",
        labels_path=tmp_path / "m.labels.txt",
        classes=CLASSES,
        counts={"jump": {"train": 4, "val": 1}, "run": {"train": 5, "val": 2}},
        train_accuracy=1.0,
        val_accuracy=0.6667 if validated else None,
        val_accuracy_exported=evaluation.top1 if validated else None,
        baseline_val_accuracy=0.3333 if validated else None,
        max_probability_difference=0.01 if validated else None,
        l2=0.01,
        seconds=12.0,
        skipped=["bad.mp4: cannot read clip"],
        extraction_seconds=7.0,
        evaluation=evaluation,
        fps=5.0,
        data_dir="clips/",
        options=TrainOptions(views=3),
    )


def test_the_report_files_beside_the_model(tmp_path):
    md = write_report(result(tmp_path))
    assert md == tmp_path / "m.report.md"
    text = md.read_text()
    assert text.startswith("# m.tflite\n") and "Trained by vidcls on `clips/` from `a0`" in text
    assert "clips fed 5 fps" in text and "| run | 5 | 2 |" in text
    assert "validation accuracy, exported .tflite: 66.7%" in text
    assert "2 augmented views per training clip; L2 0.01" in text
    assert "- bad.mp4: cannot read clip" in text
    assert "![confusion matrix](m.confusion.png)" in text
    assert (tmp_path / "m.confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc = json.loads((tmp_path / "m.report.json").read_text())
    assert doc["model_path"] == str(tmp_path / "m.tflite") and doc["options"]["views"] == 3
    assert doc["exported_per_class"]["run"]["recall"] == 0.5 and "evaluation" not in doc


def test_without_validation_clips_the_report_says_less(tmp_path):
    text = report_text(result(tmp_path, validated=False))
    assert "validation accuracy" not in text and "confusion" not in text
    assert "training accuracy (clips without augmentation): 100.0%" in text
