"""``vidcls serve``: the live camera page, the file page and an HTTP API (FastAPI + uvicorn).

Routes: ``/`` live page, ``/file`` file page, ``/static/*`` their CSS and JS (``web/``),
``GET /healthz``, ``GET /v1/models``, ``POST /v1/classify`` (a video in, the JSON of
``vidcls classify --format json`` out), ``WS /v1/stream`` (JPEG frames in, results out), and
FastAPI's ``/openapi.json``, ``/docs`` and ``/redoc`` (their scripts served from here, not a
CDN). Uploads stream to a temporary file under a size limit and a stall timeout; streams,
uploads in progress and file jobs are capped (a job slot is taken only once its upload is
complete), and requests past a cap are refused at once rather than queued. Every HTTP error
is JSON on a connection that stays usable.

Modules: ``options`` (:class:`ServeOptions`), ``app`` (:func:`create_app`), ``state`` (what a
running server holds), routers ``pages``, ``api`` and ``stream`` (the WebSocket protocol is in
its docstring), ``sessions`` (the model pool, one live stream), ``jobs`` (one uploaded file),
``upload`` (receiving it), ``schema`` (the API's pydantic models, derived from
:mod:`vidcls.results`), ``run`` (:func:`serve`: uvicorn), ``protocol`` (its HTTP/1.1 with a
header deadline), and who may call what: ``access`` (one table, the ``Gate`` middleware),
``login``, ``users``, ``signins``, ``audit``.

    from vidcls.serve import ServeOptions, create_app, serve
    serve(ServeOptions(model=["a0", "my_actions.tflite"], port=8080))
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import VidclsError
from .options import ServeOptions

if TYPE_CHECKING:
    from .app import create_app
    from .run import serve

__all__ = ["ServeOptions", "create_app", "serve"]


def require() -> None:
    """VidclsError naming what to install when the web server's packages are missing."""
    try:
        import argon2  # noqa: F401 - password hashes
        import fastapi  # noqa: F401
        import fastapi_offline  # noqa: F401 - /docs without a CDN
        import itsdangerous  # noqa: F401 - signed session cookies
        import python_multipart  # noqa: F401 - the upload parser
    except ImportError as e:
        name = {"argon2": "argon2-cffi"}.get(e.name, (e.name or "fastapi").replace("_", "-"))
        raise VidclsError(f"the web server needs {name}: pip install 'vidcls[serve]'") from None


def __getattr__(name: str):
    """``create_app`` and ``serve`` are imported on first use (FastAPI is an extra)."""
    if name == "create_app":
        require()
        from .app import create_app

        return create_app
    if name == "serve":
        require()
        from .run import serve

        return serve
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
