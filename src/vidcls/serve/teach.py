"""The teaching page ``/teach`` and its API under ``/api/teach``: clips to label (uploaded,
imported from the cameras' event clips, or recorded from a camera), their labels, the dataset
check, training jobs with their progress and report, and deploying a model to the running
sources (and undoing it). Everything is kept by a :class:`~.teacher.Teacher` in the data
folder."""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations at runtime.
import asyncio
import json
import logging
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect

from ..errors import VidclsError
from .pages import WEB
from .state import ServerState, get_state
from .teacher import Teacher
from .upload import (
    UploadError,
    UploadStalled,
    UploadTooLarge,
    declared_too_large,
    receive_upload,
)

State = Annotated[ServerState, Depends(get_state)]
router = APIRouter()
log = logging.getLogger("vidcls.serve")
NO_TEACHER = "teaching needs a data folder and the server could not make one: give --data DIR"


class LabelBody(BaseModel):
    label: str | None = Field(None, description="the class; empty or null: back to unlabelled")


class RecordBody(BaseModel):
    source: str
    seconds: float = Field(10.0, gt=0, le=120)


class TrainBody(BaseModel):
    views: int = Field(8, ge=1, le=32)
    fit: Literal["squash", "crop", "letterbox"] = "squash"
    method: Literal["classifier", "head"] = "classifier"


def _teacher(state: ServerState) -> Teacher:
    if state.teacher is None:
        raise HTTPException(404, NO_TEACHER)
    return state.teacher


async def _call(function, *args):
    """``function(*args)`` on a worker thread; a VidclsError is a 400 with its line."""
    try:
        return await asyncio.get_running_loop().run_in_executor(None, function, *args)
    except VidclsError as e:
        raise HTTPException(400, str(e)) from None


@router.get("/teach", include_in_schema=False)
async def teach_page() -> FileResponse:
    return FileResponse(WEB / "teach.html")


@router.get("/api/teach", summary="Clips, labels, jobs and the deployed model")
async def overview(state: State) -> dict:
    t = _teacher(state)
    cameras = state.cameras
    recordable = [] if cameras is None or cameras.clips is None else list(cameras.watch.sources)
    return {
        "clips": await _call(t.clips),
        "jobs": await _call(t.jobs),
        "deployed": t.deployed(),
        "base": t.base,
        "sources": recordable,
        "events": cameras is not None and cameras.media is not None,
    }


@router.get("/teach/clip/{name}", include_in_schema=False)
async def clip(state: State, name: str) -> FileResponse:
    """The clip, through a hard link of its own: a clip labelled (moved) while it is being
    sent is still sent whole."""
    t = _teacher(state)
    for _ in range(3):  # moved between finding and linking: find it again
        try:
            found = t.find(name)
            serving = t.root / ".serving"
            serving.mkdir(exist_ok=True)
            link = serving / f"{uuid.uuid4().hex}{found.suffix}"
            os.link(found, link)
        except VidclsError as e:
            raise HTTPException(404, str(e)) from None
        except FileNotFoundError:
            continue
        except OSError:  # no hard links here: the file itself
            return FileResponse(found, media_type="video/mp4")
        return FileResponse(link, media_type="video/mp4", background=BackgroundTask(link.unlink))
    raise HTTPException(404, f"no clip called {name!r}")


@router.post("/api/teach/clips/{name}", summary="Label a clip (or unlabel it)")
async def label(state: State, request: Request, name: str, body: LabelBody) -> dict:
    request.state.audit = {"label": body.label or "(unlabelled)"}
    return {"name": name, "folder": await _call(_teacher(state).label, name, body.label)}


@router.delete("/api/teach/clips/{name}", summary="Discard a clip")
async def discard(state: State, name: str) -> dict:
    await _call(_teacher(state).discard, name)
    return {"name": name, "folder": "discarded"}


@router.post("/api/teach/upload", summary="Add an uploaded video clip to the unlabelled ones")
async def upload(state: State, request: Request, filename: str | None = None) -> dict:
    t = _teacher(state)
    limit = state.options.max_upload_bytes
    if declared_too_large(request.headers.get("content-length"), limit):
        raise HTTPException(413, "upload larger than the server's limit")  # before reading
    shown = os.path.basename(filename or "") or "the upload"
    folder = Path(tempfile.mkdtemp(prefix=".upload-", dir=t.root))
    try:
        path, name = await receive_upload(
            request.headers.get("content-type", "application/octet-stream"),
            request.stream(),
            folder,
            limit,
            filename,
            state.options.upload_timeout,
        )
        shown = name
        return {"name": await _call(_keep_upload, t, path, name)}
    except UploadTooLarge:
        raise HTTPException(413, "upload larger than the server's limit") from None
    except UploadError as e:
        raise HTTPException(400, str(e)) from None
    except UploadStalled as e:  # the client is silent: close rather than wait on it
        raise HTTPException(408, str(e), {"Connection": "close"}) from None
    except ClientDisconnect:  # nobody reads this answer
        raise HTTPException(400, "the client closed the connection during the upload") from None
    except OSError as e:  # a full disk: said without the server's paths
        log.error("cannot store an upload: %s", e)
        why = e.strerror or type(e).__name__
        raise HTTPException(503, f"{shown}: the server cannot store it now ({why})") from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _keep_upload(teacher: Teacher, path: Path, name: str) -> str:
    """Check the upload is a readable video, then file it as unlabelled; its clip name.
    Errors name the client's file, never the server's temporary one."""
    from ..media import VideoFile

    try:
        with VideoFile(path):
            pass
    except VidclsError as e:
        raise VidclsError(e.message, name) from None
    target = teacher.new_name(name)
    shutil.move(path, target)
    return target.name


@router.post("/api/teach/import", summary="Copy the cameras' event clips to the unlabelled")
async def import_events(state: State) -> dict:
    t, cameras = _teacher(state), state.cameras
    if cameras is None or cameras.media is None:
        raise HTTPException(404, "no event clips: the config has no clips folder")
    return {"imported": await _call(t.import_events, cameras.media)}


@router.post("/api/teach/record", summary="Record the next seconds of a camera to label")
async def record(state: State, body: RecordBody) -> dict:
    t, cameras = _teacher(state), state.cameras
    if cameras is None or cameras.clips is None:
        raise HTTPException(404, "recording needs cameras with a clips folder (--config)")
    target = t.new_name(f"{body.source}-{time.strftime('%Y%m%d-%H%M%S')}.mp4")
    if not await _call(cameras.record, body.source, body.seconds, str(target)):
        raise HTTPException(400, f"{body.source}: this camera records no clips")
    return {"name": target.name, "ready_in": body.seconds + cameras.clips.post_roll}


@router.get("/api/teach/check", summary="The dataset check of the labelled clips")
async def check(state: State) -> dict:
    return await _call(_check, _teacher(state))


def _check(teacher: Teacher) -> dict:
    from ..training.datacheck import check_dataset

    with tempfile.TemporaryDirectory(prefix=".check-", dir=teacher.root) as tmp:
        teacher.snapshot(Path(tmp))
        text = json.dumps(check_dataset(tmp).to_dict())
        return json.loads(text.replace(json.dumps(tmp + "/")[1:-1], ""))  # clips by label/name


@router.post("/api/teach/jobs", summary="Train on the labelled clips (a job)")
async def start_job(state: State, body: TrainBody) -> dict:
    return await _call(_teacher(state).start_job, body.model_dump())


@router.get("/api/teach/jobs/{job_id}", summary="A job: its state, phases and report")
async def job(state: State, job_id: str) -> dict:
    doc = await _call(_teacher(state).job, job_id)
    if not doc:
        raise HTTPException(404, f"no job {job_id!r}")
    return doc


@router.post("/api/teach/jobs/{job_id}/cancel", summary="Stop a running job")
async def cancel(state: State, job_id: str) -> dict:
    await _call(_teacher(state).cancel, job_id)
    return await job(state, job_id)


@router.post("/api/teach/jobs/{job_id}/deploy", summary="Run a job's model on the sources")
async def deploy(state: State, job_id: str) -> dict:
    return await _call(_teacher(state).deploy, job_id)


@router.post("/api/teach/undo", summary="Go back to the model deployed before")
async def undo(state: State) -> dict:
    return await _call(_teacher(state).undo)
