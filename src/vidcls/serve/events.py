"""The events of the config's cameras: ``GET /api/events`` (filters and pages), the events
page ``/events`` (thumbnails, filters, the clip playing in the page) and ``/media/...`` (the
clips and snapshots, from the clips folder only)."""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations at runtime.
import datetime
import math
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import FileResponse

from ..errors import VidclsError
from ..events import listed_doc
from ..files import inside, is_regular
from .pages import WEB
from .state import ServerState, get_state

State = Annotated[ServerState, Depends(get_state)]
router = APIRouter()
NO_EVENTS = "no events here: start the server with --config (cameras) or --data (a folder)"
MAX_ID = 2**63 - 1  # SQLite's largest integer


def _when(text: str | None, name: str) -> float | None:
    """Seconds since the epoch from a number or an ISO-8601 time (UTC unless it says)."""
    if text is None or text == "":
        return None
    problem = f"{name}: not a time (ISO 8601 or seconds since 1970)"
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):
            raise HTTPException(422, problem)
        return seconds
    try:
        t = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
        if t.tzinfo is None:
            t = t.replace(tzinfo=datetime.timezone.utc)
        return t.timestamp()
    except (ValueError, OverflowError):
        raise HTTPException(422, problem) from None


def _url(state: ServerState, path: str | None) -> str | None:
    """The ``/media/...`` address of a clip or snapshot (None outside the clips folder)."""
    media = state.cameras.media if state.cameras is not None else None
    if path is None or media is None:
        return None
    file = inside(media, path)  # an absolute path stays itself
    if file is None:
        return None
    return "/media/" + file.relative_to(media.resolve()).as_posix()


# Not async: FastAPI runs it in a worker thread, so a slow database (PostgreSQL across a
# network) holds up this request only, never the server's event loop.
@router.get("/api/events", summary="Finished events of the config's cameras, newest first")
def events(
    state: State,
    source: str | None = None,
    label: str | None = None,
    since: Annotated[str | None, Query(description="ISO 8601 or epoch seconds")] = None,
    until: Annotated[str | None, Query(description="ISO 8601 or epoch seconds")] = None,
    before: Annotated[
        int | None, Query(ge=0, le=MAX_ID, description="the `next` of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict:
    if state.store is None:
        raise HTTPException(404, NO_EVENTS)
    try:
        rows = state.store.query(
            source=source or None,
            label=label or None,
            since=_when(since, "since"),
            until=_when(until, "until"),
            before=before,
            limit=limit,
        )
    except VidclsError as e:
        raise HTTPException(503, str(e)) from None
    out = [
        {
            **listed_doc(r.id, r.doc, r.start, r.end),
            "clip": _url(state, r.clip),
            "snapshot": _url(state, r.snapshot),
        }
        for r in rows
    ]
    more = len(rows) == limit
    return {"events": out, "next": rows[-1].id if more and rows else None}


@router.get("/events", include_in_schema=False)
async def events_page() -> FileResponse:
    return FileResponse(WEB / "events.html")


@router.get("/media/{path:path}", include_in_schema=False)
async def media(state: State, path: str) -> FileResponse:
    folder = state.cameras.media if state.cameras is not None else None
    if folder is None:
        raise HTTPException(404, "no clips folder")
    file = inside(folder, path)  # None for a NUL, a name too long, a way out of the folder
    if file is None or file.suffix not in (".mp4", ".jpg") or not is_regular(file):
        raise HTTPException(404, "no such clip or snapshot")
    kind = "video/mp4" if file.suffix == ".mp4" else "image/jpeg"
    return FileResponse(file, media_type=kind)
