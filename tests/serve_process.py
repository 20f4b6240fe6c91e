"""A real ``vidcls serve`` process on a free loopback port, for tests.

``ServerProcess(args, env, log)`` runs ``python -m vidcls.serve`` with ``args``. With
``faults=True`` it runs this file instead: the same server, flags and all, with two bugs put
in on purpose, to check how the server answers a bug: classifying an upload whose name starts
with ``bug`` raises RuntimeError, and so does ``GET /test/bug``.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

FAULT = "a fault put in by tests/serve_process.py"


def raw_get(port: int, path: str, timeout: float = 120) -> tuple[int, dict]:
    """A GET of ``path`` exactly as written (percent escapes and all), on loopback at
    ``port``: status and JSON body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.request("GET", path)
    r = conn.getresponse()
    body = json.loads(r.read())
    conn.close()
    return r.status, body


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """``with ServerProcess(args, env, log) as server:`` serves at ``server.url`` until exit.

    ``faults``: serve with the bugs of this module put in; ``max_file_bytes``: the server may
    write no file larger than this (RLIMIT_FSIZE: writes past it fail with EFBIG, as on a
    full disk).
    """

    def __init__(
        self,
        args: list[str],
        env: dict[str, str],
        log: Path,
        *,
        faults: bool = False,
        max_file_bytes: int | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args, self.env, self.log = args, env, log
        self.faults, self.max_file_bytes = faults, max_file_bytes
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> ServerProcess:
        entry = [__file__] if self.faults else ["-m", "vidcls.serve"]
        cmd = [sys.executable, *entry, "--port", str(self.port), *self.args]
        if self.max_file_bytes is not None:  # the child caps its own file size, then serves
            cmd = ["prlimit", f"--fsize={self.max_file_bytes}", *cmd]
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}:\n{self.output()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.__exit__()
        raise RuntimeError(f"server did not come up in 60 s:\n{self.output()}")

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def health(self) -> dict:
        return httpx.get(self.url + "/healthz", timeout=10).json()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def server_env(cache: Path, mirror: Path, **extra: str) -> dict[str, str]:
    """The environment with an isolated model cache, the shared models as the zoo mirror and
    ``extra`` variables (e.g. ``TMPDIR``, where uploads go)."""
    return dict(os.environ, VIDCLS_CACHE=str(cache), VIDCLS_MIRROR=str(mirror), **extra)


def _serve_with_faults(argv: list[str]) -> int:
    """``vidcls serve ARGV`` with this module's bugs put in."""
    from vidcls.cli import main
    from vidcls.serve import api, run

    def classify_file(pool, model_id, threads, path, name, *args: object) -> dict:
        if name.startswith("bug"):
            raise RuntimeError(FAULT)
        return real_classify(pool, model_id, threads, path, name, *args)

    def bug() -> dict:
        raise RuntimeError(FAULT)

    def create_app(options):
        app = make_app(options)
        app.add_api_route("/test/bug", bug)
        return app

    make_app, real_classify = run.create_app, api.classify_file
    api.classify_file, run.create_app = classify_file, create_app
    return main(["serve", *argv])


if __name__ == "__main__":
    sys.exit(_serve_with_faults(sys.argv[1:]))
