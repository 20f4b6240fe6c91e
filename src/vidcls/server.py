"""``vidcls serve``: the live camera page, the file page and an HTTP API (FastAPI + uvicorn).

Routes: ``/`` live page, ``/file`` file page, ``/static/*`` their CSS and JS,
``GET /healthz``, ``GET /v1/models``, ``POST /v1/classify`` (a video in, the JSON of
``vidcls classify --format json`` out), ``WS /v1/stream`` (JPEG frames in, results out), and
FastAPI's ``/openapi.json`` and ``/docs``. Every WebSocket connection has its own stream state
on a model loaded once per (model, threads); inference runs in a thread pool, so the event loop
only moves bytes. Uploads stream to a temporary file under a size limit; streams and file jobs
are capped, and requests past a cap are refused at once rather than queued.

WebSocket protocol (``/v1/stream?model=ID&threads=N``, both optional):

- server, on connect: ``{"type": "ready", "model", "threads", "fps", "input", ...}``
- client: a binary message with one JPEG frame, sent at ``fps``; server: ``{"type": "result",
  "top": [{"label", "index", "score"}], "infer_ms", "decode_ms", "frames", "fps", "size"}``
- client: ``{"type": "reset"}``; server: ``{"type": "reset", "frames": 0}``
- client: ``{"type": "config", "model": ID, "threads": N}``; server: ``{"type": "config", ...}``
  (a new stream: state starts empty)
- any bad message: ``{"type": "error", "message", "reply_to", "fatal": false}``; the stream
  goes on. Refusals (server busy, cross-origin) are a ``fatal`` error then a close (1013, 1008).

Each message gets exactly one reply, in order.
"""

# No `from __future__ import annotations`: FastAPI reads the route functions' annotations,
# which name classes imported inside create_app.
import argparse
import asyncio
import base64
import contextlib
import ipaddress
import logging
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from . import __version__, zoo
from ._upload import FORM_OVERHEAD, UploadError, UploadTooLarge, receive_upload
from .classify import classify_video, parse_fps
from .errors import VidclsError
from .webstream import LiveSession, MessageError, ModelPool, error_reply

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger("vidcls.server")
WEB = Path(__file__).parent / "web"
MB = 1 << 20
CLOSE_BUSY, CLOSE_POLICY = 1013, 1008


@dataclass
class ServeOptions:
    """What a server offers and its limits.

    ``default_model`` and ``models`` (zoo names or .tflite paths) are offered, plus every zoo
    model in the cache. ``num_threads`` is what a stream starts with; pages may pick 1 to
    ``max_threads``. ``top_k`` and ``window`` apply to live streams (``window=None``: cumulative
    until the page clears the state, as the Android app). Past ``max_streams`` WebSocket streams
    or ``max_jobs`` file classifications, new ones are refused.
    """

    default_model: str = zoo.DEFAULT_MODEL
    models: list[str] = field(default_factory=list)
    num_threads: int = 1
    max_threads: int = field(default_factory=lambda: os.cpu_count() or 1)
    max_upload_bytes: int = 200 * MB
    max_streams: int = 8
    max_jobs: int = 2
    max_frame_bytes: int = 2 * MB
    idle_timeout: float = 120.0
    top_k: int = 3
    window: float | None = None

    def check(self) -> None:
        """Raise VidclsError for a value out of range."""
        for name in ("num_threads", "max_threads", "max_upload_bytes", "max_streams", "max_jobs"):
            if getattr(self, name) < 1:
                raise VidclsError(f"{name.replace('_', ' ')} must be 1 or more")
        if self.num_threads > self.max_threads:
            raise VidclsError(
                f"threads ({self.num_threads}) above max threads ({self.max_threads})"
            )
        if not self.idle_timeout > 0:
            raise VidclsError("idle timeout must be a positive number of seconds")
        if self.window is not None and not self.window > 0:
            raise VidclsError("window must be a positive number of seconds")
        if self.top_k < 0:
            raise VidclsError("top-k must be 0 (all) or more")


def _fastapi():
    try:
        import fastapi
        import fastapi.responses
        import fastapi.staticfiles
        import python_multipart  # noqa: F401 - needed by the upload parser
    except ImportError as e:
        raise VidclsError(f"the web server needs {e.name}: pip install 'vidcls[serve]'") from None
    return fastapi


def create_app(options: ServeOptions | None = None) -> "FastAPI":
    """The ASGI app. Loads the models given (raising VidclsError for a bad one) before serving."""
    options = options or ServeOptions()
    options.check()
    fastapi = _fastapi()
    from fastapi import Query, Request, WebSocket, WebSocketDisconnect
    from fastapi.responses import FileResponse, JSONResponse
    from fastapi.staticfiles import StaticFiles

    pool = ModelPool(
        [options.default_model, *options.models],
        top_k=options.top_k,
        window=options.window,
        max_threads=options.max_threads,
    )
    for entry in pool.entries():
        if entry.kind == "file" or entry.id == pool.default:
            pool.get(entry.id, options.num_threads)  # a bad model fails here, not later
    frame_pool = ThreadPoolExecutor(
        max_workers=min(options.max_streams, 2 * (os.cpu_count() or 1) + 2),
        thread_name_prefix="vidcls-frames",
    )
    job_pool = ThreadPoolExecutor(max_workers=options.max_jobs, thread_name_prefix="vidcls-jobs")
    load = {"streams": 0, "jobs": 0}

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        frame_pool.shutdown(wait=False, cancel_futures=True)
        job_pool.shutdown(wait=False, cancel_futures=True)

    app = fastapi.FastAPI(
        title="vidcls",
        version=__version__,
        description="Streaming video classification (MoViNet, Kinetics-600) on the CPU. "
        "The live page is at `/`, the file page at `/file`; `WS /v1/stream` takes JPEG "
        "frames (protocol in the vidcls.server module docstring).",
        lifespan=lifespan,
    )
    app.state.pool, app.state.options, app.state.load = pool, options, load

    def error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
        return JSONResponse({"detail": message}, status_code=status, headers=headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error in %s %s", request.method, request.url.path)
        return error(500, f"internal error ({type(exc).__name__})")

    # -- pages -------------------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    async def live_page() -> FileResponse:
        return FileResponse(WEB / "index.html")

    @app.get("/file", include_in_schema=False)
    async def file_page() -> FileResponse:
        return FileResponse(WEB / "file.html")

    app.mount("/static", StaticFiles(directory=WEB), name="static")

    # -- API ---------------------------------------------------------------------------

    @app.get("/healthz", summary="Liveness and load")
    async def healthz() -> dict:
        return {
            "status": "ok",
            "version": __version__,
            "streams": load["streams"],
            "max_streams": options.max_streams,
            "jobs": load["jobs"],
            "max_jobs": options.max_jobs,
        }

    @app.get("/v1/models", summary="Models offered, thread range and limits")
    async def models() -> dict:
        return {
            "default": pool.default,
            "models": pool.describe(),
            "threads": {"default": options.num_threads, "max": options.max_threads},
            "live": {"top_k": options.top_k, "window": options.window},
            "limits": {
                "max_upload_bytes": options.max_upload_bytes,
                "max_streams": options.max_streams,
                "max_jobs": options.max_jobs,
                "max_frame_bytes": options.max_frame_bytes,
            },
        }

    @app.post(
        "/v1/classify",
        summary="Classify a video file",
        description="The video as `multipart/form-data` (one file field, e.g. `file`) or as "
        "the raw body (`video/*` or `application/octet-stream`). Returns the JSON document of "
        "`vidcls classify --format json` (`source` is the uploaded file name), with `plot` "
        "(a PNG data URL) added when `plot=true`.",
        openapi_extra={"requestBody": _REQUEST_BODY},
        responses=_RESPONSES,
    )
    async def classify(
        request: Request,
        model: str | None = Query(None, description="model id from /v1/models [default]"),
        fps: str | None = Query(None, description="frames fed per second, or 'native' [5]"),
        top_k: int = Query(5, ge=0, description="categories per frame; 0: all"),
        threshold: float = Query(0.0, ge=0, le=1, description="minimum score reported"),
        window: float | None = Query(None, gt=0, description="windowed classification, s"),
        segments: bool = Query(False, description="add action segments"),
        plot: bool = Query(False, description="add the timeline plot as a PNG data URL"),
        summary_only: bool = Query(False, description="leave out per-frame results"),
        filename: str | None = Query(None, description="file name, for a raw body"),
    ) -> JSONResponse:
        try:
            model_id = pool.entry(model or pool.default).id
        except MessageError as e:
            return error(400, str(e))
        try:
            rate = parse_fps(fps)
            if rate is not None and not math.isfinite(rate):
                raise ValueError
        except ValueError:
            return error(400, f"fps must be a positive number or 'native', not {fps!r}")
        limit = options.max_upload_bytes
        too_large = f"upload larger than the limit of {_size(limit)}"
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > limit + FORM_OVERHEAD:
            return error(413, too_large)
        if load["jobs"] >= options.max_jobs:
            return error(
                503,
                f"busy: {options.max_jobs} files are being classified; try again shortly",
                {"Retry-After": "5"},
            )
        load["jobs"] += 1
        folder = Path(tempfile.mkdtemp(prefix="vidcls-upload-"))

        def release(_=None) -> None:
            load["jobs"] -= 1
            shutil.rmtree(folder, ignore_errors=True)

        job = None
        try:
            content_type = request.headers.get("content-type", "application/octet-stream")
            try:
                path, name = await receive_upload(
                    content_type, request.stream(), folder, limit, filename
                )
            except UploadTooLarge:
                return error(413, too_large)
            except UploadError as e:
                return error(400, str(e))
            task = _ClassifyJob(pool, model_id, options.num_threads, path, name)
            settings = dict(top_k=top_k, threshold=threshold, window=window, segments=segments)
            job = asyncio.get_running_loop().run_in_executor(
                job_pool, lambda: task.run(rate, plot=plot, **settings)
            )
            job.add_done_callback(release)  # when the worker is done, even if the client left
            try:
                doc = await asyncio.shield(job)
            except VidclsError as e:
                return error(422, f"{name}: {e.message}")
            if summary_only:
                doc["frames"] = []
            return JSONResponse(doc)
        finally:
            if job is None:
                release()

    @app.websocket("/v1/stream")
    async def stream(ws: WebSocket) -> None:
        await ws.accept()
        if not _same_origin(ws.headers.get("origin"), ws.headers.get("host")):
            await _refuse(ws, CLOSE_POLICY, "cross-origin connections are refused")
            return
        if load["streams"] >= options.max_streams:
            message = f"server busy: all {options.max_streams} streams are in use; try again later"
            await _refuse(ws, CLOSE_BUSY, message)
            return
        load["streams"] += 1
        run = asyncio.get_running_loop().run_in_executor
        try:
            params = ws.query_params
            try:
                threads = params.get("threads", str(options.num_threads))
                if not threads.isdigit():
                    raise MessageError(f"threads must be an integer, not {threads!r}")
                threads, model_id = int(threads), params.get("model") or pool.default
                session = await run(
                    frame_pool,
                    lambda: LiveSession(pool, model_id, threads, options.max_frame_bytes),
                )
            except (ValueError, VidclsError) as e:  # MessageError is a ValueError
                await _refuse(ws, CLOSE_POLICY, str(e))
                return
            await ws.send_json(session.describe("ready"))
            while True:
                try:
                    message = await asyncio.wait_for(ws.receive(), options.idle_timeout)
                except asyncio.TimeoutError:
                    idle = f"closed after {options.idle_timeout:g} s without a message"
                    await _refuse(ws, 1000, idle)
                    return
                if message["type"] == "websocket.disconnect":
                    return
                data = message.get("bytes")
                if data is not None:
                    session.arrived()
                handle = session.frame if data is not None else session.control
                payload = data if data is not None else message.get("text") or ""
                try:
                    reply = await run(frame_pool, handle, payload)
                except Exception as e:  # a bug, not bad input: say so, keep the stream
                    log.exception("unexpected error in a live stream")
                    kind = "frame" if data is not None else "control"
                    reply = error_reply(f"internal error ({type(e).__name__})", kind)
                await ws.send_json(reply)
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass  # the client went away mid-reply
        finally:
            load["streams"] -= 1

    return app


class _ClassifyJob:
    """One uploaded file, classified on a fresh stream of the shared model (in a worker)."""

    def __init__(self, pool: ModelPool, model_id: str, threads: int, path: Path, name: str):
        self.pool, self.model_id, self.threads = pool, model_id, threads
        self.path, self.name = path, name

    def run(
        self, fps: float | None, *, top_k: int, threshold: float, window, segments, plot
    ) -> dict:
        classifier = self.pool.new_stream(
            self.model_id,
            self.threads,
            max_results=top_k,
            score_threshold=threshold,
            window=window,
        )
        result = classify_video(
            self.path,
            fps=fps,
            classifier=classifier,
            segments=bool(segments) or None,
            keep_probabilities=plot,
        )
        result.source, result.model = self.name, self.model_id
        doc = result.to_dict()
        if plot:
            from .plot import plot_timeline

            png = plot_timeline(result, self.path.with_name("timeline.png"))
            doc["plot"] = "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode()
        return doc


async def _refuse(ws, code: int, message: str) -> None:
    """Say why in a message (browsers do not always show close reasons), then close."""
    with contextlib.suppress(Exception):
        await ws.send_json(error_reply(message, "connection", fatal=True))
        await ws.close(code=code, reason=message.encode()[:120].decode(errors="ignore"))


def _same_origin(origin: str | None, host: str | None) -> bool:
    """Browsers send Origin; a page from another site may not drive this server's streams."""
    if not origin:
        return True  # not a browser (or a same-origin request that omits it)
    return (urlsplit(origin).netloc or "").lower() == (host or "").lower()


def _size(n: int) -> str:
    return f"{n / MB:g} MB" if n >= MB else f"{n} bytes"


_FILE_SCHEMA = {"type": "string", "format": "binary"}
_REQUEST_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {"file": _FILE_SCHEMA},
                "required": ["file"],
            }
        },
        "application/octet-stream": {"schema": _FILE_SCHEMA},
        "video/*": {"schema": _FILE_SCHEMA},
    },
}
_CATEGORY = {
    "type": "object",
    "properties": {
        "label": {"type": "string"},
        "index": {"type": "integer"},
        "score": {"type": "number"},
    },
}
_RESULT_SCHEMA = {
    "type": "object",
    "properties": {
        "source": {"type": "string"},
        "model": {"type": "string"},
        "fps": {"oneOf": [{"type": "number"}, {"type": "string", "enum": ["native"]}]},
        "frames": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "time": {"type": "number"},
                    "top": {"type": "array", "items": _CATEGORY},
                },
            },
        },
        "summary": {
            "type": "object",
            "properties": {"top": {"type": "array", "items": _CATEGORY}},
        },
        "window": {"type": "number"},
        "segments": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "label": {"type": "string"},
                    "index": {"type": "integer"},
                    "start": {"type": "number"},
                    "end": {"type": "number"},
                    "peak": {"type": "number"},
                },
            },
        },
        "plot": {"type": "string", "description": "data:image/png;base64,..."},
    },
}
_ERROR = {
    "content": {
        "application/json": {
            "schema": {"type": "object", "properties": {"detail": {"type": "string"}}}
        }
    }
}
_RESPONSES = {
    200: {
        "description": "The classification",
        "content": {"application/json": {"schema": _RESULT_SCHEMA}},
    },
    400: {"description": "Bad request: no file, unknown model, bad fps", **_ERROR},
    413: {"description": "Upload larger than the server's limit", **_ERROR},
    422: {"description": "Not a video that can be decoded, or bad query values", **_ERROR},
    503: {"description": "Too many files being classified", **_ERROR},
}


# -- command line ----------------------------------------------------------------------


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on [127.0.0.1: this machine only; 0.0.0.0: every interface]",
    )
    p.add_argument("--port", type=int, default=8000, help="TCP port [8000]")
    p.add_argument(
        "--model",
        action="append",
        metavar="NAME|PATH",
        help="model offered, zoo name or .tflite; repeat for several, the first is the default "
        "[a0]. Zoo models in the cache are offered too",
    )
    p.add_argument("--threads", type=int, default=1, help="CPU threads a stream starts with [1]")
    p.add_argument(
        "--max-threads",
        type=int,
        default=os.cpu_count() or 1,
        help=f"most threads a page may choose [{os.cpu_count() or 1}, the CPU count]",
    )
    p.add_argument(
        "--max-streams", type=int, default=8, help="live streams at once; more are refused [8]"
    )
    p.add_argument(
        "--max-jobs", type=int, default=2, help="files classified at once; more are refused [2]"
    )
    p.add_argument(
        "--max-upload-mb", type=float, default=200, help="largest upload, MB; past it 413 [200]"
    )
    p.add_argument(
        "--idle-timeout",
        type=float,
        default=120,
        metavar="SECONDS",
        help="close live streams silent this long [120]",
    )
    p.add_argument(
        "--window",
        type=float,
        metavar="SECONDS",
        help="live pages: predictions from the last SECONDS/2 to SECONDS of video "
        "(default: everything since the last clear, as the Android app)",
    )
    p.add_argument(
        "--certfile", help="TLS certificate (PEM): serve HTTPS, needed for cameras on other devices"
    )
    p.add_argument("--keyfile", help="TLS private key (PEM) for --certfile")
    p.add_argument(
        "--log-level",
        choices=("critical", "error", "warning", "info", "debug"),
        default="info",
        help="server log level [info]",
    )


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``serve`` to the ``vidcls`` command's subparsers."""
    p = subparsers.add_parser(
        "serve",
        help="web app (live camera, files) and HTTP API",
        description="Serve the live camera page (/), the file page (/file) and the HTTP API "
        "(/v1/classify, /v1/models, /healthz, WebSocket /v1/stream; schema at /docs).",
    )
    _add_arguments(p)
    return p


def options_from_args(args: argparse.Namespace) -> ServeOptions:
    models = args.model or [zoo.DEFAULT_MODEL]
    if args.max_upload_mb <= 0:
        raise VidclsError("--max-upload-mb must be positive")
    if (args.certfile is None) != (args.keyfile is None):
        raise VidclsError("--certfile and --keyfile go together")
    return ServeOptions(
        default_model=models[0],
        models=models[1:],
        num_threads=args.threads,
        max_threads=max(args.max_threads, args.threads),
        max_upload_bytes=int(args.max_upload_mb * MB),
        max_streams=args.max_streams,
        max_jobs=args.max_jobs,
        idle_timeout=args.idle_timeout,
        window=args.window,
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _lan_address() -> str:
    """This machine's address on its default route (no packet is sent), for the banner."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.254.254.254", 1))
            return s.getsockname()[0]
        except OSError:
            return "0.0.0.0"


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted (``vidcls serve``); VidclsError for bad options or models."""
    options = options_from_args(args)
    for f in (args.certfile, args.keyfile):
        if f and not os.path.isfile(f):
            raise VidclsError("file not found", f)
    try:
        import uvicorn
    except ImportError:
        raise VidclsError("the web server needs uvicorn: pip install 'vidcls[serve]'") from None
    _check_listen(args.host, args.port)
    started = time.perf_counter()
    app = create_app(options)
    scheme = "https" if args.certfile else "http"
    shown = _lan_address() if args.host in ("0.0.0.0", "::") else args.host
    shown = f"[{shown}]" if ":" in shown else shown
    print(
        f"vidcls: serving {scheme}://{shown}:{args.port}/ (live camera), /file (files), "
        f"/docs (API); models {', '.join(e.id for e in app.state.pool.entries())}; "
        f"ready in {time.perf_counter() - started:.1f} s",
        file=sys.stderr,
        flush=True,
    )
    if not _is_loopback(args.host) and not args.certfile:
        print(
            "vidcls: note: browsers allow the camera only on https:// or localhost pages; for "
            "phones and other machines, add --certfile and --keyfile",
            file=sys.stderr,
        )
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        ssl_certfile=args.certfile,
        ssl_keyfile=args.keyfile,
        timeout_graceful_shutdown=3,
    )
    return 0


def _check_listen(host: str, port: int) -> None:
    """Fail with a clear message, before loading anything, when the address cannot be used."""
    import socket

    if not 0 <= port <= 65535:
        raise VidclsError(f"--port must be 0-65535, not {port}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, _, _, _, address = infos[0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as e:
        raise VidclsError(f"cannot listen on {host}:{port} ({e.strerror or e})") from None


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m vidcls.server``: the same options as ``vidcls serve``."""
    parser = argparse.ArgumentParser(
        prog="python -m vidcls.server", description="The vidcls web app and HTTP API."
    )
    _add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except VidclsError as e:
        print(f"vidcls: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
