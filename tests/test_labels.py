"""Label files: bundled Kinetics-600, files beside a model, embedded files, count checks."""

from __future__ import annotations

import shutil
import zipfile

import pytest
from conftest import A0, CUSTOM, needs_shared

from vidcls import VidclsError
from vidcls.labels import embedded_labels, kinetics600_labels, read_labels, resolve_labels
from vidcls.model import StreamModel


def test_bundled_kinetics600():
    labels = kinetics600_labels()
    assert len(labels) == 600
    assert labels[0] == "abseiling" and labels[72] == "carving ice" and labels[-1] == "zumba"


def test_read_labels_errors(tmp_path):
    with pytest.raises(VidclsError, match="not found"):
        read_labels(tmp_path / "missing.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(VidclsError, match="empty"):
        read_labels(empty)
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"\xff\xfe\x00\x80")
    with pytest.raises(VidclsError, match="cannot read"):
        read_labels(binary)


def test_count_mismatch_names_the_file(tmp_path):
    f = tmp_path / "three.txt"
    f.write_text("x\ny\nz\n")
    with pytest.raises(VidclsError, match="label count 3 does not match the model's 600") as e:
        resolve_labels(f, "model.tflite", 600)
    assert str(f) in str(e.value)


def test_model_without_labels_needs_them(tmp_path):
    with pytest.raises(VidclsError, match="no labels were found"):
        resolve_labels(None, tmp_path / "m.tflite", 7)


@needs_shared
def test_labels_beside_and_embedded(tmp_path):
    # Beside: the custom model's folder has labels.txt.
    assert resolve_labels(None, CUSTOM, 7)[0] == "active-lying"
    # Embedded: a TFLite-metadata associated file is a zip appended to the flatbuffer.
    model = tmp_path / "with_labels.tflite"
    shutil.copyfile(A0, model)
    names = [f"class {i}" for i in range(600)]
    with zipfile.ZipFile(model, "a") as z:
        z.writestr("labels.txt", "\n".join(names) + "\n")
    assert embedded_labels(model) == names
    assert resolve_labels(None, model, 600) == names
    assert StreamModel(model).layout.num_classes == 600  # still loads
    assert embedded_labels(A0) is None
