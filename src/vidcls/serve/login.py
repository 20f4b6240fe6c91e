"""Signing in and out: the page ``/login``, ``POST /login`` (a name and password, JSON or a
form: a session cookie), ``POST /logout``, ``GET /api/me`` (who the pages are showing, and
which pages this server has) and ``GET /api/audit`` (the audit log, admins only). Who may
call them is in :mod:`~vidcls.serve.access`."""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations at runtime.
import asyncio
import json
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.requests import ClientDisconnect

from .pages import WEB
from .signins import COOKIE
from .state import ServerState, get_state

State = Annotated[ServerState, Depends(get_state)]
router = APIRouter()
MAX_FORM = 4096  # a name and a password; anything bigger is not a sign-in


@router.get("/login", include_in_schema=False)
async def login_page() -> FileResponse:
    return FileResponse(WEB / "login.html")


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def _credentials(request: Request) -> tuple[str, str]:
    """(name, password) from a JSON or form body; 400 when it is neither."""
    body = b""
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM:
                raise HTTPException(413, "a sign-in is a name and a password")
    except ClientDisconnect:
        raise HTTPException(400, "the sign-in was cut off") from None
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if kind == "application/json":
            data = json.loads(body)
        elif kind == "application/x-www-form-urlencoded":
            data = {k: v[0] for k, v in parse_qs(body.decode(), max_num_fields=8).items()}
        else:
            raise ValueError
        name, password = data["name"], data["password"]
        if not isinstance(name, str) or not isinstance(password, str):
            raise ValueError
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise HTTPException(400, "send name and password (JSON or a form)") from None
    return name, password


@router.post("/login", summary="Sign in: a session cookie for the pages")
async def login(request: Request, state: State) -> JSONResponse:
    name, password = await _credentials(request)
    address = _address(request)
    if not state.auth:
        return JSONResponse({"name": None, "role": "admin", "auth": False})
    wait = state.attempts.wait(address, name)
    if wait:
        known = name if state.users.get(name) is not None else None
        state.audit.record("sign-in refused (too many)", known, address)
        raise HTTPException(
            429, f"too many wrong passwords: try again in {wait} s", {"Retry-After": str(wait)}
        )
    loop = asyncio.get_running_loop()
    user = await loop.run_in_executor(None, state.users.verify, name, password)
    if user is None:
        state.attempts.failed(address, name)
        # An unknown name is not recorded: people type their password there by mistake.
        known = name if state.users.get(name) is not None else None
        state.audit.record("sign-in failed", known, address)
        raise HTTPException(401, "wrong name or password")
    state.audit.record("sign-in", user.name, address)
    cookie = state.signins.start(user.name, user.epoch)
    response = JSONResponse({"name": user.name, "role": user.role, "auth": True})
    response.set_cookie(
        COOKIE,
        cookie,
        max_age=int(state.signins.max_age),
        httponly=True,
        samesite="strict",
        secure=state.options.certfile is not None,
        path="/",
    )
    return response


@router.post("/logout", summary="Sign out: the session ends")
async def logout(request: Request, state: State) -> Response:
    caller = request.state.caller
    state.signins.end(request.cookies.get(COOKIE))
    state.audit.record("sign-out", caller.name, _address(request))
    response = JSONResponse({"signed_out": True})
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


@router.get("/api/me", summary="Who is signed in, whether sign-in is on, the pages on")
async def me(request: Request, state: State) -> dict:
    caller = request.state.caller
    pages = {"events": state.store is not None, "teach": state.teacher is not None}
    return {"name": caller.name, "role": caller.role, "auth": state.auth, "pages": pages}


@router.get("/api/audit", summary="Sign-ins and changes, newest first (admins)")
async def audit(state: State, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict:
    return {"entries": state.audit.recent(limit)}
