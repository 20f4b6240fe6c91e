"""The HTTP API: ``GET /healthz``, ``GET /v1/models`` and ``POST /v1/classify``.

Every error answers ``{"detail": message}`` (:class:`~vidcls.serve.schema.ErrorBody`), and
the connection stays usable (except after a 408: that client was silent).
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations at runtime.
import asyncio
import logging
from typing import Annotated, NoReturn

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from ..errors import VidclsError
from .jobs import Busy, JobTicket, classify_file, parse_fps
from .schema import ClassifyQuery, ClassifyResponse, Health, Models, error_responses, upload_body
from .sessions import MessageError
from .state import ServerState, get_state
from .upload import FORM_OVERHEAD, UploadError, UploadStalled, UploadTooLarge, receive_upload

MB = 1 << 20
RETRY = {"Retry-After": "5"}
log = logging.getLogger("vidcls.serve")
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
            403: "Sent by a page from another site (cross-origin)",
            408: "The upload sent nothing for the server's upload timeout",
            413: "Upload larger than the server's limit",
            422: "Not a video that can be decoded, or bad query values",
            500: "A bug in the server (logged); the server carries on",
            503: "Too many uploads or files being classified, or no disk space for the upload",
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
    try:
        ticket = JobTicket(state)
    except (Busy, OSError) as e:
        _upload_failed(e, limit)
        raise
    try:  # the job slot is taken only once the whole file is on disk
        path, name = await receive_upload(
            request.headers.get("content-type", "application/octet-stream"),
            request.stream(),
            ticket.folder,
            limit,
            query.filename,
            state.options.upload_timeout,
        )
        ticket.start_job()
    except BaseException as e:
        ticket.release()
        _upload_failed(e, limit)
        raise
    try:
        work = asyncio.get_running_loop().run_in_executor(
            state.job_pool,
            classify_file,
            *(state.pool, model_id, state.options.threads, path, name, query, fps),
        )
    except BaseException:  # the pool is shut down: the server is stopping
        ticket.release()
        raise
    work.add_done_callback(ticket.release)  # when the worker is done, even if the client left
    try:
        doc = await asyncio.shield(work)
    except VidclsError as e:
        fail(422, f"{name}: {e.message}")
    except Exception as e:  # a bug: logged, answered, and the connection stays usable
        log.exception("unexpected error classifying an upload")
        fail(500, f"{name}: internal error ({type(e).__name__})")
    return JSONResponse(doc)  # as made: response_model documents it


def _upload_failed(e: BaseException, limit: int) -> None:
    """Answer an upload that did not make it to a job (other exceptions: nothing done here)."""
    if isinstance(e, UploadTooLarge):
        fail(413, _too_large(limit))
    if isinstance(e, UploadError):
        fail(400, str(e))
    if isinstance(e, UploadStalled):  # the client is silent: close rather than wait on it
        fail(408, str(e), {"Connection": "close"})
    if isinstance(e, Busy):
        fail(503, str(e), RETRY)
    if isinstance(e, ClientDisconnect):  # nobody reads this answer; nothing to log
        fail(400, "the client closed the connection during the upload")
    if isinstance(e, OSError) and not isinstance(e, ConnectionError):
        log.error("cannot store an upload: %s", e)
        fail(503, f"the server cannot store the upload now ({e.strerror or e})", RETRY)


def _too_large(limit: int) -> str:
    size = f"{limit / MB:g} MB" if limit >= MB else f"{limit} bytes"
    return f"upload larger than the limit of {size}"
