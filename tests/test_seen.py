"""What a trained model was fitted on (vidcls.training.seen): clip hashes by content, the
record written into a real exported model and read back, and models that record nothing or
a damaged record read as recording nothing."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import A0, CUSTOM, SHARED, needs_shared

from vidcls.labels import embedded_config
from vidcls.training import graph
from vidcls.training.dataset import load_dataset, natural_key
from vidcls.training.export import export_model
from vidcls.training.fit import SoftmaxClassifier
from vidcls.training.seen import DIGEST, HASHES, TrainedOn, clip_hash, trained_on

BASKETBALL = SHARED / "datasets" / "basketball"


def test_a_clip_hash_is_its_content_not_its_name(tmp_path):
    a, b, c = tmp_path / "a.mp4", tmp_path / "renamed.mp4", tmp_path / "c.mp4"
    a.write_bytes(b"one clip" * 1000)
    b.write_bytes(b"one clip" * 1000)
    c.write_bytes(b"one clip" * 999 + b"another")
    assert clip_hash(a) == clip_hash(b) != clip_hash(c)
    assert len(clip_hash(a)) == DIGEST and int(clip_hash(a), 16) >= 0
    assert clip_hash(tmp_path / "missing.mp4") is None
    assert clip_hash(tmp_path) is None  # a folder cannot be read as a clip


def small(root, n: int = 4):
    """``root/<class>/`` with copies of the first ``n`` clips of two basketball classes."""
    for c in ("defense", "dribbling"):
        (root / c).mkdir(parents=True)
        for p in sorted((BASKETBALL / c).glob("*.mp4"), key=natural_key)[:n]:
            shutil.copyfile(p, root / c / p.name)
    return root


def export(out, record: TrainedOn | None):
    """A real model (the A0 with a random two-class head) recording ``record``."""
    rng = np.random.default_rng(3)
    head = SoftmaxClassifier(rng.normal(0, 0.1, (2, 2048)), rng.normal(0, 1, 2))
    rows = rng.uniform(0, 6, (10, 2048))
    export_model(A0, head, ["defense", "dribbling"], None, rows, out, trained_on=record)
    return out


@needs_shared
def test_the_record_of_a_split_is_its_training_clips(tmp_path):
    dataset = load_dataset(small(tmp_path / "data"), 0.5)
    record = TrainedOn.of(dataset, 0.5)
    assert record.hashes == {clip_hash(c.path) for c in dataset.train}
    assert len(record.hashes) == 4 and record.held_out == 4 and record.val_fraction == 0.5
    assert not record.hashes & {clip_hash(c.path) for c in dataset.val}
    assert record.saw(dataset.train[0].path) and not record.saw(dataset.val[0].path)


@needs_shared
def test_the_exported_model_carries_the_record_and_reads_it_back(tmp_path):
    dataset = load_dataset(small(tmp_path / "data"), 0.0)
    record = TrainedOn.of(dataset, 0.0)
    out = export(tmp_path / "m.tflite", record)
    assert trained_on(out) == record
    assert embedded_config(out)["trained_on"] == {
        "clips": 8,
        "held_out": 0,
        "val_fraction": 0.0,
        "hashes": HASHES,
    }
    assert embedded_config(out)["classes"] == ["defense", "dribbling"]  # the rest unchanged


@needs_shared
def test_models_that_record_nothing(tmp_path):
    assert trained_on(A0) is None  # the official model
    assert trained_on(CUSTOM) is None  # a fine-tune made elsewhere
    assert trained_on("a0") is None  # a zoo name
    assert trained_on(tmp_path / "missing.tflite") is None
    assert trained_on(export(tmp_path / "older.tflite", None)) is None  # before the record
    assert "trained_on" not in embedded_config(tmp_path / "older.tflite")


@needs_shared
@pytest.mark.parametrize(
    "hashes",
    [None, "not a hash\n", "0123456789abcdeg\n", b"\xff\xfe\n"],
    ids=["missing", "words", "not hex", "not ascii"],
)
def test_a_damaged_record_reads_as_none(tmp_path, hashes):
    config = {"fps": None, "classes": ["a", "b"], "trained_on": {"clips": 1, "hashes": HASHES}}
    files = {"vidcls.json": json.dumps(config)}
    if hashes is not None:
        files[HASHES] = hashes.decode("latin-1") if isinstance(hashes, bytes) else hashes
    model = tmp_path / "m.tflite"
    model.write_bytes(graph.with_files(A0.read_bytes(), files))
    assert trained_on(model) is None
