"""``WS /v1/stream``: a browser's camera, classified live (JPEG frames in, results out).

Every connection has its own stream state (a :class:`~vidcls.serve.sessions.LiveSession`) on a
model loaded once per (model, threads); frames are decoded and classified in a thread pool.

Protocol (``/v1/stream?model=ID&threads=N``, both optional); each message gets exactly one
reply, in order:

- server, on connect: ``{"type": "ready", "model", "threads", "fps", "input", "classes",
  "top_k", "window"}`` (``fps``: the rate to send frames at; ``input``: [height, width]).
- client: a binary message with one JPEG frame; server: ``{"type": "result", "time", "top":
  [{"label", "index", "score"}], "infer_ms", "decode_ms", "input_fps", "frames", "size"}``
  (a :class:`~vidcls.results.FrameResult`'s JSON, ``time`` in seconds from the first frame,
  ``input_fps`` the rate frames arrive once known, ``frames`` fed since the last reset,
  ``size`` the frame's [width, height]).
- client: ``{"type": "reset"}``; server: ``{"type": "reset", "frames": 0}``.
- client: ``{"type": "config", "model": ID, "threads": N}``; server: ``{"type": "config",
  ...}`` as ``ready`` (a new stream: the state starts empty).
- any bad message: ``{"type": "error", "message", "reply_to", "fatal": false}`` (``reply_to``:
  ``frame`` or ``control``); the stream goes on. Refusals (cross-origin, server busy, bad
  parameters, idle) are a ``fatal`` error with ``reply_to: "connection"``, then a close (1008
  policy, 1013 busy, 1000 idle).
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations at runtime.
import asyncio
import contextlib
import logging
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, WebSocket, WebSocketDisconnect

from ..errors import VidclsError
from .sessions import LiveSession, MessageError, error_reply
from .state import ServerState, get_state

log = logging.getLogger("vidcls.serve")
CLOSE_NORMAL, CLOSE_POLICY, CLOSE_BUSY = 1000, 1008, 1013
router = APIRouter()


@router.websocket("/v1/stream")
async def stream(ws: WebSocket, state: Annotated[ServerState, Depends(get_state)]) -> None:
    await ws.accept()
    if not same_origin(ws.headers.get("origin"), ws.headers.get("host")):
        await refuse(ws, CLOSE_POLICY, "cross-origin connections are refused")
        return
    limit = state.options.max_streams
    if state.streams >= limit:
        message = f"server busy: all {limit} streams are in use; try again later"
        await refuse(ws, CLOSE_BUSY, message)
        return
    state.streams += 1
    try:
        session = await _open_session(ws, state)
        if session is not None:
            await ws.send_json(session.describe("ready"))
            await _serve_session(ws, state, session)
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass  # the client went away mid-reply
    finally:
        state.streams -= 1


async def _open_session(ws: WebSocket, state: ServerState) -> LiveSession | None:
    """The session the query asks for, or None after refusing the connection."""
    params = ws.query_params
    threads = params.get("threads", str(state.options.threads))
    model_id = params.get("model") or state.pool.default
    try:
        if not threads.isdigit():
            raise MessageError(f"threads must be an integer, not {threads!r}")
        return await asyncio.get_running_loop().run_in_executor(
            state.frame_pool,
            LiveSession,
            state.pool,
            model_id,
            int(threads),
            state.options.max_frame_bytes,
        )
    except (MessageError, VidclsError) as e:
        await refuse(ws, CLOSE_POLICY, str(e))
        return None


async def _serve_session(ws: WebSocket, state: ServerState, session: LiveSession) -> None:
    """Answer each message in order until the client leaves or stays silent too long."""
    run = asyncio.get_running_loop().run_in_executor
    timeout = state.options.idle_timeout
    while True:
        try:
            message = await asyncio.wait_for(ws.receive(), timeout)
        except asyncio.TimeoutError:
            await refuse(ws, CLOSE_NORMAL, f"closed after {timeout:g} s without a message")
            return
        if message["type"] == "websocket.disconnect":
            return
        data = message.get("bytes")
        if data is not None:
            session.arrived()
            handle, payload, kind = session.frame, data, "frame"
        else:
            handle, payload, kind = session.control, message.get("text") or "", "control"
        try:
            reply = await run(state.frame_pool, handle, payload)
        except Exception as e:  # a bug, not bad input: say so, keep the stream
            log.exception("unexpected error in a live stream")
            reply = error_reply(f"internal error ({type(e).__name__})", kind)
        await ws.send_json(reply)


async def refuse(ws: WebSocket, code: int, message: str) -> None:
    """Say why in a message (browsers do not always show close reasons), then close."""
    with contextlib.suppress(Exception):
        await ws.send_json(error_reply(message, "connection", fatal=True))
        await ws.close(code=code, reason=message.encode()[:120].decode(errors="ignore"))


def same_origin(origin: str | None, host: str | None) -> bool:
    """Browsers send Origin; a page from another site may not drive this server's streams."""
    if not origin:
        return True  # not a browser (or a same-origin request that omits it)
    return (urlsplit(origin).netloc or "").lower() == (host or "").lower()
