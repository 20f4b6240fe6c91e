"""A real PostgreSQL server for the tests, from Debian's package (``apt-get install
postgresql``; .ci/run installs it): a cluster made with initdb in a temporary folder, on a
free loopback port with its socket in that folder, run as an unprivileged user (``postgres``
when the tests run as root, as in CI; PostgreSQL refuses to run as root). One server per test
process, started on first use and stopped when the process ends; each test gets a fresh
database on it."""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

BINARIES = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
USER, PASSWORD = "vidcls", "s3cret-pw"
HANG = "600"  # pg_ctl's wait for a start or stop, seconds: a hang guard, not a measure

needs_postgres = pytest.mark.skipif(
    not BINARIES, reason="no PostgreSQL server (apt-get install postgresql; .ci/run does)"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    """A PostgreSQL cluster of its own; ``url(db)`` reaches database ``db`` over TCP with a
    password (``scram-sha-256``)."""

    def __init__(self) -> None:
        self.bin = Path(BINARIES[-1]).parent  # the newest version installed
        root = os.geteuid() == 0  # then the server runs as another user, who must reach it
        self.folder = Path(tempfile.mkdtemp(prefix="vidcls-pg-", dir="/tmp" if root else None))
        self.data = self.folder / "data"
        self.port = _free_port()
        self.runner: list[str] = []
        if root:  # PostgreSQL will not run as root: as its own user
            user = "postgres" if _exists("postgres") else "nobody"
            shutil.chown(self.folder, user)
            self.runner = ["runuser", "-u", user, "--"]
        password = self.folder / "password"
        password.write_text(PASSWORD + "\n")
        if self.runner:
            shutil.chown(password, self.runner[2])
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            USER,
            f"--pwfile={password}",
            "--auth=scram-sha-256",
            "--no-sync",
            "--no-instructions",
        )
        self.start()

    def _run(self, tool: str, *args: str) -> str:
        out = subprocess.run(
            [*self.runner, str(self.bin / tool), *args],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        if out.returncode != 0:
            raise RuntimeError(f"{tool} failed: {out.stdout}{out.stderr}{self.log()}")
        return out.stdout

    def log(self) -> str:
        file = self.folder / "server.log"
        return file.read_text(errors="replace") if file.exists() else ""

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.folder / "server.log")
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", log, "-o", options, "-w", "-t", HANG, "start"
        )

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", HANG, "stop")

    def url(self, db: str = "postgres", password: str = PASSWORD) -> str:
        return f"postgresql://{USER}:{password}@127.0.0.1:{self.port}/{db}"

    def new_database(self) -> str:
        """A fresh, empty database's URL."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url(), autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def close(self) -> None:
        with contextlib.suppress(RuntimeError):  # already stopped
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def _exists(user: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(user)
        return True
    except KeyError:
        return False


_server: PgServer | None = None


def shared() -> PgServer:
    """This test process's server, started on first use."""
    global _server
    if _server is None:
        pytest.importorskip("psycopg", reason="pip install -e '.[test]' (psycopg)")
        _server = PgServer()
        atexit.register(_server.close)
    return _server
