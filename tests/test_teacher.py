"""The teaching folder: clips filed by label, names kept safe, real training jobs in their own
process (their progress on disk, a kill midway leaving the deployed model as it was), deploys
and undo surviving a new Teacher on the same folder (a server restart)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import MODELS, SHARED, needs_shared

from vidcls import VidclsError
from vidcls.labels import embedded_labels
from vidcls.serve.teacher import Teacher, check_label
from vidcls.training.collect import UNLABELLED
from vidcls.training.job import _current
from vidcls.training.seen import clip_hash, trained_on

BASKETBALL = SHARED / "datasets" / "basketball"
pytestmark = needs_shared
HANG = 600  # seconds: only a job that hangs takes this long


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """Jobs inherit the environment: the mirror supplies the model, the cache is the test's."""
    monkeypatch.setenv("VIDCLS_MIRROR", str(MODELS))
    monkeypatch.setenv("VIDCLS_CACHE", str(tmp_path / "cache"))


def add(teacher: Teacher, label: str | None, n: int, source: str | None = None) -> list[str]:
    """``n`` basketball clips of ``source`` (default: ``label``) copied in, filed as ``label``."""
    names = []
    for p in sorted((BASKETBALL / (source or label)).glob("*.mp4"))[:n]:
        target = teacher.new_name(f"{source or label}-{p.name}")
        shutil.copyfile(p, target)
        if label:
            teacher.label(target.name, label)
        names.append(target.name)
    return names


def wait(teacher: Teacher, job_id: str, until=lambda d: d.get("state") in ("done", "failed")):
    deadline = time.monotonic() + HANG
    while not until(doc := teacher.job(job_id)):
        assert time.monotonic() < deadline, doc
        time.sleep(0.2)
    return doc


def test_clips_are_filed_by_label_with_safe_unique_names(tmp_path):
    t = Teacher(tmp_path / "teach", "a0")
    names = add(t, None, 2, "passing")
    assert t.clips() == {"unlabelled": sorted(names), "labelled": {}, "labels": []}
    t.label(names[0], "pass")
    t.label(names[1], "pass")
    t.label(names[1], "")  # back to unlabelled
    assert t.clips()["labelled"] == {"pass": [names[0]]} and t.clips()["unlabelled"] == [names[1]]
    t.discard(names[1])
    assert t.clips()["unlabelled"] == [] and (t.clips_dir / ".discarded" / names[1]).is_file()
    # A name taken in any folder gets a number; odd names become safe ones.
    assert t.new_name(names[0]).name != names[0]
    assert t.new_name("../../etc/pass wd.mp4").name == "pass_wd.mp4"
    with pytest.raises(VidclsError, match="named like a video"):
        t.new_name("notes.txt")
    for bad in ("../up", ".hidden", UNLABELLED, "", "a/b", "a\nb", "x" * 101, ["a", "b"], "a\x00"):
        with pytest.raises(VidclsError, match="not a label"):
            check_label(bad)
    for bad in ("../x.mp4", "nothere.mp4"):
        with pytest.raises(VidclsError):
            t.find(bad)


@dataclass
class Trained:
    """The module's teaching folder, the job as it started, what a second start said, and the
    finished job's document."""

    folder: Path
    started: dict
    second_start: str
    done: dict


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Trained:
    """A teaching folder with one finished job (four clips of each of two classes, an unlabelled
    one it does not train on, two views), started as the page starts one; each test works on
    a copy of it."""
    folder = tmp_path_factory.mktemp("trained") / "teach"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VIDCLS_CACHE", str(folder.parent / "cache"))
        t = Teacher(folder, "a0")
        add(t, "dribbling", 4)
        add(t, "shooting", 4)
        add(t, None, 1, "passing")  # unlabelled: not trained on
        started = t.start_job({"views": 2})
        try:
            t.start_job()
            second = "started"
        except VidclsError as e:
            second = str(e)
        done = wait(t, started["id"])
    assert done["state"] == "done", (done, (t.jobs_dir / started["id"] / "log.txt").read_text())
    return Trained(folder, started, second, done)


def copy_of(trained: Trained, tmp_path: Path, deploy=None) -> tuple[Teacher, str]:
    shutil.copytree(trained.folder, tmp_path / "teach")
    return Teacher(tmp_path / "teach", "a0", deploy), trained.started["id"]


def test_a_job_trains_in_its_own_process_and_deploys_and_undoes(trained, tmp_path):
    deployed = []
    t, _ = copy_of(trained, tmp_path, deployed.append)
    job = trained.started
    assert job["counts"] == {"dribbling": 4, "shooting": 4} and job["state"] == "queued"
    assert "already running" in trained.second_start
    doc = trained.done
    phases = [p["name"] for p in doc["phases"]]
    assert phases == ["features", "fitting", "writing", "verifying"]
    assert all(p["state"] == "done" and p["done"] == p["total"] for p in doc["phases"])
    result = doc["result"]
    assert result["classes"] == ["dribbling", "shooting"] and 0 <= result["cv_accuracy"] <= 1
    assert sum(map(sum, result["cv_confusion"])) == 8  # every clip predicted out of its fold
    assert result["int8"]["clips"] == 8 and result["int8"]["agreement"] >= 0.9
    model = t.jobs_dir / job["id"] / "model.tflite"
    assert embedded_labels(model) == ["dribbling", "shooting"]
    # It records the clips it was fitted on, as `vidcls train` does: the labelled ones.
    labelled = [t.clips_dir / c / n for c, names in t.clips()["labelled"].items() for n in names]
    assert len(labelled) == 8 and trained_on(model).hashes == set(map(clip_hash, labelled))
    assert t.jobs()[0]["id"] == job["id"]
    # Deploy: the callback switches the sources, the model is kept in models/.
    state = t.deploy(job["id"])
    assert deployed == [state["current"]] and state["current"].endswith(f"{job['id']}.tflite")
    assert embedded_labels(state["current"]) == ["dribbling", "shooting"]
    # A new Teacher on the folder (a restart) knows the labels, the job and the deploy.
    again = Teacher(tmp_path / "teach", "a0")
    assert again.clips()["labels"] == ["dribbling", "shooting"]
    assert again.job(job["id"])["state"] == "done"
    assert again.deployed()["current"] == state["current"]
    assert again.undo()["current"] is None
    with pytest.raises(VidclsError, match="nothing deployed"):
        again.undo()


def test_a_failed_switch_changes_nothing(trained, tmp_path):
    def refuse(model: str) -> None:
        raise VidclsError("the new model takes 224x224 pictures")

    t, job_id = copy_of(trained, tmp_path, refuse)
    with pytest.raises(VidclsError, match="224x224"):
        t.deploy(job_id)
    assert t.deployed() == {"current": None, "history": []}
    with pytest.raises(VidclsError, match="no finished model"):
        t.deploy("20990101-000000")


def test_a_job_killed_midway_leaves_the_deployed_model_untouched(trained, tmp_path):
    t, first = copy_of(trained, tmp_path)
    current = t.deploy(first)["current"]
    before = (os.stat(current).st_mtime_ns, Path(current).read_bytes())
    add(t, "passing", 3)
    second = t.start_job({"views": 4})
    doc = wait(t, second["id"], lambda d: any(p.get("done") for p in d.get("phases", [])))
    os.kill(doc["pid"], signal.SIGKILL)  # midway through its features
    doc = wait(t, second["id"])
    assert doc["state"] == "failed" and "interrupted" in doc["error"]
    assert t.deployed()["current"] == current
    assert (os.stat(current).st_mtime_ns, Path(current).read_bytes()) == before
    assert not (t.jobs_dir / second["id"] / "model.tflite").exists()
    # A restart finds it failed too; its document stays readable JSON.
    assert Teacher(tmp_path / "teach", "a0").job(second["id"])["state"] == "failed"
    json.loads((t.jobs_dir / second["id"] / "job.json").read_text())


def test_the_deployed_model_on_the_next_jobs_clips_says_how_many_it_trained_on(trained, tmp_path):
    """A job compares the new model with the deployed one on the same clips; the deployed one
    was trained on some of them, and the comparison says how many (here: all eight)."""
    t, job_id = copy_of(trained, tmp_path)
    model = str(t.jobs_dir / job_id / "model.tflite")
    got = _current(model, str(t.clips_dir), ["dribbling", "shooting"])
    assert got["clips"] == got["seen"] == 8, got
    add(t, "dribbling", 5)  # copies of the four it saw, under new names, and one new clip
    got = _current(model, str(t.clips_dir), ["dribbling", "shooting"])
    assert (got["clips"], got["seen"]) == (13, 12), got
