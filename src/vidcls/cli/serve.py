"""Serve the live camera page (/), the file page (/file) and the HTTP API (/v1/classify,
/v1/models, /healthz, WebSocket /v1/stream; schema at /docs)."""

from __future__ import annotations

import argparse
import dataclasses
import os

from ..serve.options import DATA_DEFAULT, LOG_LEVELS, ServeOptions

HELP = "web app (live camera, files) and HTTP API"
NUMBERS = (  # the numeric flags: field (= flag), type, metavar, help
    ("threads", int, None, "CPU threads a stream starts with"),
    (
        "max_streams",
        int,
        None,
        "live browser streams at once; more are refused. The default is what a 2-core machine "
        "held at 5 fps with p99 round trip < 100 ms (measure yours: vidcls bench --ws auto)",
    ),
    ("max_jobs", int, None, "files classified at once; more are refused"),
    ("max_uploads", int, None, "uploads received at once; more are refused"),
    ("max_upload_mb", float, "MB", "largest upload; past it 413"),
    ("upload_timeout", float, "SECONDS", "drop an upload that sends nothing this long (408)"),
    ("idle_timeout", float, "SECONDS", "close live streams silent this long"),
    (
        "header_timeout",
        float,
        "SECONDS",
        "close a connection that has not sent whole request headers this long after opening "
        "(or after its previous response)",
    ),
    (
        "max_connections",
        int,
        None,
        "open connections (WebSocket streams included); past it new ones are closed unread",
    ),
    ("top_k", int, None, "categories live pages show; 0: all"),
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Every flag is the :class:`ServeOptions` field of the same name, with its default."""
    d = ServeOptions(max_threads=1)
    p.add_argument(
        "--host",
        default=d.host,
        help=f"address to listen on [{d.host}: this machine only; 0.0.0.0: every interface]",
    )
    p.add_argument("--port", type=int, default=d.port, help=f"TCP port [{d.port}]")
    p.add_argument(
        "--model",
        action="append",
        metavar="NAME|PATH",
        help="model offered, zoo name or .tflite; repeat for several, the first is the default "
        f"[{d.model[0]}]. Zoo models in the cache are offered too",
    )
    for name, kind, metavar, text in NUMBERS:
        default = getattr(d, name)
        flag = "--" + name.replace("_", "-")
        p.add_argument(
            flag, type=kind, default=default, metavar=metavar, help=f"{text} [{default:g}]"
        )
    p.add_argument(
        "--max-threads",
        type=int,
        help=f"most threads a page may choose [{os.cpu_count() or 1}, the CPU count, "
        "or --threads if more]",
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
        "--config",
        metavar="FILE",
        help="watch the cameras of this file (as vidcls live --config) in the background: "
        "their events go to its sinks and to the events page (/events, GET /api/events)",
    )
    p.add_argument(
        "--data",
        metavar="DIR",
        help="where the events, the teaching folder, the users and the audit log live "
        f"[{DATA_DEFAULT}]; the events and teaching pages keep their data here",
    )
    p.add_argument(
        "--events-db",
        metavar="URL|FILE",
        help="keep the events in this database: postgresql://user:password@host/db "
        "(pip install 'vidcls[postgres]') or an SQLite file [the config's events_db, "
        "else DIR/events.db]",
    )
    p.add_argument(
        "--ray",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help="with --config: run the camera groups as Ray actors, on a Ray started here or on the "
        "cluster at ADDRESS (host:6379 or ray://host:10001); events, clips and pages stay here",
    )
    _add_signin(p)
    p.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default=d.log_level,
        help=f"server log level [{d.log_level}]",
    )


def _add_signin(p: argparse.ArgumentParser) -> None:
    """--auth and --no-auth."""
    signin = p.add_mutually_exclusive_group()
    signin.add_argument(
        "--auth",
        dest="auth",
        action="store_true",
        default=None,
        help="callers sign in (users: vidcls users add); the default on any address but loopback",
    )
    signin.add_argument(
        "--no-auth",
        dest="auth",
        action="store_false",
        help="nobody signs in; on an address other than loopback also needs "
        "VIDCLS_NO_AUTH_ON_NETWORK=1",
    )


def serve_options(args: argparse.Namespace) -> ServeOptions:
    """ServeOptions from the flags (a flag not given, None, keeps the field's default)."""
    names = [f.name for f in dataclasses.fields(ServeOptions)]
    given = {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}
    return ServeOptions(**given)


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted."""
    options = serve_options(args)
    if options.config is not None:  # a bad file is one line at once, before the web stack loads
        from ..config import load_config

        load_config(options.config)
    from ..serve import serve

    serve(options)
    return 0
