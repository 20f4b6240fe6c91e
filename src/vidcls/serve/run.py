"""Serving the app with uvicorn: the address checked first, a banner, then until interrupted."""

from __future__ import annotations

import logging
import os
import socket
import sys
import time

from ..errors import VidclsError
from .address import is_loopback, shown_host
from .app import create_app
from .options import ServeOptions


def serve(options: ServeOptions | None = None, *, plain: str | None = None) -> None:
    """Serve until interrupted (``vidcls serve``); VidclsError for a bad address, certificate
    or model, before anything is served. ``plain``: uvicorn's own HTTP protocol of this name
    (h11, httptools, auto), without the header deadline and connection bound of
    :mod:`.protocol` (for ``vidcls bench --slow-headers``)."""
    options = options or ServeOptions()
    for f in (options.certfile, options.keyfile):
        if f and not os.path.isfile(f):
            raise VidclsError("file not found", f)
    try:
        import uvicorn
    except ImportError:
        raise VidclsError("the web server needs uvicorn: pip install 'vidcls[serve]'") from None
    check_listen(options.host, options.port)
    from .protocol import guarded_protocol

    http = plain or guarded_protocol(options.header_timeout, options.max_connections)
    logging.getLogger("uvicorn.error").addFilter(client_faults)
    started = time.perf_counter()
    app = create_app(options)
    ids = ", ".join(e.id for e in app.state.vidcls.pool.entries())
    print(banner(options, ids, time.perf_counter() - started), file=sys.stderr, flush=True)
    uvicorn.run(
        app,
        host=options.host,
        port=options.port,
        http=http,
        log_level=options.log_level,
        ssl_certfile=options.certfile,
        ssl_keyfile=options.keyfile,
        timeout_graceful_shutdown=3,
    )


def client_faults(record: logging.LogRecord) -> bool:
    """A client's fault that uvicorn logs with a traceback, as one line: a WebSocket text
    message that is not UTF-8 (uvicorn closes the connection with 1007, as it should)."""
    if record.exc_info and str(record.msg).startswith("Invalid UTF-8 sequence received"):
        record.msg, record.args = f"{record.getMessage()} Closed (1007).", ()
        record.exc_info = record.exc_text = None
    return True


def banner(options: ServeOptions, models: str, seconds: float) -> str:
    """Where to open the pages, and (off this machine without TLS) why the camera may not work."""
    scheme = "https" if options.certfile else "http"
    host = options.host
    shown = shown_host(host)
    text = (
        f"vidcls: serving {scheme}://{shown}:{options.port}/ (live camera), /file (files), "
        f"/docs (API); models {models}; ready in {seconds:.1f} s"
    )
    if options.config or options.data:
        text += f"\nvidcls: events of the cameras at {scheme}://{shown}:{options.port}/events"
    if options.auth_on:
        text += f"\nvidcls: sign-in is on (users: vidcls users list --data {options.data_folder})"
    elif not is_loopback(host):
        text += (
            "\nvidcls: WARNING: sign-in is OFF on a network address: every device that reaches "
            "this server can watch the clips, upload, train and change the model"
        )
    if options.auth_on and not is_loopback(host) and not options.certfile:
        text += (
            "\nvidcls: WARNING: without --certfile, passwords and session cookies cross the "
            "network unencrypted"
        )
    if not is_loopback(host) and not options.certfile:
        text += (
            "\nvidcls: note: browsers allow the camera only on https:// or localhost pages; for "
            "phones and other machines, add --certfile and --keyfile"
        )
    return text


def check_listen(host: str, port: int) -> None:
    """VidclsError, before loading anything, when the address cannot be used."""
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
