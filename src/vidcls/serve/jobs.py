"""File jobs: one uploaded video classified on a fresh stream of a shared model.

:func:`classify_file` runs in a worker thread on the one frame loop
(:func:`vidcls.pipeline.classify_video`); :class:`JobTicket` counts the upload, then the
job, against the server's caps and owns the upload's temporary folder until the work is done.
"""

from __future__ import annotations

import base64
import math
import shutil
import tempfile
from pathlib import Path

from ..pipeline import classify_video
from .schema import ClassifyQuery
from .sessions import MessageError, ModelPool
from .state import ServerState


def parse_fps(text: str | None) -> float | None:
    """The ``fps`` query: None (the model's rate), ``native`` (0: every frame), or a
    positive number; MessageError otherwise."""
    if text is None or text == "":
        return None
    if text.strip().lower() == "native":
        return 0.0
    try:
        fps = float(text)
    except ValueError:
        fps = math.nan
    if not (fps > 0 and math.isfinite(fps)):
        raise MessageError(f"fps must be a positive number or 'native', not {text!r}")
    return fps


class Busy(Exception):
    """A cap is reached: the HTTP answer is 503 with Retry-After."""


class JobTicket:
    """One uploaded file from its first byte to the end of its classification, with a
    temporary folder. It counts in ``state.uploads`` while the file arrives (Busy past
    ``max_uploads``), then in ``state.jobs`` from :meth:`start_job` (Busy past ``max_jobs``),
    so a slow upload never holds a job slot; :meth:`release` ends it."""

    def __init__(self, state: ServerState) -> None:
        limit = state.options.max_uploads
        if state.uploads >= limit:
            raise Busy(f"busy: {limit} uploads are in progress; try again shortly")
        self.folder = Path(tempfile.mkdtemp(prefix="vidcls-upload-"))
        self.state, self.stage = state, "upload"
        state.uploads += 1

    def start_job(self) -> None:
        """Count the received file as a job (Busy, with the ticket unchanged, past the cap)."""
        state, limit = self.state, self.state.options.max_jobs
        if self.stage != "upload":
            raise RuntimeError(f"start_job in stage {self.stage}")
        if state.jobs >= limit:
            raise Busy(f"busy: {limit} files are being classified; try again shortly")
        state.uploads -= 1
        state.jobs += 1
        self.stage = "job"

    def release(self, _future: object = None) -> None:
        """Uncount the ticket and delete its folder (once; later calls do nothing)."""
        if self.stage == "upload":
            self.state.uploads -= 1
        elif self.stage == "job":
            self.state.jobs -= 1
        else:
            return
        self.stage = "done"
        shutil.rmtree(self.folder, ignore_errors=True)


def classify_file(
    pool: ModelPool,
    model_id: str,
    threads: int,
    path: Path,
    name: str,
    query: ClassifyQuery,
    fps: float | None,
) -> dict:
    """The classification document of the upload at ``path`` (``source``: ``name``); the
    VidclsError of a file that is not a video goes to the caller."""
    classifier = pool.new_stream(
        model_id, threads, top_k=query.top_k, threshold=query.threshold, window=query.window
    )
    result = classify_video(
        path,
        classifier=classifier,
        fps=fps,
        segments=query.segments or None,
        keep_probabilities=query.plot,
    )
    result.source, result.model = name, model_id
    doc = result.to_dict(frames=not query.summary_only)
    if query.plot:
        from ..plot import plot_timeline

        png = plot_timeline(result, path.with_name("timeline.png")).read_bytes()
        doc["plot"] = "data:image/png;base64," + base64.b64encode(png).decode()
    return doc
