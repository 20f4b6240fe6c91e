"""The ASGI app: the routers of :mod:`~vidcls.serve.pages`, :mod:`~vidcls.serve.api`,
:mod:`~vidcls.serve.stream`, the events, teaching and sign-in routes on one
:class:`~vidcls.serve.state.ServerState`, behind :class:`~vidcls.serve.access.Gate` (who may
call what); ``/docs`` and
``/redoc`` with their scripts and styles served from here (fastapi-offline), so they work
without internet."""

import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__
from . import api, events, groups, login, pages, playable, stream, teach
from .access import Gate, routes_of
from .options import ServeOptions
from .state import ServerState

log = logging.getLogger("vidcls.serve")
DESCRIPTION = (
    "Streaming video classification (MoViNet, Kinetics-600) on the CPU. The live page is at "
    "`/`, the file page at `/file`; `WS /v1/stream` takes JPEG frames (protocol in the "
    "vidcls.serve.stream module docstring)."
)


def create_app(options: ServeOptions | None = None) -> FastAPI:
    """The app. Loads the default model and every .tflite given (VidclsError for a bad one)."""
    state = ServerState(options or ServeOptions())
    app = FastAPIOffline(
        title="vidcls",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        swagger_ui_parameters={"validatorUrl": None},  # no badge fetched from swagger.io
    )
    app.state.vidcls = state
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=pages.WEB), name="static")
    app.include_router(api.router)
    app.include_router(stream.router)
    app.include_router(events.router)
    app.include_router(groups.router)
    app.include_router(playable.router)
    app.include_router(teach.router)
    app.include_router(login.router)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_middleware(CatchAll)
    app.add_middleware(  # outermost: nothing runs for a caller it turns away
        Gate,
        routes=lambda: routes_of(app),
        identify=state.identify,
        enabled=lambda: state.auth,
        audit=state.audit.record,
    )
    return app


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """On shutdown, stop the worker threads."""
    yield
    app.state.vidcls.close()


async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with one line naming each bad value, as every other error."""
    problems = [f"{e['loc'][-1]}: {e['msg']}" for e in exc.errors()]
    return JSONResponse({"detail": "; ".join(problems)}, status_code=422)


class CatchAll:
    """A bug in an HTTP route: a JSON 500, logged with its traceback, on a connection that
    stays usable. (Starlette's own handler for Exception re-raises after answering, and
    uvicorn then drops the keep-alive connection.)"""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as exc:
            if started:  # too late for an answer: uvicorn logs it and closes the connection
                raise
            log.exception("unexpected error in %s %s", scope["method"], scope["path"])
            body = {"detail": f"internal error ({type(exc).__name__})"}
            await JSONResponse(body, status_code=500)(scope, receive, send)
