"""What a running server holds: its options, the model pool, the load and the worker threads.

One :class:`ServerState` per app, at ``app.state.vidcls``; routes get it with
``Depends(get_state)``.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor

from starlette.requests import HTTPConnection

from .. import __version__
from ..errors import VidclsError
from .access import Caller
from .audit import Audit
from .options import ServeOptions
from .sessions import ModelPool
from .signins import COOKIE, Attempts, SignIns
from .users import Users

log = logging.getLogger("vidcls.serve")


class ServerState:
    """The server's options, models (with the schedulers of their live streams), counters of
    open streams, uploads being received and running file jobs, and the thread pools that
    decode frames and classify files (so the event loop only moves bytes). The counters are
    only touched on the event loop."""

    def __init__(self, options: ServeOptions) -> None:
        self.options = options
        self.auth = options.auth_on
        self.users = Users(options.data_folder)
        if self.auth and len(self.users) == 0:
            raise VidclsError(
                f"sign-in is on and {self.users.file} has no users: add one with "
                f"vidcls users add NAME --role admin --data {options.data_folder}"
            )
        self.signins = SignIns()
        self.attempts = Attempts()
        self.audit = Audit(None)  # in memory until the data folder is known to be usable
        self.pool = ModelPool(
            options.model,
            top_k=options.top_k,
            window=options.window,
            max_threads=options.max_threads,
        )
        for entry in self.pool.entries():  # a bad model fails here, not at the first request
            if entry.kind == "file" or entry.id == self.pool.default:
                self.pool.get(entry.id, options.threads)
        self.streams = 0
        self.uploads = 0
        self.jobs = 0
        self.frame_pool = ThreadPoolExecutor(
            max_workers=min(options.max_streams, 2 * (os.cpu_count() or 1) + 2),
            thread_name_prefix="vidcls-frames",
        )
        self.job_pool = ThreadPoolExecutor(
            max_workers=options.max_jobs, thread_name_prefix="vidcls-jobs"
        )
        self.store, self.cameras = None, None  # the events database, the config's cameras
        self.copies = None  # browser copies of clips (with a clips folder)
        if options.config is not None:
            from ..config import load_config
            from ..live.cameras import Cameras
            from ..live.events_db import open_events_db

            config = load_config(options.config)
            where = options.events_db or config.file.events_db
            self.store = open_events_db(where, options.data_folder)
            self.cameras = Cameras(config, self.store, options.base_url, options.ray)
            self.cameras.start()
            if self.cameras.media is not None:
                from .copies import Copies

                self.copies = Copies()  # browser copies of the clips browsers cannot play
        else:  # the events kept before, and teaching: in the data folder, given or not
            self.store = self._event_store()
        self.teacher = None  # the teaching page's folder, with a usable data folder
        if self.store is not None:
            self._start_teacher()
        if self.auth or self.teacher is not None:
            self.audit = Audit(options.data_folder)

    def _event_store(self):
        """The events database (--events-db, else the data folder's); None, with a warning,
        when the default folder cannot hold it (the events and teaching pages are then off); a
        VidclsError when the folder or the database was given (--data, --events-db)."""
        from ..live.events_db import open_events_db

        try:
            return open_events_db(self.options.events_db, self.options.data_folder)
        except VidclsError as e:
            if self.options.data is not None or self.options.events_db is not None:
                raise
            log.warning("%s: no events or teaching pages (give a folder: --data DIR)", e)
            return None

    def _start_teacher(self) -> None:
        """The teaching folder in the data folder; the model deployed there before a restart
        runs again."""
        from .teacher import Teacher

        base = self.pool.entry(self.pool.default).spec
        if self.cameras is not None:
            base = str(self.cameras.config.file.model)
        folder = os.path.join(self.options.data_folder, "teach")
        try:
            self.teacher = Teacher(folder, base, self.deploy)
        except OSError as e:
            problem = VidclsError(f"cannot make the teaching folder ({e.strerror})", folder)
            if self.options.data is not None or self.cameras is not None:
                raise problem from None
            log.warning("%s: no teaching page (give a folder: --data DIR)", problem)
            return
        current = self.teacher.deployed()["current"]
        if current is not None:
            try:
                self.deploy(current)
            except VidclsError as e:
                log.error("cannot run the model deployed before (%s); running %s", e, base)

    def deploy(self, model: str) -> None:
        """Run ``model`` on the config's cameras from their next frame, and offer it to the
        pages as the default; VidclsError, nothing changed, when it cannot."""
        if self.cameras is not None:
            self.cameras.switch_model(model)
        self.pool.offer(model)

    def identify(self, headers: dict[str, str]) -> Caller | None:
        """The caller a request's bearer token or session cookie names, or None."""
        from .access import cookie_value

        try:
            scheme, _, token = headers.get("authorization", "").partition(" ")
            if scheme.lower() == "bearer" and token:
                user = self.users.check_token(token.strip())
                return None if user is None else Caller(user.name, user.role)
            session = self.signins.find(cookie_value(headers, COOKIE))
            if session is None:
                return None
            user = self.users.get(session.name)
        except VidclsError as e:
            log.error("nobody can sign in: %s", e)
            return None
        if user is None or user.epoch != session.epoch:
            return None  # removed, or a new password or role since this sign-in
        return Caller(user.name, user.role)

    def health(self) -> dict:
        """The ``/healthz`` document."""
        o = self.options
        return {
            "status": "ok",
            "version": __version__,
            "streams": self.streams,
            "max_streams": o.max_streams,
            "skipped": self.pool.skipped,
            "uploads": self.uploads,
            "max_uploads": o.max_uploads,
            "jobs": self.jobs,
            "max_jobs": o.max_jobs,
            "cameras": None if self.cameras is None else self.cameras.state,
            "failed_cameras": None if self.cameras is None else self.cameras.failed,
        }

    def models(self) -> dict:
        """The ``/v1/models`` document."""
        o = self.options
        return {
            "default": self.pool.default,
            "models": self.pool.describe(),
            "threads": {"default": o.threads, "max": o.max_threads},
            "live": {"top_k": o.top_k, "window": o.window},
            "limits": {
                "max_upload_bytes": o.max_upload_bytes,
                "max_uploads": o.max_uploads,
                "upload_timeout": o.upload_timeout,
                "max_streams": o.max_streams,
                "max_jobs": o.max_jobs,
                "max_frame_bytes": o.max_frame_bytes,
            },
        }

    def close(self) -> None:
        """Stop the worker threads (work under way is not waited for, but for the frame each
        live-stream worker is on)."""
        if self.copies is not None:
            self.copies.close()
        if self.cameras is not None:
            self.cameras.close()
        elif self.store is not None:
            self.store.close()
        self.pool.close()
        self.frame_pool.shutdown(wait=False, cancel_futures=True)
        self.job_pool.shutdown(wait=False, cancel_futures=True)


def get_state(connection: HTTPConnection) -> ServerState:
    """The app's state (a FastAPI dependency, for HTTP routes and WebSockets alike)."""
    return connection.app.state.vidcls
