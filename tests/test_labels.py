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
    with pytest.raises(VidclsError, match="not UTF-8"):
        read_labels(binary)
    nul = tmp_path / "nul.txt"
    nul.write_bytes(b"a\x00b\n")
    with pytest.raises(VidclsError, match="binary"):
        read_labels(nul)


def test_hostile_label_files_are_refused_before_reading(tmp_path):
    """A FIFO would block forever, /dev/zero never ends, a huge file exhausts memory."""
    import os
    import threading

    fifo = tmp_path / "labels.fifo"
    os.mkfifo(fifo)
    # Opening it would block until a writer came: a guard comes as one after a minute, so a
    # read that opened it ends (and fails here) instead of hanging the suite.
    fired = []

    def writer() -> None:
        fired.append(True)
        with open(fifo, "wb"):
            pass

    guard = threading.Timer(60, writer)
    guard.start()
    try:
        with pytest.raises(VidclsError, match="FIFO"):
            read_labels(fifo)
    finally:
        guard.cancel()
    assert not fired  # refused before opening it
    with pytest.raises(VidclsError, match="device"):
        read_labels("/dev/zero")
    big = tmp_path / "big.txt"
    with open(big, "wb") as f:
        f.truncate(64 << 20)  # sparse: 64 MB of nothing
    with pytest.raises(VidclsError, match="over the 4 MB limit"):
        read_labels(big)
    loop = tmp_path / "loop.txt"
    loop.symlink_to(loop)
    with pytest.raises(VidclsError, match="symbolic link loop"):
        read_labels(loop)
    with pytest.raises(VidclsError, match="directory"):
        read_labels(tmp_path)


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
