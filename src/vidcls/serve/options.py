"""What a server offers and its limits: :class:`ServeOptions`, checked when made."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

from .. import zoo
from ..errors import OptionError, VidclsError
from ..options import check_window
from .address import is_loopback, shown_host

MB = 1 << 20
# Live browser streams one server holds, measured, not guessed: on the 2-core reference machine
# `VIDCLS_MIRROR=../shared/assets/models vidcls bench --ws auto --seconds 15` (640x360 JPEG
# frames at 5 fps, <= 2 in flight, clients on the same machine) held 16 streams (round trip
# p50 17 ms, p99 40 ms, every stream 5.00 results/s, none skipped, server 0.78 cores) and not
# 24 (p50 44 ms, p99 157 ms; at a busier moment p99 357 ms, 4.46 results/s, frames skipped);
# `--ws 16` alone: p50 21 ms, p99 46 ms. On a bigger machine, measure and raise --max-streams.
MAX_STREAMS = 16
OPEN = "VIDCLS_NO_AUTH_ON_NETWORK"  # set to 1, with --no-auth, to serve a network unsigned
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
DATA_DEFAULT = "$VIDCLS_DATA, else $XDG_DATA_HOME/vidcls, else ~/.local/share/vidcls"


def default_data_folder() -> str:
    """The data folder when none is given (``vidcls serve`` and ``vidcls users`` alike):
    ``$VIDCLS_DATA``, else ``$XDG_DATA_HOME/vidcls`` (an absolute one, as the XDG base
    directory spec says), else ``~/.local/share/vidcls``."""
    if os.environ.get("VIDCLS_DATA"):
        return os.environ["VIDCLS_DATA"]
    xdg = os.environ.get("XDG_DATA_HOME", "")
    base = xdg if os.path.isabs(xdg) else os.path.expanduser("~/.local/share")
    return os.path.join(base, "vidcls")


def _positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise OptionError(name, f"must be 1 or more, not {value!r}")


def _positive_seconds(name: str, value: float) -> None:
    if not (value > 0 and math.isfinite(value)):
        raise OptionError(name, f"must be a positive number, not {value!r}")


@dataclass
class ServeOptions:
    """How ``vidcls serve`` runs; VidclsError when a value is out of range.

    Every field but ``max_frame_bytes`` is the ``vidcls serve`` flag of the same name.
    ``model``: the models offered (zoo names or .tflite paths; the first is the default), plus
    every zoo model in the cache. ``threads`` is what a stream starts with; pages may pick 1 to
    ``max_threads`` (None: the CPU count, or ``threads`` if more). ``top_k`` and ``window``
    apply to live streams (``window=None``: cumulative until the page clears the state, as
    the Android app). Past ``max_streams`` WebSocket streams, ``max_uploads`` uploads being
    received or ``max_jobs`` file classifications, new ones are refused; an upload that sends
    nothing for ``upload_timeout`` seconds is answered 408 and dropped. A connection that has not
    sent a whole request head ``header_timeout`` seconds after it opened (or after the previous
    response) is closed, and past ``max_connections`` open connections (WebSocket streams
    included) new ones are closed unread (:mod:`vidcls.serve.protocol`). ``host``, ``port``,
    ``certfile``, ``keyfile`` and ``log_level`` are where and how :func:`vidcls.serve.serve`
    listens. ``config``: cameras to watch in the background (``vidcls live --config``), their
    events kept for the events page. ``events_db``: where the events are kept, a
    ``postgresql://`` URL or an SQLite file (None: the config's ``events_db``, else
    ``data``/events.db). ``ray``: the config's camera groups run as Ray actors on the
    cluster at this address (``""``: a Ray started here; None: processes here). ``data``:
    the folder of the
    events, the teaching page's clips and models, the users and the audit log (None:
    :func:`default_data_folder`, and when that cannot be made the server runs without the
    events and teaching pages). ``auth``: callers sign in (users of ``data_folder``,
    ``vidcls users``); None: on unless ``host`` is loopback; False on another host needs
    ``VIDCLS_NO_AUTH_ON_NETWORK=1`` as well.
    """

    model: list[str] = field(default_factory=lambda: [zoo.DEFAULT_MODEL])
    threads: int = 1
    max_threads: int | None = None
    max_streams: int = MAX_STREAMS
    max_jobs: int = 2
    max_uploads: int = 8
    max_upload_mb: float = 200.0
    upload_timeout: float = 30.0
    idle_timeout: float = 120.0
    header_timeout: float = 5.0
    max_connections: int = 512
    window: float | None = None
    top_k: int = 3
    host: str = "127.0.0.1"
    port: int = 8000
    certfile: str | None = None
    keyfile: str | None = None
    log_level: str = "info"
    config: str | None = None
    data: str | None = None
    events_db: str | None = None
    ray: str | None = None
    auth: bool | None = None
    max_frame_bytes: int = 2 * MB

    def __post_init__(self) -> None:
        if isinstance(self.model, (str, os.PathLike)):
            self.model = [self.model]
        self.model = [os.fspath(m) for m in self.model]
        if not self.model:
            raise VidclsError("no model to serve")
        ints = ("threads", "max_streams", "max_jobs", "max_uploads", "max_connections")
        for name in (*ints, "max_frame_bytes"):
            _positive_int(name, getattr(self, name))
        if self.max_threads is None:
            self.max_threads = max(os.cpu_count() or 1, self.threads)
        _positive_int("max_threads", self.max_threads)
        if self.threads > self.max_threads:
            raise VidclsError(f"threads ({self.threads}) above max_threads ({self.max_threads})")
        _positive_seconds("max_upload_mb", self.max_upload_mb)
        _positive_seconds("idle_timeout", self.idle_timeout)
        _positive_seconds("upload_timeout", self.upload_timeout)
        _positive_seconds("header_timeout", self.header_timeout)
        check_window(self.window)
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 0:
            raise OptionError("top_k", f"must be 0 (all) or more, not {self.top_k!r}")
        if (self.certfile is None) != (self.keyfile is None):
            raise VidclsError("certfile and keyfile go together")
        if self.events_db is not None:
            from ..live.events_db import check_events_db

            check_events_db(self.events_db)
        if self.log_level not in LOG_LEVELS:
            raise OptionError("log_level", f"must be one of {', '.join(LOG_LEVELS)}")
        if self.auth is False and not is_loopback(self.host) and os.environ.get(OPEN) != "1":
            raise VidclsError(
                f"--no-auth on {self.host} lets every device that reaches it watch the clips "
                f"and change the model; to do it anyway, also set {OPEN}=1"
            )

    @property
    def auth_on(self) -> bool:
        """Whether callers must sign in: as asked, else off on loopback and on elsewhere."""
        return self.auth if self.auth is not None else not is_loopback(self.host)

    @property
    def base_url(self) -> str:
        """The server's address as others reach it (its LAN address when it listens on
        every interface), for links in events."""
        scheme = "https" if self.certfile else "http"
        return f"{scheme}://{shown_host(self.host)}:{self.port}"

    @property
    def data_folder(self) -> str:
        """Where the events, the teaching folder, the users and the audit log live."""
        return self.data or default_data_folder()

    @property
    def max_upload_bytes(self) -> int:
        """The largest upload accepted, bytes."""
        return int(self.max_upload_mb * MB)
