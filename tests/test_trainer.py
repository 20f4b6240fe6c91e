"""``vidcls train`` end to end on the real basketball dataset, as a subprocess.

The full training runs once per module (about half a minute on two idle cores); the other cases
train on small copies (two or three classes, a few clips each, few views) to stay fast. Checks
whose subject is not the process (the cache, the report's figures, a refused option) run the
command in this process (``run_here``). Nothing here depends on the machine's speed: timeouts
only stop a run that hangs. Bad data through the commands is in test_dataset.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import pty
import re
import select
import shutil
import struct
import subprocess
import sys
import termios
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from cli_here import run_here
from cli_run import CLI, assert_clean_error, run
from conftest import MODELS, SHARED, needs_shared

import vidcls
from vidcls.labels import embedded_config, embedded_labels
from vidcls.media import read_frames
from vidcls.training import TrainOptions, TrainResult, graph
from vidcls.training.dataset import load_dataset
from vidcls.training.seen import clip_hash, trained_on

BASKETBALL = SHARED / "datasets" / "basketball"
CLASSES = ["defense", "dribbling", "nothing", "passing", "shooting"]
PNG = b"\x89PNG\r\n\x1a\n"
HANG = 1800  # seconds: only a run that hangs takes this long (the full one: about 60 s)
# The exported logits are int8: one output step is (logit range)/255, a few hundredths of a
# logit for these heads, and the int8 weights add about as much again. A softmax moves each
# probability by at most a quarter of the spread of the logit errors, so the two heads agree to
# a few hundredths; 0.1 leaves room without hiding a real mismatch (a wrong class order or a
# bad scale moves probabilities by tenths).
MAX_PROBABILITY_DIFFERENCE = 0.1


pytestmark = [
    needs_shared,
    pytest.mark.skipif(not BASKETBALL.is_dir(), reason=f"{BASKETBALL} not found"),
]


@dataclass
class Trained:
    out: Path
    report: dict
    run: subprocess.CompletedProcess
    env: dict[str, str]
    folder: Path

    def sibling(self, suffix: str) -> Path:
        return self.out.with_name(self.out.stem + suffix)

    @property
    def val_clips(self) -> int:
        return sum(c["val"] for c in self.report["counts"].values())


VIEWS = 2  # each training clip and an augmented view (the default 8 takes 4 times as long)
HOLD_OUT = ("--val-fraction", "0.3")  # the default is 0: every clip trains the model


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Trained:
    """The full basketball training, once, holding 30 % of each class out for validation: its
    own model and feature cache in tmp."""
    folder = tmp_path_factory.mktemp("trained")
    env = {"VIDCLS_CACHE": str(folder / "cache"), "VIDCLS_MIRROR": str(MODELS)}
    out = folder / "basketball.tflite"
    r = run("train", BASKETBALL, "-o", out, *HOLD_OUT, "--views", VIEWS, env=env, timeout=HANG)
    print(f"\nfull training:\n{r.stdout}{r.stderr}")
    assert r.returncode == 0, r.stderr
    report = json.loads(out.with_name(out.stem + ".report.json").read_text())
    return Trained(out, report, r, env, folder)


def small_dataset(root: Path, classes=("defense", "dribbling"), n: int = 6, copy=False) -> Path:
    """``root/<class>/`` with symlinks to (or copies of) the first ``n`` clips of each class."""
    for c in classes:
        (root / c).mkdir(parents=True)
        clips = sorted((BASKETBALL / c).glob("*.mp4"), key=lambda p: int(p.stem.split("_")[-1]))
        for p in clips[:n]:
            shutil.copyfile(p, root / c / p.name) if copy else (root / c / p.name).symlink_to(p)
    return root


def tiny_copy(root: Path) -> Path:
    """Three classes of three copied clips each."""
    return small_dataset(root, ("defense", "dribbling", "passing"), 3, copy=True)


# -- the full training --------------------------------------------------------------------


def test_training_writes_model_labels_reports_and_plot(trained):
    print(f"training took {trained.report['seconds']:.1f} s")
    assert trained.out.is_file()
    labels = trained.sibling(".labels.txt")
    assert labels.read_text().splitlines() == CLASSES
    md = trained.sibling(".report.md")
    assert md.is_file() and trained.sibling(".report.json").is_file()
    text = md.read_text()
    assert "validation accuracy, exported .tflite" in text and "defense" in text
    assert f"![confusion matrix]({trained.sibling('.confusion.png').name})" in text
    png = trained.sibling(".confusion.png").read_bytes()
    assert png[:8] == PNG and len(png) > 1000
    assert "validation accuracy" in trained.run.stdout
    assert "Traceback" not in trained.run.stderr
    # The model carries its labels and the rate it was trained at (these 5-10 frame clips
    # are fed whole), and has the base model's streaming layout with 5 classes.
    assert embedded_labels(trained.out) == CLASSES
    config = embedded_config(trained.out)
    assert config["classes"] == CLASSES and config["fps"] is None
    assert config["window"] == 4.0  # the default window, classify's and live's for it
    # ... and the clips it was fitted on, by content: the first 70 % of each class.
    assert config["trained_on"]["clips"] == 138 and config["trained_on"]["held_out"] == 60
    assert config["trained_on"]["val_fraction"] == 0.3
    fitted = load_dataset(BASKETBALL, 0.3).train
    assert trained_on(trained.out).hashes == {clip_hash(c.path) for c in fitted}
    model = graph.load(trained.out.read_bytes())
    head = graph.find_head(model)
    assert graph.classifier_weights(model, head)[0].shape == (5, 2048)
    assert head.signature_key == "serving_default"


def test_report_accuracies(trained):
    rep, n = trained.report, trained.val_clips
    assert rep["classes"] == CLASSES
    assert n == 60 and rep["skipped"] == []
    exported, numpy_head = rep["val_accuracy_exported"], rep["val_accuracy"]
    baseline, diff = rep["baseline_val_accuracy"], rep["max_probability_difference"]
    print(
        f"validation on {n} clips: exported {exported:.3f}, numpy head {numpy_head:.3f}, "
        f"baseline (pooled features, no augmentation) {baseline:.3f}; training "
        f"{rep['train_accuracy']:.3f}; largest probability difference {diff:.4f}; l2 {rep['l2']}"
    )
    assert exported is not None and numpy_head is not None
    assert abs(exported - numpy_head) * n <= 1 + 1e-9  # within one clip
    assert exported > 0.3  # five classes: chance is 0.2
    assert diff < MAX_PROBABILITY_DIFFERENCE
    assert exported >= baseline - 1 / n - 1e-9  # beats the baseline, or within one clip of it
    # The confusion matrix of the numpy head covers every validation clip.
    assert sum(map(sum, rep["confusion"])) == n
    assert len(rep["confusion"]) == 5 and all(len(row) == 5 for row in rep["confusion"])
    assert set(rep["exported_per_class"]) == set(CLASSES)
    assert rep["fps"] is None  # short clips: every frame


def here(trained: Trained, monkeypatch, capfd, *args) -> subprocess.CompletedProcess:
    """``vidcls ARGS`` in this process (``run_here``) with the full training's cache."""
    for name, value in trained.env.items():
        monkeypatch.setenv(name, value)
    return run_here(capfd, *args)


def test_evaluate_on_the_val_split_matches_the_report(trained, tmp_path, monkeypatch, capfd):
    png = tmp_path / "c.png"
    r = here(
        trained,
        monkeypatch,
        capfd,
        "evaluate",
        BASKETBALL,
        "--model",
        trained.out,
        "--split",
        "val",
        "--format",
        "json",
        "--plot",
        png,
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["clips"] == trained.val_clips
    assert doc["top1"] == pytest.approx(trained.report["val_accuracy_exported"], abs=1e-4)
    assert set(doc["per_class"]) == set(CLASSES)
    assert doc["seen_in_training"] == 0 and doc["seen_left_out"] == 138  # by the clips' hashes
    for name, stats in doc["per_class"].items():
        assert {"precision", "recall", "support"} <= set(stats)
        assert stats["support"] == trained.report["counts"][name]["val"]
        expected = trained.report["exported_per_class"][name]
        assert stats["precision"] == pytest.approx(expected["precision"])
        assert stats["recall"] == pytest.approx(expected["recall"])
    assert png.read_bytes()[:8] == PNG


def test_classify_uses_embedded_labels_and_every_frame(trained, monkeypatch, capfd):
    clip = sorted((BASKETBALL / "shooting").glob("*.mp4"))[0]
    r = here(
        trained, monkeypatch, capfd, "classify", clip, "--model", trained.out, "--format", "json"
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["fps"] is None  # every decoded frame
    assert len(doc["frames"]) == len(read_frames(clip))
    top = doc["summary"]["top"]
    assert sorted(c["label"] for c in top) == CLASSES
    assert all(CLASSES[c["index"]] == c["label"] for c in top)


def test_a_second_run_reads_the_features_from_the_cache(trained, monkeypatch, capfd):
    features = Path(trained.env["VIDCLS_CACHE"]) / "features"
    before = sorted(p.name for p in features.glob("*.npz"))
    counts = trained.report["counts"].values()
    # Each training clip and its augmentations; validation clips once.
    assert len(before) == VIEWS * sum(c["train"] for c in counts) + trained.val_clips
    again = trained.folder / "again.tflite"
    # The same L2 as the first run: no cross-validation, only the cache is being measured.
    r = here(
        trained,
        monkeypatch,
        capfd,
        "train",
        BASKETBALL,
        "-o",
        again,
        *HOLD_OUT,
        "--l2",
        trained.report["l2"],
        "--views",
        VIEWS,
    )
    assert r.returncode == 0, r.stderr
    second = json.loads(again.with_name("again.report.json").read_text())
    first_s, second_s = trained.report["extraction_seconds"], second["extraction_seconds"]
    print(f"feature extraction: first run {first_s:.1f} s, second run {second_s:.2f} s")
    assert f"(0 computed, {len(before)} from the cache)" in r.stderr  # every view read back
    assert sorted(p.name for p in features.glob("*.npz")) == before  # nothing recomputed
    # The same features and L2 give the same head.
    assert abs(second["val_accuracy"] - trained.report["val_accuracy"]) * 60 <= 1 + 1e-9


# -- progress -------------------------------------------------------------------------------

# Each phase: its start line ("vidcls: NAME: ... ...") and its end line ("vidcls: DONE in S s").
PHASES = {
    "features": "features ready",
    "fitting": "fitted",
    "writing": "written",
    "verifying": "verified",
    "report": "report written",
}


@pytest.fixture(scope="module")
def tiny_trained(tmp_path_factory) -> tuple[Path, Path, subprocess.CompletedProcess]:
    """``vidcls train`` (no terminal, the defaults: every clip fitted) on ``tiny_copy``, once,
    with its own empty feature cache: the data folder, the model and the run."""
    folder = tmp_path_factory.mktemp("tiny")
    data, out = tiny_copy(folder / "data"), folder / "m.tflite"
    env = {"VIDCLS_CACHE": str(folder / "cache"), "VIDCLS_MIRROR": str(MODELS)}
    return data, out, run("train", data, "-o", out, "--views", "2", env=env, timeout=HANG)


def test_without_a_terminal_each_phase_logs_its_start_and_its_duration(tiny_trained):
    data, out, r = tiny_trained
    print(f"tiny training:\n{r.stderr}")
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert "\r" not in r.stderr and "%|" not in r.stderr  # no bars in a log
    for name, done in PHASES.items():
        start = [i for i, x in enumerate(lines) if x.startswith(f"vidcls: {name}: ")]
        end = [i for i, x in enumerate(lines) if re.match(rf"vidcls: {done} in \d+\.\d s", x)]
        assert len(start) == len(end) == 1 and start[0] < end[0], (name, r.stderr)
    starts = [line for line in lines if line.endswith(" ...")]
    assert [line.split(":")[1].strip() for line in starts] == list(PHASES)  # in that order
    # Every clip trains the model (no validation by default), and each is also decoded as
    # classify decodes it, to check the exported int8 model against the float head.
    assert "9 clips x 2 views + 9 training clips to check the export" in r.stderr
    assert "training clips, 2 clips at once) ..." in r.stderr  # --threads 2, the default
    assert "5 L2 values x 3 folds" in r.stderr  # three clips a class: three folds
    assert "(27 computed, 0 from the cache)" in r.stderr
    assert "cross-validated" in r.stdout and "int8 check" in r.stdout
    assert "validation accuracy" not in r.stdout
    assert r.stdout.startswith(f"wrote {out} (3 classes)")  # stdout as it was


def test_on_a_terminal_each_phase_has_a_bar_and_no_log_lines(tiny_trained, tmp_path):
    """stderr is a real pseudo-terminal (120 columns): a tqdm bar per phase, finished. The
    same training as the log test's: its features are read from that run's cache (the bar
    advances per view all the same)."""
    data, features = tiny_trained[0], tiny_trained[1].parent / "cache" / "features"
    out = tmp_path / "m.tflite"
    stderr = run_on_a_terminal(
        [*CLI, "train", data, "-o", out, "--views", "2", "--cache", features]
    )
    assert out.is_file()
    for name, done in PHASES.items():
        assert re.search(rf"\r{name}: 100%\|[^\r]*\| (\d+)/\1 ", stderr), (name, stderr)
        assert f"{done} in" not in stderr
    assert "Traceback" not in stderr


def run_on_a_terminal(command: list, timeout: float = HANG) -> str:
    """Run ``command`` with stderr on a 120-column pseudo-terminal; its stderr (exit 0 checked)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    p = subprocess.Popen(list(map(str, command)), stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while select.select([master], [], [], max(0.0, deadline - time.monotonic()))[0]:
            try:
                chunks.append(os.read(master, 65536))
            except OSError:  # EIO: the child has closed the terminal
                break
            if not chunks[-1]:
                break
        assert p.wait(timeout=HANG) == 0
    finally:
        p.kill()
        os.close(master)
    return b"".join(chunks).decode(errors="replace")


# `vidcls train ARGS` in a process that sends itself SIGINT (as Ctrl-C does) once its first
# features are in the cache: the moment is the run's own, not a watcher's, however busy the
# machine (a watcher polling the cache could wake after the last clip).
INTERRUPTED_TRAIN = """
import os, signal, sys
from vidcls.cli import main
from vidcls.training.features import FeatureCache
put = FeatureCache.put
def put_then_interrupt(self, *args):
    put(self, *args)
    if not getattr(FeatureCache, "interrupted", False):
        FeatureCache.interrupted = True
        os.kill(os.getpid(), signal.SIGINT)
FeatureCache.put = put_then_interrupt
sys.exit(main(["train", *sys.argv[1:]]))
"""


def test_ctrl_c_during_extraction_exits_130_and_keeps_the_cached_features(tmp_path, capfd):
    """SIGINT once the first features are cached: one line, exit 130, nothing half-written;
    the next run reads every feature already cached instead of computing it again."""
    data = tiny_copy(tmp_path / "data")
    cache = tmp_path / "cache"
    out = tmp_path / "m.tflite"
    args = ["train", data, "-o", out, "--views", "2", "--cache", cache, "--l2", "0.01"]
    command = [sys.executable, "-c", INTERRUPTED_TRAIN, *map(str, args[1:])]
    p = subprocess.run(command, capture_output=True, text=True, timeout=HANG)
    stdout, stderr = p.stdout, p.stderr
    assert p.returncode == 130, stderr
    assert "Traceback" not in stderr and stdout == ""
    lines = stderr.splitlines()
    assert lines[-1] == "vidcls: error: interrupted"
    assert [line for line in lines if not line.startswith("vidcls: features: ")] == lines[-1:]
    assert not out.exists()
    before = {f.name: f.stat().st_mtime_ns for f in cache.iterdir()}
    assert before and all(name.endswith(".npz") and name[0] != "." for name in before)
    total = 9 * 2 + 9  # nine training clips in 2 views, and each again to check the export
    assert len(before) < total  # interrupted during extraction
    r = run_here(capfd, *args)  # the run that reads the cache back: here, not a new process
    assert r.returncode == 0, r.stderr
    assert f"({total - len(before)} computed, {len(before)} from the cache)" in r.stderr
    after = {f.name: f.stat().st_mtime_ns for f in cache.iterdir()}
    assert len(after) == total and all(after[name] == t for name, t in before.items())


# -- outputs --------------------------------------------------------------------------------


def test_an_output_that_is_not_tflite_is_a_clean_error(tmp_path, capfd):
    data = small_dataset(tmp_path / "data")
    out = tmp_path / "model.bin"
    assert_clean_error(run_here(capfd, "train", data, "-o", out, "--views", "2"), "model.bin")
    assert not out.exists()


def test_an_output_folder_that_does_not_exist_is_a_clean_error(tmp_path, capfd):
    """Before any work: the only line on stderr is the error (no phase has started)."""
    data = small_dataset(tmp_path / "data")
    out = tmp_path / "missing" / "m.tflite"
    assert_clean_error(run_here(capfd, "train", data, "-o", out, "--views", "2"), out.parent)
    folder = tmp_path / "folder.tflite"
    folder.mkdir()
    r = run_here(capfd, "train", data, "-o", folder, "--views", "2")
    assert_clean_error(r, folder, "folder")


def test_a_missing_data_folder_is_a_clean_error(tmp_path, capfd):
    missing = tmp_path / "nothing here"
    assert_clean_error(run_here(capfd, "train", missing, "-o", tmp_path / "m.tflite"), missing)


def test_evaluate_knows_a_model_trained_on_every_clip(tiny_trained, monkeypatch, capfd):
    """``train`` fits every clip by default: ``evaluate --split val`` on the same folder is
    refused in one line (it once reported 100 % on the training clips), and ``--split all``
    says every clip was seen in training."""
    data, out, r = tiny_trained
    assert r.returncode == 0, r.stderr
    monkeypatch.setenv("VIDCLS_CACHE", str(out.parent / "cache"))  # the model tried there
    assert embedded_config(out)["trained_on"]["held_out"] == 0
    r = run_here(capfd, "evaluate", data, "--model", out, "--split", "val")
    assert_clean_error(r, data, "m.tflite was trained on all 9 clips here", "--val-fraction 0.3")
    r = run_here(capfd, "evaluate", data, "--model", out, "--format", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["clips"] == doc["seen_in_training"] == 9 and doc["seen_left_out"] == 0


# -- flags and the Python API -------------------------------------------------------------


def test_a_bad_flag_is_a_clean_error(tmp_path, capfd):
    data = small_dataset(tmp_path / "data")
    r = run_here(capfd, "train", data, "-o", tmp_path / "m.tflite", "--views", "0")
    assert "views" in assert_clean_error(r)
    assert not (tmp_path / "m.tflite").exists()


def test_train_and_evaluate_in_python(tmp_path, caplog):
    """``vidcls.train`` with option keywords (every frame), then ``vidcls.evaluate`` on its
    validation clips: the same accuracy as the training's own check of the exported model.
    Each method in turn, the second on the features the first cached (every one read back);
    with ``method="head"`` the first head conv is rewritten exactly when steps were kept."""
    data = small_dataset(tmp_path / "data")
    out = tmp_path / "m.tflite"
    base = graph.load(MODELS.joinpath("movinet_a0_stream_int8.tflite").read_bytes())
    caplog.set_level(logging.INFO, "vidcls.progress")
    counts = []
    for method in ("classifier", "head"):
        caplog.clear()
        result = vidcls.train(
            data, out, views=2, fps=0, cache=tmp_path / "features", method=method, val_fraction=0.3
        )
        assert isinstance(result, TrainResult) and result.method == method
        model = graph.load(out.read_bytes())
        first, base_first = (
            graph.first_conv_weights(m, graph.find_first_conv(m, graph.find_head(m)))[0]
            for m in (model, base)
        )
        assert np.array_equal(first, base_first) == (result.head_steps == 0)
        if method == "classifier":
            assert result.head_steps == 0
        assert result.model_path == out and result.fps is None and result.options.views == 2
        assert embedded_config(out)["fps"] is None
        assert any((tmp_path / "features").glob("*.npz"))
        counts += re.findall(
            r"features ready in [\d.]+ s \((\d+) computed, (\d+) from", caplog.text
        )
        assert result.max_probability_difference < MAX_PROBABILITY_DIFFERENCE
        doc = result.to_dict()
        assert doc["options"]["fps"] == 0 and doc["fps"] is None
        json.dumps(doc)
        evaluation = vidcls.evaluate(data, out, split="val")
        assert len(evaluation.clips) == len(result.evaluation.clips) == 4
        assert evaluation.top1 == result.val_accuracy_exported
        assert [c.top for c in evaluation.clips] == [c.top for c in result.evaluation.clips]
        with pytest.raises(TypeError):
            vidcls.train(data, out, TrainOptions(), views=2)
    (computed, none), (again, cached) = counts
    assert int(computed) > 0 and none == again == "0" and cached == computed
