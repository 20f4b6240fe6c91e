"""``GET /api/playable/{path}``: where the events page finds a clip it can play.

Clips keep the camera's packets; when their codec is one browsers do not decode, the page
asks here, and :class:`~vidcls.serve.copies.Copies` makes the browser copy on the first
request and keeps it beside the clip. The answer:

- 200 ``{"state": "original", "url"}``: browsers play the clip as it is;
- 200 ``{"state": "ready", "url"}``: the copy, at ``url``;
- 202 ``{"state": "making", "progress", "detail"}``: being made, ask again (``Retry-After``);
- 503 ``{"state": "busy", "detail"}``: too many copies waiting, ask again later;
- 422 ``{"state": "failed", "detail", "download"}``: no copy can be made; the clip is at
  ``download``;
- 404: no such clip in the clips folder (the same checks as ``/media``).
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations at runtime.
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ..files import inside, is_regular
from .state import ServerState, get_state

State = Annotated[ServerState, Depends(get_state)]
router = APIRouter()


@router.get("/api/playable/{path:path}", include_in_schema=False)
async def playable(state: State, path: str) -> JSONResponse:
    folder = state.cameras.media if state.cameras is not None else None
    if folder is None or state.copies is None:
        raise HTTPException(404, "no clips folder")
    file = inside(folder, path)  # None for a NUL, a name too long, a way out of the folder
    if file is None or file.suffix != ".mp4" or not is_regular(file):
        raise HTTPException(404, "no such clip")
    status = await run_in_threadpool(state.copies.status, file)
    root = folder.resolve()
    if status.state in ("original", "ready"):
        url = "/media/" + status.path.relative_to(root).as_posix()
        return JSONResponse({"state": status.state, "url": url})
    if status.state == "making":
        body = {
            "state": "making",
            "progress": status.progress,
            "detail": "making a copy browsers play",
        }
        return JSONResponse(body, 202, {"Retry-After": "1"})
    if status.state == "busy":
        return JSONResponse({"state": "busy", "detail": status.detail}, 503, {"Retry-After": "5"})
    download = "/media/" + file.relative_to(root).as_posix()
    body = {"state": "failed", "detail": status.detail, "download": download}
    return JSONResponse(body, 422)
