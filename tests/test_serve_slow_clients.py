"""Clients that send request headers slowly, and the bound on open connections, against a
real ``vidcls serve`` process (``--header-timeout``, ``--max-connections``).

Outcomes are counted; every wait is a hang guard, never a speed bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import MODELS, needs_shared
from serve_process import ServerProcess, server_env

from vidcls import VidclsError
from vidcls.cli import build_parser
from vidcls.cli.serve import serve_options
from vidcls.serve import ServeOptions

websockets = pytest.importorskip("websockets")
pytest.importorskip("fastapi")
from websockets.asyncio.client import connect  # noqa: E402

HEADER_TIMEOUT = 2
SLOW_SOCKETS = 300
BYTE_EVERY = 5.0  # a slow socket's pace: one header byte this often
HANG_GUARD = 60.0
BOUND = 20
HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


def serve(tmp_path_factory, name: str, *flags: str) -> ServerProcess:
    tmp = tmp_path_factory.mktemp(name)
    args = ["--model", "a0", "--log-level", "warning", *flags]
    return ServerProcess(args, server_env(tmp / "cache", MODELS), tmp / "server.log")


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """Two servers started side by side: ``slow`` (header timeout) and ``bounded`` (and
    BOUND connections at most)."""
    timeout = ["--header-timeout", str(HEADER_TIMEOUT)]
    bound = ["--max-connections", str(BOUND), "--max-streams", str(BOUND)]
    procs = {
        "slow": serve(tmp_path_factory, "slow", *timeout),
        "bounded": serve(tmp_path_factory, "bounded", *timeout, *bound),
    }
    with contextlib.ExitStack() as stack:
        for proc in procs.values():
            stack.callback(proc.__exit__)
        with ThreadPoolExecutor(len(procs)) as pool:
            list(pool.map(ServerProcess.__enter__, procs.values()))
        yield procs
    for proc in procs.values():
        assert "Traceback" not in proc.output(), proc.output()


@pytest.fixture
def server(servers):
    return servers["slow"]


@pytest.fixture
def bounded(servers):
    return servers["bounded"]


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    """Wait (hang guard) for the server to end the connection: True on EOF or reset, False if
    it answered something instead."""
    try:
        async with asyncio.timeout(HANG_GUARD):
            return await reader.read(1) == b""
    except ConnectionError:  # reset
        return True


async def slow_socket(port: int, open_now: list[int]) -> bool:
    """A client sending one byte of a request head every BYTE_EVERY s; True once the server
    closes it. ``open_now[0]``: such sockets open at the moment."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    open_now[0] += 1
    head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100
    closed = asyncio.ensure_future(closed_by_server(reader))
    try:
        for i in range(len(head)):
            writer.write(head[i : i + 1])
            done, _ = await asyncio.wait({closed}, timeout=BYTE_EVERY)
            if done:
                break
    except OSError:  # the write saw the close first
        pass
    writer.close()
    try:
        return await closed
    finally:
        open_now[0] -= 1


async def get_healthz(port: int) -> bytes:
    """``GET /healthz`` on a fresh connection: the whole answer (b"" when closed unanswered)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        async with asyncio.timeout(HANG_GUARD):
            writer.write(HEALTHZ)
            return await reader.read()
    except ConnectionError:  # reset
        return b""
    finally:
        writer.close()


@needs_shared
def test_slow_header_sockets_are_closed_while_a_normal_client_is_answered(server):
    async def attack() -> tuple[list[bool], list[bytes], list[int]]:
        open_now = [0]
        slow = [slow_socket(server.port, open_now) for _ in range(SLOW_SOCKETS)]
        slow = [asyncio.ensure_future(s) for s in slow]
        answers, beside = [], []  # each answer, and how many slow sockets were open when asked
        while not all(s.done() for s in slow):
            beside.append(open_now[0])
            answers.append(await get_healthz(server.port))
            await asyncio.sleep(0.1)
        return await asyncio.gather(*slow), answers, beside

    closed, answers, beside = asyncio.run(attack())
    assert closed == [True] * SLOW_SOCKETS  # each ended by the server, none answered
    assert max(beside) >= SLOW_SOCKETS // 2  # asked while many slow sockets were open
    assert [a.split(b"\r\n", 1)[0] for a in answers] == [b"HTTP/1.1 200 OK"] * len(answers)
    assert server.health()["status"] == "ok"


@needs_shared
def test_keep_alive_connection_owes_its_next_head_within_the_timeout(server):
    async def run() -> tuple[bytes, bool]:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        body = await reader.readexactly(length)
        writer.write(b"GET /heal")  # half a head on the same connection, never finished
        closed = await closed_by_server(reader)
        writer.close()
        return head + body, closed

    answer, closed = asyncio.run(run())
    assert answer.startswith(b"HTTP/1.1 200 OK") and json.loads(answer.split(b"\r\n\r\n")[1])
    assert closed


@needs_shared
def test_connections_past_the_bound_are_closed_unread_until_some_end(bounded):
    port = bounded.port
    url = bounded.url.replace("http://", "ws://") + "/v1/stream"

    async def held_by_streams() -> tuple[list[str], bool, bytes, list[float], bytes]:
        # BOUND WebSocket streams hold every slot and have no header deadline: the refusal
        # below depends on no timing.
        streams = [await connect(url) for _ in range(BOUND)]
        ready = [json.loads(await ws.recv())["type"] for ws in streams]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(HEALTHZ)  # a whole request, never read
        refused = await closed_by_server(reader)
        writer.close()
        turned_away = await get_healthz(port)
        await asyncio.sleep(HEADER_TIMEOUT + 1)  # past the deadline a request head has
        async with asyncio.timeout(HANG_GUARD):
            pongs = [await (await ws.ping()) for ws in streams]
        for ws in streams:
            await ws.close()
        return ready, refused, turned_away, pongs, await answered_soon(port)

    ready, refused, turned_away, pongs, after = asyncio.run(held_by_streams())
    assert ready == ["ready"] * BOUND
    assert refused and turned_away == b""  # closed with no answer
    assert len(pongs) == BOUND  # the streams outlive the header timeout
    assert after.startswith(b"HTTP/1.1 200 OK")

    async def held_by_half_heads() -> tuple[list[bool], bytes]:
        socks = [await asyncio.open_connection("127.0.0.1", port) for _ in range(BOUND)]
        for _, writer in socks:
            writer.write(b"GET /healthz HT")
        closed = await asyncio.gather(*(closed_by_server(r) for r, _ in socks))
        for _, writer in socks:
            writer.close()
        return closed, await get_healthz(port)  # every slot freed before its socket closed

    closed, answer = asyncio.run(held_by_half_heads())
    assert closed == [True] * BOUND
    assert answer.startswith(b"HTTP/1.1 200 OK")


async def answered_soon(port: int) -> bytes:
    """``GET /healthz`` until answered (the server frees a slot once it sees a close)."""
    async with asyncio.timeout(HANG_GUARD):
        while not (answer := await get_healthz(port)):
            await asyncio.sleep(0.05)
    return answer


def test_header_timeout_and_max_connections_are_checked_flags():
    args = build_parser().parse_args(["serve", "--header-timeout", "1.5", "--max-connections", "9"])
    options = serve_options(args)
    assert (options.header_timeout, options.max_connections) == (1.5, 9)
    defaults = ServeOptions()
    assert (defaults.header_timeout, defaults.max_connections) == (5.0, 512)
    for kwargs in ({"header_timeout": 0}, {"header_timeout": float("nan")}):
        with pytest.raises(VidclsError, match="header_timeout"):
            ServeOptions(**kwargs)
    for bad in (0, 2.5, True):
        with pytest.raises(VidclsError, match="max_connections"):
            ServeOptions(max_connections=bad)
