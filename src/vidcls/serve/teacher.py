"""What the teaching page works on, kept in a folder so that it all survives a restart:

- ``clips/<label>/`` the labelled clips, ``clips/unlabelled/`` those waiting for a label,
  ``clips/.discarded/`` those thrown out (a clip's file name is its id: unique over them all);
- ``jobs/<id>/`` one training run each (:mod:`vidcls.training.job`, in a process of its own;
  its ``data/`` holds hard links to the clips labelled when it started);
- ``models/`` the models deployed, and ``deployed.json``: which runs now and which ran before,
  so a deploy can be undone.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..errors import VidclsError
from ..training.dataset import UNLABELLED, VIDEO_EXTENSIONS, check_label
from ..training.importing import import_events
from ..training.job import MODEL, read_job, save_job
from ..writers import dumps, write_text

log = logging.getLogger("vidcls")
DISCARDED = ".discarded"
NAME = re.compile(r"[A-Za-z0-9][\w.\- ]{0,150}")
__all__ = ["Teacher", "check_label"]  # check_label: the one rule for labels (training.dataset)


class Teacher:
    """The teaching folder ``root`` (see the module description). ``base``: the model the
    server started with; ``on_deploy(path)`` switches the running sources to a model (and
    raises VidclsError, changing nothing, when it cannot)."""

    def __init__(
        self, root: str | os.PathLike, base: str, on_deploy: Callable[[str], None] | None = None
    ) -> None:
        self.root, self.base, self.on_deploy = Path(root), base, on_deploy
        self.clips_dir, self.jobs_dir = self.root / "clips", self.root / "jobs"
        self.models_dir = self.root / "models"
        for d in (self.clips_dir / UNLABELLED, self.jobs_dir, self.models_dir):
            d.mkdir(parents=True, exist_ok=True)
        for left in [
            *self.root.glob(".upload-*"),
            *self.root.glob(".check-*"),
            self.root / ".serving",
        ]:
            shutil.rmtree(left, ignore_errors=True)  # a stopped server's temporary files
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._folder = self.jobs_dir
        self._recover()

    # -- clips ----------------------------------------------------------------------------

    def clips(self) -> dict:
        """``{"unlabelled": [names], "labelled": {label: [names]}, "labels": [labels]}``."""
        labelled = {}
        for folder in sorted(self.clips_dir.iterdir()):
            if folder.is_dir() and folder.name not in (UNLABELLED, DISCARDED):
                names = self._names(folder)
                if names:
                    labelled[folder.name] = names
        return {
            "unlabelled": self._names(self.clips_dir / UNLABELLED),
            "labelled": labelled,
            "labels": sorted(labelled),
        }

    @staticmethod
    def _names(folder: Path) -> list[str]:
        return sorted(
            p.name
            for p in folder.iterdir()
            if p.suffix.lower() in VIDEO_EXTENSIONS and NAME.fullmatch(p.name) and p.is_file()
        )

    def find(self, name: str) -> Path:
        """The clip called ``name``, wherever it is filed; VidclsError when there is none."""
        if not NAME.fullmatch(name):
            raise VidclsError(f"not a clip name: {name!r}")
        for folder in self.clips_dir.iterdir():
            p = folder / name
            if folder.is_dir() and p.is_file():
                return p
        raise VidclsError(f"no clip called {name!r}")

    def label(self, name: str, label: str | None) -> str:
        """File clip ``name`` under ``label`` (None or "": back to unlabelled); its folder."""
        folder = UNLABELLED if not label else check_label(label)
        with self._lock:
            p = self.find(name)
            (self.clips_dir / folder).mkdir(exist_ok=True)
            os.replace(p, self.clips_dir / folder / name)
        return folder

    def discard(self, name: str) -> None:
        """Throw clip ``name`` out (kept in ``clips/.discarded/``, never trained on)."""
        with self._lock:
            p = self.find(name)
            (self.clips_dir / DISCARDED).mkdir(exist_ok=True)
            os.replace(p, self.clips_dir / DISCARDED / name)

    def new_name(self, filename: str) -> Path:
        """Where a new clip called about ``filename`` goes in ``unlabelled/``: a safe name,
        unique over every folder; VidclsError for a file that is not named like a video."""
        stem, suffix = os.path.splitext(os.path.basename(filename or "clip.mp4"))
        if suffix.lower() not in VIDEO_EXTENSIONS:
            raise VidclsError(f"not named like a video: {filename!r}")
        stem = re.sub(r"[^\w.\-]+", "_", stem).strip("._") or "clip"
        taken = {p.name for p in self.clips_dir.glob("*/*")}
        name, n = f"{stem[:100]}{suffix.lower()}", 1
        while name in taken:
            n += 1
            name = f"{stem[:100]}-{n}{suffix.lower()}"
        return self.clips_dir / UNLABELLED / name

    def import_events(self, folder: str | os.PathLike) -> int:
        """Copy the event clips recorded under ``folder`` to ``unlabelled/``; how many (those
        that cannot be imported are logged and skipped)."""
        done = import_events(folder, self.clips_dir)
        for note in done.skipped:
            log.warning("import: skipped %s", note)
        return len(done.copied)

    # -- training ---------------------------------------------------------------------------

    def snapshot(self, folder: Path) -> dict[str, int]:
        """Hard links (copies across file systems) to the labelled clips under ``folder``,
        in the class layout training reads; clips per label."""
        counts = {}
        for label, names in self.clips()["labelled"].items():
            (folder / label).mkdir(parents=True, exist_ok=True)
            for name in names:
                source, target = self.clips_dir / label / name, folder / label / name
                try:
                    os.link(source, target)
                except OSError:
                    shutil.copyfile(source, target)
            counts[label] = len(names)
        return counts

    def start_job(self, options: dict | None = None) -> dict:
        """Train on the clips labelled now, in a process of its own; the job's document.
        VidclsError while another job runs."""
        with self._lock:
            if self._busy():
                raise VidclsError("a training job is already running")
            job_id = time.strftime("%Y%m%d-%H%M%S")
            n = 1
            while (self.jobs_dir / job_id).exists():
                n += 1
                job_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{n}"
            folder = self.jobs_dir / job_id
            counts = self.snapshot(folder / "data")
            doc = {
                "id": job_id,
                "state": "queued",
                "data": str(folder / "data"),
                "options": {"model": self.base, **(options or {})},
                "counts": counts,
                "current": self.deployed()["current"],
                "created": time.time(),
            }
            save_job(folder, doc)
            log = open(folder / "log.txt", "wb")  # noqa: SIM115 - the child writes it
            try:
                self._folder = folder
                self._process = subprocess.Popen(
                    [sys.executable, "-m", "vidcls.training.job", str(folder)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,  # a server stopped with Ctrl-C lets it finish
                )
            finally:
                log.close()
            return doc

    def _busy(self) -> bool:
        """Whether the last job started still runs (one that has written its end is let
        finish exiting)."""
        p = self._process
        if p is None or p.poll() is not None:
            return False
        doc = read_job(self._folder)
        if doc.get("state") in ("done", "failed"):
            try:
                p.wait(10)
                return False
            except subprocess.TimeoutExpired:
                return True
        return True

    def jobs(self) -> list[dict]:
        """Every job's document, newest first."""
        docs = [self.job(p.name) for p in self.jobs_dir.iterdir() if p.is_dir()]
        return sorted((d for d in docs if d), key=lambda d: d.get("created", 0), reverse=True)

    def job(self, job_id: str) -> dict:
        """One job's document ({} when there is none)."""
        if not re.fullmatch(r"[\w\-]+", job_id):
            return {}
        doc = read_job(self.jobs_dir / job_id)
        if doc.get("state") in ("queued", "running") and not self._alive(doc, job_id):
            doc.update(state="failed", error="interrupted: its process is gone")
        return doc

    def cancel(self, job_id: str) -> None:
        """Stop a running job (its folder stays, marked failed); nothing for a job that does
        not exist (an id that is not a job's folder name is none)."""
        with self._lock:
            p = self._process
            doc = self.job(job_id)
            if not doc:
                return
            if p is not None and p.poll() is None and doc.get("pid") in (p.pid, None):
                p.kill()
                p.wait(10)
            doc.update(state="failed", error="cancelled")
            save_job(self.jobs_dir / job_id, doc)

    def _alive(self, doc: dict, job_id: str) -> bool:
        """Whether the job's process still runs (its command line names its folder)."""
        p = self._process
        if p is not None and doc.get("pid") == p.pid:
            return p.poll() is None
        if p is not None and doc.get("state") == "queued" and p.poll() is None:
            return True  # started, not yet marked running
        try:
            cmdline = Path(f"/proc/{doc.get('pid')}/cmdline").read_bytes()
        except OSError:
            return False
        return str(self.jobs_dir / job_id).encode() in cmdline

    def _recover(self) -> None:
        """Mark the jobs whose process is gone (a server that stopped) as failed."""
        for p in self.jobs_dir.iterdir():
            doc = read_job(p)
            if doc.get("state") in ("queued", "running") and not self._alive(doc, p.name):
                doc.update(state="failed", error="interrupted: the server stopped")
                save_job(p, doc)

    # -- deploying --------------------------------------------------------------------------

    def deployed(self) -> dict:
        """``{"current": the model path running now, or None (the server's own),
        "history": [{"job", "model", "at"}, ...]}``."""
        import json

        try:
            doc = json.loads((self.root / "deployed.json").read_text(encoding="utf-8"))
            history = [h for h in doc["history"] if isinstance(h, dict)]
        except (OSError, ValueError, KeyError, TypeError):
            history = []
        return {"current": history[-1]["model"] if history else None, "history": history}

    def deploy(self, job_id: str) -> dict:
        """Switch the running sources to job ``job_id``'s model (kept in ``models/``)."""
        doc = self.job(job_id)
        if doc.get("state") != "done":
            raise VidclsError(f"job {job_id!r} has no finished model to deploy")
        target = self.models_dir / f"{job_id}.tflite"
        if not target.exists():
            part = target.with_name(f".{target.name}.part")
            shutil.copyfile(self.jobs_dir / job_id / MODEL, part)
            labels = self.jobs_dir / job_id / "model.labels.txt"
            if labels.exists():
                shutil.copyfile(labels, self.models_dir / f"{job_id}.labels.txt")
            os.replace(part, target)
        state = self.deployed()
        entry = {"job": job_id, "model": str(target), "at": time.time()}
        return self._switch(str(target), [*state["history"], entry])

    def undo(self) -> dict:
        """Switch back to the model deployed before the current one (or the server's own)."""
        history = self.deployed()["history"]
        if not history:
            raise VidclsError("nothing deployed to undo")
        previous = history[-2]["model"] if len(history) > 1 else self.base
        return self._switch(previous, history[:-1])

    def _switch(self, model: str, history: list[dict]) -> dict:
        with self._lock:
            if self.on_deploy is not None:
                self.on_deploy(model)  # VidclsError: nothing changed
            write_text(self.root / "deployed.json", dumps({"history": history}, indent=1) + "\n")
        return self.deployed()
