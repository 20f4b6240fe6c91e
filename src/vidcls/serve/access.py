"""Who may call each route, decided here and only here: :data:`ACCESS` names the role each
route needs (``public``, ``viewer`` or ``admin``), and :class:`Gate`, an ASGI middleware
around the whole app, checks every HTTP request and WebSocket before any route runs.

- A route missing from :data:`ACCESS` needs an admin: a new route is locked until it is
  listed, never open by mistake. A path that is no route needs a sign-in (no probing).
- Who is calling: an ``Authorization: Bearer`` token (``vidcls users token``) or the session
  cookie of the sign-in page. Without sign-in (loopback, ``--no-auth``) everyone is an admin.
- Without credentials, a page answers a redirect to ``/login``, anything else 401; a viewer
  calling an admin route gets 403.
- Every request that can change something (any method but GET, HEAD and OPTIONS, and every
  WebSocket) is refused with 403 when a browser says it comes from another site (``Origin``,
  or ``Sec-Fetch-Site: cross-site``), signed in or not; such requests by a signed-in user are
  recorded in the audit log.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from urllib.parse import quote, urlsplit

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .signins import COOKIE

log = logging.getLogger("vidcls.serve")
PUBLIC, VIEWER, ADMIN = "public", "viewer", "admin"
ACCESS = {  # route path (as registered): who may call it. Unlisted: ADMIN.
    "/login": PUBLIC,
    "/healthz": PUBLIC,
    "/static": PUBLIC,  # the pages' CSS and scripts
    "/static-offline-docs": PUBLIC,  # /docs' scripts
    "/logout": VIEWER,
    "/api/me": VIEWER,
    "/": VIEWER,
    "/file": VIEWER,
    "/v1/models": VIEWER,
    "/v1/classify": VIEWER,
    "/v1/stream": VIEWER,
    "/events": VIEWER,
    "/api/events": VIEWER,
    "/api/groups": VIEWER,  # how the cameras run: groups, nodes, load
    "/media/{path:path}": VIEWER,
    "/api/playable/{path:path}": VIEWER,  # a clip's browser copy (made on the first call)
    "/openapi.json": VIEWER,
    "/docs": VIEWER,
    "/docs/oauth2-redirect": VIEWER,
    "/redoc": VIEWER,
}
PAGES = {"/", "/file", "/events", "/teach", "/docs", "/redoc"}  # no sign-in: to /login
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
NOT_AUDITED = {"/v1/classify", "/login", "/logout"}  # change nothing, or log themselves


@dataclass(frozen=True)
class Caller:
    """Who is calling: ``name`` (None without sign-in) and ``role``."""

    name: str | None
    role: str

    @property
    def admin(self) -> bool:
        return self.role == ADMIN


NOBODY_SIGNS_IN = Caller(None, ADMIN)


def routes_of(app: ASGIApp) -> list[BaseRoute]:
    """Every route an app registers, routers included (FastAPI keeps included routers as
    one entry in newer versions)."""
    out: list[BaseRoute] = []

    def walk(routes) -> None:
        for route in routes:
            inner = getattr(route, "original_router", None)
            if inner is not None:
                walk(inner.routes)
            else:
                out.append(route)

    walk(getattr(app, "routes", []))
    return out


def needed(route: BaseRoute) -> str:
    """The role a route needs."""
    return ACCESS.get(getattr(route, "path", None), ADMIN)


def same_origin(origin: str | None, host: str | None) -> bool:
    """False when a browser says the request comes from a page of another site."""
    if origin is None:
        return True  # not a browser, or a same-origin request that omits it
    try:
        netloc = urlsplit(origin).netloc
    except ValueError:
        return False
    return bool(netloc) and netloc.lower() == (host or "").lower()


def _headers(scope: Scope) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in scope.get("headers", []):
        name = key.decode("latin-1").lower()
        if name not in out:  # the first of repeated headers
            out[name] = value.decode("latin-1")
    return out


def cookie_value(headers: dict[str, str], name: str = COOKIE) -> str | None:
    """A cookie from the Cookie header, or None."""
    raw = headers.get("cookie")
    if not raw:
        return None
    jar = SimpleCookie()
    try:
        jar.load(raw)
    except CookieError:
        return None
    morsel = jar.get(name)
    return morsel.value if morsel is not None else None


class Gate:
    """The ASGI middleware that applies :data:`ACCESS` (see the module docstring).
    ``identify(headers)`` returns the :class:`Caller` of a request's credentials or None;
    ``enabled()`` says whether sign-in is on; ``audit(action, caller, address, **detail)``
    records a change."""

    def __init__(
        self,
        app: ASGIApp,
        routes: Callable[[], list[BaseRoute]],
        identify: Callable[[dict[str, str]], Caller | None],
        enabled: Callable[[], bool],
        audit: Callable[..., None],
    ) -> None:
        self.app = app
        self._routes = routes
        self.identify = identify
        self.enabled = enabled
        self.audit = audit

    def route(self, scope: Scope) -> tuple[BaseRoute | None, str]:
        """The route a request goes to and the role it needs (no route: a viewer's)."""
        partial = None
        for route in self._routes():  # read each time: a route added later is checked too
            match, _ = route.matches(scope)
            if match == Match.FULL:
                return route, needed(route)
            if match == Match.PARTIAL and partial is None:
                partial = route  # the path is right, the method is not: 405 to come
        return (partial, needed(partial)) if partial is not None else (None, VIEWER)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        websocket = scope["type"] == "websocket"
        method = "GET" if websocket else scope["method"]
        route, role = self.route(scope)
        changes = websocket or method not in SAFE_METHODS
        if changes and (
            not same_origin(headers.get("origin"), headers.get("host"))
            or headers.get("sec-fetch-site") == "cross-site"
        ):
            if websocket:  # the stream protocol's refusal: a fatal error, then 1008
                await self._refuse_stream(send, "cross-origin connections are refused")
            else:
                await self._deny(scope, receive, send, 403, "cross-origin requests are refused")
            return
        caller = NOBODY_SIGNS_IN if not self.enabled() else self.identify(headers)
        if role != PUBLIC:
            if caller is None:
                path = getattr(route, "path", None)
                if not websocket and method == "GET" and path in PAGES:
                    target = "/login?next=" + quote(scope.get("path", "/"), safe="/")
                    await self._redirect(scope, receive, send, target)
                else:
                    await self._deny(scope, receive, send, 401, "sign in first")
                return
            if role == ADMIN and not caller.admin:
                await self._deny(scope, receive, send, 403, "admins only")
                return
        scope.setdefault("state", {})["caller"] = caller
        if not changes or websocket or caller is None or scope.get("path") in NOT_AUDITED:
            await self.app(scope, receive, send)
            return
        await self._audited(scope, receive, send, caller)

    async def _audited(self, scope: Scope, receive: Receive, send: Send, caller: Caller) -> None:
        """Run a change, then record it with its status and what the route added."""
        status = 500

        async def watched(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watched)
        finally:
            client = scope.get("client")
            detail = scope.get("state", {}).get("audit") or {}
            self.audit(
                f"{scope['method']} {scope['path']}",
                caller.name,
                client[0] if client else None,
                status=status,
                **detail,
            )

    async def _deny(self, scope: Scope, receive: Receive, send: Send, status: int, text: str):
        body = json.dumps({"detail": text}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        if status == 401:
            headers.append((b"www-authenticate", b'Bearer realm="vidcls"'))
        if scope["type"] == "websocket":
            if "websocket.http.response" in scope.get("extensions") or {}:
                await send(
                    {"type": "websocket.http.response.start", "status": status, "headers": headers}
                )
                await send({"type": "websocket.http.response.body", "body": body})
            else:
                await send({"type": "websocket.close", "code": 1008, "reason": text})
            return
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _refuse_stream(self, send: Send, text: str) -> None:
        reply = {"type": "error", "message": text, "reply_to": "connection", "fatal": True}
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": json.dumps(reply)})
        await send({"type": "websocket.close", "code": 1008})

    async def _redirect(self, scope: Scope, receive: Receive, send: Send, target: str) -> None:
        headers = [(b"location", target.encode()), (b"content-length", b"0")]
        await send({"type": "http.response.start", "status": 303, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
