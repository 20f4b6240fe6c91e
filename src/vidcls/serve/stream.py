"""``WS /v1/stream``: a browser's camera, classified live (JPEG frames in, results out).

Every connection is a stream (a :class:`~vidcls.serve.sessions.LiveSession`) with its own state
on the one :class:`~vidcls.scheduler.Scheduler` of its (model, threads), which feeds all the
live streams at the model's rate, earliest deadline first, on one model copy per core. Frames
are decoded in a thread pool and wait in a one-frame slot: a frame that a newer one replaces
before it was due is skipped, never queued, so a client sending too fast or a busy server
never builds a backlog.

Protocol (``/v1/stream?model=ID&threads=N``, both optional); each message gets exactly one
reply, in order:

- server, on connect: ``{"type": "ready", "model", "threads", "fps", "input", "classes",
  "top_k", "window"}`` (``fps``: the rate to send frames at; ``input``: [height, width]).
- client: a binary message with one JPEG frame; server: ``{"type": "result", "time", "top":
  [{"label", "index", "score"}], "infer_ms", "decode_ms", "latency_ms", "input_fps",
  "frames", "size"}`` (a :class:`~vidcls.results.FrameResult`'s JSON, ``time`` in seconds
  from the first result, ``latency_ms`` from the frame's arrival to its result, ``input_fps``
  the rate frames arrive once known, ``frames`` fed since the last reset, ``size`` the
  frame's [width, height]); or, when a newer frame arrived before this one was due,
  ``{"type": "skipped", "reason", "skipped"}`` (``skipped``: frames skipped on this
  connection so far). Frames sent at ``fps`` or slower are not skipped.
- client: ``{"type": "reset"}``; server, once every earlier frame is answered: ``{"type":
  "reset", "frames": 0}``.
- client: ``{"type": "config", "model": ID, "threads": N}``; server, once every earlier frame
  is answered: ``{"type": "config", ...}`` as ``ready`` (a new stream: the state starts empty).
- any bad message: ``{"type": "error", "message", "reply_to", "fatal": false}`` (``reply_to``:
  ``frame`` or ``control``); the stream goes on. Refusals (cross-origin, server busy, bad
  parameters, idle) are a ``fatal`` error with ``reply_to: "connection"``, then a close (1008
  policy, 1013 busy, 1000 idle).
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations at runtime.
import asyncio
import contextlib
import logging
import time
from typing import Annotated

from fastapi import APIRouter, Depends, WebSocket, WebSocketDisconnect

from ..errors import VidclsError
from .sessions import LiveSession, MessageError, error_reply
from .state import ServerState, get_state

log = logging.getLogger("vidcls.serve")
CLOSE_NORMAL, CLOSE_POLICY, CLOSE_BUSY = 1000, 1008, 1013
QUEUED = 32  # replies not sent yet per connection; past it, its messages wait to be read
router = APIRouter()


@router.websocket("/v1/stream")
async def stream(ws: WebSocket, state: Annotated[ServerState, Depends(get_state)]) -> None:
    await ws.accept()  # who may connect, and from which site: vidcls.serve.access
    limit = state.options.max_streams
    if state.streams >= limit:
        message = f"server busy: all {limit} streams are in use; try again later"
        await refuse(ws, CLOSE_BUSY, message)
        return
    state.streams += 1
    session = None
    try:
        session = await _open_session(ws, state)
        if session is not None:
            await ws.send_json(session.describe("ready"))
            await _serve_session(ws, state, session)
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass  # the client went away mid-reply
    finally:
        if session is not None:
            session.close()
        state.streams -= 1


async def _open_session(ws: WebSocket, state: ServerState) -> LiveSession | None:
    """The session the query asks for, or None after refusing the connection."""
    params = ws.query_params
    threads = params.get("threads", str(state.options.threads))
    model_id = params.get("model") or state.pool.default
    loop = asyncio.get_running_loop()
    try:
        if not threads.isdigit():
            raise MessageError(f"threads must be an integer, not {threads!r}")
        return await loop.run_in_executor(
            state.frame_pool,
            LiveSession,
            state.pool,
            model_id,
            int(threads),
            loop,
            state.options.max_frame_bytes,
        )
    except (MessageError, VidclsError) as e:
        await refuse(ws, CLOSE_POLICY, str(e))
        return None


async def _serve_session(ws: WebSocket, state: ServerState, session: LiveSession) -> None:
    """Answer each message, in order, until the client leaves or stays silent too long: one
    task receives and queues each message's reply (a future), another sends them."""
    replies: asyncio.Queue[asyncio.Future | None] = asyncio.Queue(QUEUED)
    receiver = asyncio.create_task(_receive(ws, state, session, replies))
    sender = asyncio.create_task(_send_replies(ws, replies))
    try:
        await asyncio.wait((receiver, sender), return_when=asyncio.FIRST_COMPLETED)
        idle = receiver.result() if receiver.done() else None  # sender done: the client left
        if idle is not None:  # every reply first, then the farewell
            await replies.put(None)
            await sender
            await refuse(ws, CLOSE_NORMAL, idle)
    finally:
        for task in (receiver, sender):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task  # the client may have left mid-reply


async def _receive(
    ws: WebSocket, state: ServerState, session: LiveSession, replies: asyncio.Queue
) -> str | None:
    """Take messages until the client leaves (None) or is silent too long (why)."""
    loop = asyncio.get_running_loop()
    timeout = state.options.idle_timeout
    while True:
        try:
            message = await asyncio.wait_for(ws.receive(), timeout)
        except asyncio.TimeoutError:
            return f"closed after {timeout:g} s without a message"
        if message["type"] == "websocket.disconnect":
            return None
        reply = loop.create_future()
        await replies.put(reply)  # waits when the client reads no replies
        data = message.get("bytes")
        kind = "control" if data is None else "frame"
        try:
            if data is None:
                reply.set_result(await session.control(message.get("text") or "", state.frame_pool))
                continue
            arrived = time.monotonic()
            session.arrived(arrived)
            try:
                rgb, decode_ms = await loop.run_in_executor(state.frame_pool, session.decode, data)
            except (MessageError, VidclsError) as e:
                reply.set_result(error_reply(str(e), "frame"))
                continue
            session.offer(rgb, arrived, decode_ms, reply)
        except Exception as e:  # a bug, not bad input: say so, keep the stream
            log.exception("unexpected error in a live stream")
            if not reply.done():
                reply.set_result(error_reply(f"internal error ({type(e).__name__})", kind))


async def _send_replies(ws: WebSocket, replies: asyncio.Queue) -> None:
    """Send each reply once it is known, in the order the messages came (None: stop)."""
    while (reply := await replies.get()) is not None:
        await ws.send_json(await reply)


async def refuse(ws: WebSocket, code: int, message: str) -> None:
    """Say why in a message (browsers do not always show close reasons), then close."""
    with contextlib.suppress(Exception):
        await ws.send_json(error_reply(message, "connection", fatal=True))
        await ws.close(code=code, reason=message.encode()[:120].decode(errors="ignore"))
