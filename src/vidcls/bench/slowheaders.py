"""``vidcls bench --slow-headers``: slow-header clients against ``vidcls serve``'s protocol and
plain uvicorn, in the same run.

Each server is a real process on a free loopback port. N sockets each send one byte of a
request head every ``every`` seconds (a head that never ends); meanwhile a normal client asks
``GET /healthz`` on a fresh connection every 0.2 s. It prints how many sockets the server
closed, open to close (p50, max), and the normal client's latency (p50, p99, max) and failures
(no answer in 10 s, or not 200).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from .ws import BenchServer

HEAD = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 4000
CLIENT_EVERY = 0.2
CLIENT_TIMEOUT = 10.0
SERVERS = ("vidcls", "h11", "httptools")


@dataclass
class SlowRun:
    """One server under N slow-header sockets for ``seconds``."""

    server: str
    sockets: int
    refused: int = 0  # connections that failed to open
    closed_s: list[float] = field(default_factory=list)  # open to closed by the server
    latency_ms: list[float] = field(default_factory=list)  # normal client, answered 200
    failures: int = 0  # normal client: error, timeout or not 200

    def row(self) -> str:
        close = np.array(self.closed_s or [np.nan])
        lat = np.array(self.latency_ms or [np.nan])
        requests = len(self.latency_ms) + self.failures
        return (
            f"{self.server:<9} {len(self.closed_s):>4}/{self.sockets:<4} {self.refused:>7} "
            f"{_s(np.percentile(close, 50)):>8} {_s(close.max()):>8} {requests:>8} "
            f"{np.percentile(lat, 50):>7.1f} {np.percentile(lat, 99):>7.1f} {lat.max():>7.1f} "
            f"{self.failures:>8}"
        )


def _s(seconds: float) -> str:
    return "-" if np.isnan(seconds) else f"{seconds:.1f}"


HEADER = (
    f"{'server':<9} {'closed':>9} {'refused':>7} {'p50 s':>8} {'max s':>8} {'requests':>8} "
    f"{'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'failures':>8}"
)


async def slow_socket(port: int, every: float, until: float, run: SlowRun) -> None:
    """One byte of ``HEAD`` every ``every`` s until the server closes it or ``until``."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        run.refused += 1
        return
    opened = time.monotonic()
    closed = asyncio.ensure_future(reader.read(1))  # b"" (or an error) when the server closes
    try:
        for i in range(len(HEAD)):
            writer.write(HEAD[i : i + 1])
            left = until - time.monotonic()
            done, _ = await asyncio.wait({closed}, timeout=max(0.0, min(every, left)))
            if done or time.monotonic() >= until:
                break
    except OSError:
        pass
    if closed.done() or writer.is_closing():
        run.closed_s.append(time.monotonic() - opened)
    else:
        closed.cancel()
    writer.close()


async def normal_client(port: int, until: float, run: SlowRun) -> None:
    """``GET /healthz`` on a fresh connection every CLIENT_EVERY s until ``until``."""
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    while time.monotonic() < until:
        start = time.monotonic()
        try:
            async with asyncio.timeout(CLIENT_TIMEOUT):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(request)
                answer = await reader.read()
                writer.close()
            ok = answer.startswith(b"HTTP/1.1 200")
        except (OSError, TimeoutError):
            ok = False
        if ok:
            run.latency_ms.append(1e3 * (time.monotonic() - start))
        else:
            run.failures += 1
        await asyncio.sleep(max(0.0, start + CLIENT_EVERY - time.monotonic()))


async def attack(port: int, server: str, sockets: int, every: float, seconds: float) -> SlowRun:
    """N slow sockets and the normal client for ``seconds``."""
    run = SlowRun(server, sockets)
    until = time.monotonic() + seconds
    slow = [slow_socket(port, every, until, run) for _ in range(sockets)]
    await asyncio.gather(normal_client(port, until, run), *slow)
    return run


def plain_server(model: str, port: int, http: str) -> None:
    """``vidcls serve`` on plain uvicorn with its ``http`` protocol (run in the child)."""
    from ..serve.options import ServeOptions
    from ..serve.run import serve

    serve(ServeOptions(model=[model], port=port, log_level="warning"), plain=http)


def run_slow_headers(
    model: str,
    sockets: int = 300,
    every: float = 5.0,
    seconds: float = 20.0,
    servers: list[str] | None = None,
) -> list[SlowRun]:
    """Measure each server in ``servers`` (default: vidcls, h11, and httptools if installed),
    print a row each, and return the runs."""
    if servers is None:
        have = importlib.util.find_spec("httptools") is not None
        servers = [s for s in SERVERS if s != "httptools" or have]
    print(
        f"{sockets} sockets sending one header byte every {every:g} s for {seconds:g} s; a "
        f"client GET /healthz every {CLIENT_EVERY:g} s (fresh connection, fails: no 200 in "
        f"{CLIENT_TIMEOUT:g} s); {os.cpu_count() or 1} cores, clients in this process"
    )
    print(
        "vidcls: `vidcls serve` defaults (header_timeout 5 s, max_connections 512); others: "
        "plain uvicorn with that protocol"
    )
    print("closed: by the server within the run (p50, max: seconds from open to close)")
    print(HEADER, flush=True)
    runs = []
    for name in servers:
        server = BenchServer(model)
        if name != "vidcls":
            call = f"plain_server({model!r}, {server.port}, {name!r})"
            code = f"from vidcls.bench.slowheaders import plain_server; {call}"
            server.args = [sys.executable, "-c", code]
        with server:
            run = asyncio.run(attack(server.port, name, sockets, every, seconds))
        print(run.row(), flush=True)
        runs.append(run)
    return runs
