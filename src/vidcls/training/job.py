"""A training run in a process of its own, for the teaching page of ``vidcls serve``:
``python -m vidcls.training.job FOLDER``.

``FOLDER/job.json`` holds the request (``data``: the dataset folder; ``options``:
:class:`~.options.TrainOptions` fields; ``current``: the model deployed now, if any) and,
as the run goes, its ``state`` (``running``, ``done``, ``failed``), its phases with their
progress, and at the end the result: the cross-validated accuracy and confusion, the int8
check, and the current model's accuracy on the same clips (with how many of them it was
trained on, when it records that). The model is written to ``FOLDER/model.tflite`` (with its
labels and report beside it). The run touches nothing outside ``FOLDER``, and every file it
writes appears whole or not at all, so a run killed midway leaves the deployed model as it was.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from ..errors import VidclsError
from ..writers import dumps, write_text

JOB, MODEL = "job.json", "model.tflite"
SAVE_EVERY = 0.5  # seconds between writes of the progress


def read_job(folder: str | os.PathLike) -> dict:
    """The job's document ({} when it cannot be read)."""
    try:
        doc = json.loads((Path(folder) / JOB).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def save_job(folder: str | os.PathLike, doc: dict) -> None:
    """Replace the job's document in one step."""
    write_text(Path(folder) / JOB, dumps(doc, indent=1) + "\n")


class Phases:
    """The progress listener: every phase's state in the job document, saved at most every
    :data:`SAVE_EVERY` seconds while a phase runs, and at each start and end."""

    def __init__(self, folder: Path, doc: dict) -> None:
        self.folder, self.doc, self.saved = folder, doc, 0.0
        doc["phases"] = []

    def __call__(self, name: str, done: int, total: int | None, note: str, state: str) -> None:
        phases = self.doc["phases"]
        if not phases or phases[-1]["name"] != name or state == "started":
            phases.append({"name": name})
        phases[-1].update(done=done, total=total, note=note, state=state)
        now = time.monotonic()
        if state != "running" or now - self.saved >= SAVE_EVERY:
            self.saved = now
            save_job(self.folder, self.doc)


def run_job(folder: str | os.PathLike) -> dict:
    """Run the job in ``folder`` (see the module description); its final document."""
    from .options import TrainOptions
    from .progress import Progress
    from .report import write_report
    from .trainer import train

    folder = Path(folder)
    doc = read_job(folder)
    doc.update(state="running", pid=os.getpid(), started=time.time(), error=None)
    save_job(folder, doc)
    try:
        options = TrainOptions(**doc.get("options", {}))
        progress = Progress(False, Phases(folder, doc))
        result = train(doc["data"], folder / MODEL, options, progress=progress)
        write_report(result)
        doc["result"] = summary(result)
        current = doc.get("current")
        if current:
            doc["current_result"] = _current(current, doc["data"], result.classes)
        doc["state"] = "done"
    except VidclsError as e:
        doc.update(state="failed", error=str(e))
    except Exception as e:  # noqa: BLE001 - the page shows it; the server goes on
        doc.update(state="failed", error=f"{type(e).__name__}: {e}")
    doc["ended"] = time.time()
    save_job(folder, doc)
    return doc


def summary(result) -> dict:
    """What the page shows of a :class:`~.trainer.TrainResult`."""
    return {
        "classes": result.classes,
        "counts": {c: n["train"] + n["val"] for c, n in result.counts.items()},
        "cv_accuracy": result.cv_accuracy,
        "cv_confusion": result.cv_confusion,
        "train_accuracy": result.train_accuracy,
        "int8": None if result.int8 is None else result.int8.to_dict(),
        "seconds": result.seconds,
        "skipped": result.skipped,
        "fit": result.options.fit,
    }


def _current(model: str, data: str, classes: list[str]) -> dict:
    """The deployed model's accuracy on the same clips, when it knows their classes."""
    from ..pipeline import load_classifier
    from .evaluation import evaluate

    try:
        known = load_classifier(model, top_k=1).labels
        if sorted(set(known) & set(classes)) != sorted(classes):
            return {"model": model, "note": "it does not know every class of these clips"}
        ev = evaluate(data, model, progress=False)
        cols, m = ev.confusion()
        return {
            "model": model,
            "accuracy": ev.top1,
            "clips": len(ev.clips),
            "seen": ev.seen,  # of them, trained on (None: the model does not record it)
            "confusion": {"labels": cols, "matrix": m.tolist()},
        }
    except VidclsError as e:
        return {"model": model, "note": str(e)}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m vidcls.training.job FOLDER")
    sys.exit(0 if run_job(sys.argv[1]).get("state") == "done" else 1)
