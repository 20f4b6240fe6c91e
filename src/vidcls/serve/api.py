"""The HTTP API: ``GET /healthz``, ``GET /v1/models`` and ``POST /v1/classify``.

Every error answers ``{"detail": message}`` (:class:`~vidcls.serve.schema.ErrorBody`).
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations at runtime.
import asyncio
from typing import Annotated, NoReturn

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse

from ..errors import VidclsError
from .jobs import JobSlot, classify_file, parse_fps
from .schema import ClassifyQuery, ClassifyResponse, Health, Models, error_responses, upload_body
from .sessions import MessageError
from .state import ServerState, get_state
from .upload import FORM_OVERHEAD, UploadError, UploadTooLarge, receive_upload

MB = 1 << 20
State = Annotated[ServerState, Depends(get_state)]
router = APIRouter()


def fail(status: int, message: str, headers: dict[str, str] | None = None) -> NoReturn:
    """Answer ``status`` with ``{"detail": message}``."""
    raise HTTPException(status, message, headers)


@router.get("/healthz", summary="Liveness and load", response_model=Health)
async def healthz(state: State) -> dict:
    return state.health()


@router.get("/v1/models", summary="Models offered, thread range and limits", response_model=Models)
async def models(state: State) -> dict:
    return state.models()


@router.post(
    "/v1/classify",
    summary="Classify a video file",
    description="The video as `multipart/form-data` (one file field, e.g. `file`) or as the raw "
    "body (`video/*` or `application/octet-stream`). Returns the JSON document of "
    "`vidcls classify --format json` (`source` is the uploaded file name), with `plot` (a PNG "
    "data URL) added when `plot=true`.",
    response_model=ClassifyResponse,
    response_description="The classification",
    responses=error_responses(
        {
            400: "Bad request: no file, unknown model, bad fps",
            413: "Upload larger than the server's limit",
            422: "Not a video that can be decoded, or bad query values",
            503: "Too many files being classified",
        }
    ),
    openapi_extra={"requestBody": upload_body()},
)
async def classify(
    request: Request, query: Annotated[ClassifyQuery, Query()], state: State
) -> JSONResponse:
    try:
        model_id = state.pool.entry(query.model or state.pool.default).id
        fps = parse_fps(query.fps)
    except MessageError as e:
        fail(400, str(e))
    limit = state.options.max_upload_bytes
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit + FORM_OVERHEAD:
        fail(413, _too_large(limit))
    if state.jobs >= state.options.max_jobs:
        busy = f"busy: {state.options.max_jobs} files are being classified; try again shortly"
        fail(503, busy, {"Retry-After": "5"})
    slot = JobSlot(state)
    try:
        content_type = request.headers.get("content-type", "application/octet-stream")
        path, name = await receive_upload(
            content_type, request.stream(), slot.folder, limit, query.filename
        )
        work = asyncio.get_running_loop().run_in_executor(
            state.job_pool,
            classify_file,
            state.pool,
            model_id,
            state.options.threads,
            path,
            name,
            query,
            fps,
        )
    except UploadTooLarge:
        slot.release()
        fail(413, _too_large(limit))
    except UploadError as e:
        slot.release()
        fail(400, str(e))
    except BaseException:
        slot.release()
        raise
    work.add_done_callback(slot.release)  # when the worker is done, even if the client left
    try:
        doc = await asyncio.shield(work)
    except VidclsError as e:
        fail(422, f"{name}: {e.message}")
    return JSONResponse(doc)  # as made: response_model documents it


def _too_large(limit: int) -> str:
    size = f"{limit / MB:g} MB" if limit >= MB else f"{limit} bytes"
    return f"upload larger than the limit of {size}"
