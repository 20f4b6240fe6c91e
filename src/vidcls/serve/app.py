"""The ASGI app: the routers of :mod:`~vidcls.serve.pages`, :mod:`~vidcls.serve.api` and
:mod:`~vidcls.serve.stream` on one :class:`~vidcls.serve.state.ServerState`."""

import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from .. import __version__
from . import api, pages, stream
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
    app = FastAPI(title="vidcls", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.vidcls = state
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=pages.WEB), name="static")
    app.include_router(api.router)
    app.include_router(stream.router)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(Exception, unexpected)
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


async def unexpected(request: Request, exc: Exception) -> JSONResponse:
    """500 for a bug, logged with its traceback."""
    log.exception("unexpected error in %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": f"internal error ({type(exc).__name__})"}, status_code=500)
