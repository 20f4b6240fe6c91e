"""Uploads to a real server process on loopback, under stress: bad and undecodable files,
the upload and job caps, stalled and concurrent clients, a full disk, and bugs.

Every answer must be JSON, and after it the keep-alive connection must still work (a 408 to
a silent client excepted); temporary files must be gone once an upload is answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import av
import httpx
import numpy as np
import pytest
from conftest import MODELS, needs_shared, video
from serve_process import FAULT, ServerProcess, server_env

pytest.importorskip("fastapi")
pytestmark = needs_shared
CLIP = "carving_ice_rpi.mp4"
SUMMARY = {"summary_only": "true"}
HANG = 120.0  # seconds: only a server that never answers makes a test wait this long


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("uploads-server")
    uploads = tmp / "uploads"  # the server's TMPDIR: where uploads are written
    uploads.mkdir()
    args = ["--max-upload-mb", "1", "--max-jobs", "2", "--log-level", "warning"]
    env = server_env(tmp / "cache", MODELS, TMPDIR=str(uploads))
    with ServerProcess(args, env, tmp / "server.log") as s:
        s.uploads = uploads
        yield s
    assert "Traceback" not in s.output(), s.output()


def settled(server, uploads: Path) -> dict:
    """/healthz once no upload or job is counted (a hang guard of HANG s); no temporary file
    is left."""
    deadline = time.monotonic() + HANG
    while True:
        health = server.health()
        if health["uploads"] == health["jobs"] == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert health["status"] == "ok" and health["uploads"] == health["jobs"] == 0, health
    assert list(uploads.glob("vidcls-upload-*")) == []
    return health


def connection(response: httpx.Response) -> tuple:
    """The client end of the connection that carried ``response`` (same: kept alive)."""
    return response.extensions["network_stream"].get_extra_info("client_addr")


def test_oversized_uploads_get_413(server):
    rng = np.random.default_rng(0)
    post = server.url + "/v1/classify"
    # Just over the limit: found while the form streams. Far over: refused on Content-Length.
    for size in (int(1.5 * (1 << 20)), 24 << 20):
        r = httpx.post(post, files={"file": ("big.mp4", rng.bytes(size))}, timeout=30)
        assert r.status_code == 413 and "limit of 1 MB" in r.json()["detail"], size

    def chunks():  # no Content-Length: the limit is enforced while the body streams
        for _ in range(128):
            yield rng.bytes(1 << 16)

    headers = {"content-type": "application/octet-stream"}
    r = httpx.post(post, content=chunks(), headers=headers, timeout=30)
    assert r.status_code == 413, r.text
    settled(server, server.uploads)


def test_garbage_and_bad_requests_get_json_errors_and_the_server_stays_up(server):
    post = server.url + "/v1/classify"
    garbage = np.random.default_rng(1).bytes(50_000)
    r = httpx.post(post, files={"file": ("clip.mp4", garbage)}, timeout=30)
    assert r.status_code == 422 and r.json()["detail"].startswith("clip.mp4: ")
    r = httpx.post(post, files={"file": ("notes.txt", b"just some text\n" * 100)}, timeout=30)
    assert r.status_code == 422 and r.json()["detail"].startswith("notes.txt: ")
    cases = [
        ({"data": {"x": "1"}, "files": {"y": ("", b"")}}, 400, "no file"),
        ({"content": b"", "headers": {"content-type": "video/mp4"}}, 400, "empty"),
        (
            {"files": {"file": ("a.mp4", b"x")}, "params": {"model": "../../etc/passwd"}},
            400,
            "model",
        ),
        ({"files": {"file": ("a.mp4", b"x")}, "params": {"fps": "fast"}}, 400, "fps"),
        ({"files": {"file": ("a.mp4", b"x")}, "params": {"top_k": "-1"}}, 422, "top_k"),
        (  # a page from another site may not make the visitor's browser upload here
            {"files": {"file": ("a.mp4", b"x")}, "headers": {"origin": "http://elsewhere.example"}},
            403,
            "cross-origin",
        ),
        (
            {"content": b"--x\r\nbroken", "headers": {"content-type": "multipart/form-data"}},
            400,
            "",
        ),
    ]
    for kwargs, status, word in cases:
        r = httpx.post(post, timeout=30, **kwargs)
        assert r.status_code == status, (kwargs, r.text)
        assert word in json.dumps(r.json()["detail"]), r.text
    assert server.alive()
    clip = video(CLIP).read_bytes()
    r = httpx.post(  # as the file page sends it: same origin
        post, params=SUMMARY, files={"file": (CLIP, clip)}, headers={"origin": server.url}
    )
    assert r.status_code == 200, r.text
    settled(server, server.uploads)


def test_undecodable_uploads_get_422_on_a_connection_that_stays_usable(server):
    clip = video(CLIP).read_bytes()
    avi = video("eye_makeup.avi").read_bytes()
    bad = [
        ("zzzz.mp4", clip.replace(b"avc1", b"zzzz"), "codec"),  # an unknown codec tag
        ("cut.avi", avi[: len(avi) * 6 // 10], "truncated"),  # an AVI cut at 60 %
    ]
    with httpx.Client(base_url=server.url, timeout=60) as client:
        used = set()
        for name, data, word in bad:
            r = client.post("/v1/classify", files={"file": (name, data)})
            assert r.status_code == 422, r.text
            detail = r.json()["detail"]
            assert detail.startswith(f"{name}: ") and word in detail, detail
            used.add(connection(r))
        r = client.post("/v1/classify", params=SUMMARY, files={"file": (CLIP, clip)})
        assert r.status_code == 200, r.text
        assert r.json()["summary"]["top"][0]["label"] == "carving ice"
        used.add(connection(r))
    assert len(used) == 1  # all three on one keep-alive connection
    settled(server, server.uploads)


def long_clip(path: Path, seconds: int = 8, fps: int = 30, size: int = 96) -> Path:
    """A small H.264 clip (a moving gradient) that takes seconds to classify frame by frame."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast"})
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        ramp = np.linspace(0, 255, size, dtype=np.float32)
        for i in range(seconds * fps):
            rgb = np.broadcast_to((ramp[None, :, None] + 4 * i) % 256, (size, size, 3))
            frame = av.VideoFrame.from_ndarray(rgb.astype(np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def test_file_jobs_past_the_cap_are_refused(server, tmp_path):
    slow = long_clip(tmp_path / "long.mp4").read_bytes()
    native = {"fps": "native", **SUMMARY}  # every frame: 240 model steps, a few seconds

    async def main():
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            running = [
                asyncio.create_task(
                    client.post("/v1/classify", params=native, files={"file": ("a.mp4", slow)})
                )
                for _ in range(2)
            ]
            for _ in range(300):
                health = (await client.get("/healthz")).json()
                if health["jobs"] == 2:
                    break
                await asyncio.sleep(0.02)
            headers = {"content-type": "application/octet-stream"}
            third = await client.post("/v1/classify", content=b"x", headers=headers)
            return health, third, await asyncio.gather(*running)

    health, third, done = asyncio.run(main())
    assert health["jobs"] == 2 and health["uploads"] == 0, health
    assert third.status_code == 503, third.text
    assert third.json()["detail"].startswith("busy: 2 files are being classified")
    assert third.headers["retry-after"]
    assert [r.status_code for r in done] == [200, 200], [r.text for r in done]
    settled(server, server.uploads)


def test_fifty_concurrent_uploads_get_200_or_503_and_the_server_stays_healthy(server):
    clip = video(CLIP).read_bytes()

    async def main():
        limits = httpx.Limits(max_connections=50)
        async with httpx.AsyncClient(base_url=server.url, timeout=120, limits=limits) as client:

            async def upload() -> httpx.Response:
                return await client.post(
                    "/v1/classify", params=SUMMARY, files={"file": (CLIP, clip)}
                )

            return await asyncio.gather(*(upload() for _ in range(50)), return_exceptions=True)

    started = time.monotonic()
    answers = asyncio.run(main())
    elapsed = time.monotonic() - started
    failed = [a for a in answers if isinstance(a, BaseException)]
    assert not failed, failed  # no reset connection, no timeout
    statuses = Counter(a.status_code for a in answers)
    print(f"50 concurrent uploads: {dict(statuses)} in {elapsed:.1f} s")
    assert set(statuses) <= {200, 503} and statuses[200] >= 2, statuses
    for a in answers:
        if a.status_code == 200:
            assert a.json()["summary"]["top"][0]["label"] == "carving ice"
        else:
            assert a.json()["detail"].startswith("busy: ") and a.headers["retry-after"]
    assert server.alive()
    settled(server, server.uploads)
    r = httpx.post(server.url + "/v1/classify", params=SUMMARY, files={"file": (CLIP, clip)})
    assert r.status_code == 200, r.text


# -- stalled clients and a full disk: a server of their own ------------------------------


def stalled_upload(url: str, form: bool) -> socket.socket:
    """A client that sends the headers and 1000 bytes of a 100 kB upload, then nothing
    (``sock.stalled_at``: when it sent its last byte)."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=HANG)
    if form:
        kind = "multipart/form-data; boundary=XyZ"
        start = b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n\r\n'
    else:
        kind, start = "video/mp4", b""
    head = f"POST /v1/classify HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {kind}\r\n"
    head += "Content-Length: 100000\r\n\r\n"
    sock.sendall(head.encode() + start + b"\x00" * 1000)
    return Stalled(sock, time.monotonic())


@dataclass
class Stalled:
    sock: socket.socket
    at: float  # when it sent its last byte


@contextlib.contextmanager
def trickling(uploads: list[Stalled], every: float = 0.25):
    """The uploads send one more byte every ``every`` seconds (well inside the server's 1.5 s
    upload timeout) until the block ends, so they stay in progress however long the test's
    own steps take; then they stall from their last byte."""
    stop = threading.Event()

    def trickle() -> None:
        while not stop.wait(every):
            for one in uploads:
                one.sock.sendall(b"\x00")
                one.at = time.monotonic()

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def reply(stalled: Stalled) -> tuple[str, dict[str, str], dict, float]:
    """The status line, headers and JSON body a stalled client receives, read to the close,
    and how long after its last byte the server ended it."""
    data = b""
    while chunk := stalled.sock.recv(65536):
        data += chunk
    after = time.monotonic() - stalled.at
    stalled.sock.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines)
    return status, headers, json.loads(body), after


def wait_for(server, key: str, value: int) -> None:
    deadline = time.monotonic() + HANG
    while server.health()[key] != value:
        assert time.monotonic() < deadline, f"{key} never reached {value}: {server.health()}"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def harsh(tmp_path_factory):
    """A server with short upload timeouts and 3 uploads at most, that may write no file over
    5 MB (as if the disk filled up there; the model is 3.2 MB) and has bugs put in
    (serve_process.py: uploads named bug*, GET /test/bug)."""
    tmp = tmp_path_factory.mktemp("harsh-server")
    uploads = tmp / "uploads"
    uploads.mkdir()
    args = ["--max-jobs", "2", "--max-uploads", "3", "--upload-timeout", "1.5"]
    args += ["--max-upload-mb", "20", "--log-level", "warning"]
    env = server_env(tmp / "cache", MODELS, TMPDIR=str(uploads))
    log = tmp / "server.log"
    with ServerProcess(args, env, log, faults=True, max_file_bytes=5 << 20) as s:
        s.uploads = uploads
        yield s


def test_stalled_uploads_hold_no_job_slot_and_are_dropped(harsh):
    clip = video(CLIP).read_bytes()
    stalled = [stalled_upload(harsh.url, form) for form in (False, True)]
    wait_for(harsh, "uploads", 2)
    assert harsh.health()["jobs"] == 0
    with httpx.Client(base_url=harsh.url, timeout=60) as client:
        # Two stalled uploads held both job slots before: this got 503 "busy".
        r = client.post("/v1/classify", params=SUMMARY, files={"file": (CLIP, clip)})
        assert r.status_code == 200, r.text
        assert r.json()["summary"]["top"][0]["label"] == "carving ice"
        answers = [reply(one) for one in stalled]
        # Three uploads in progress (kept so by a byte now and then): a fourth is refused.
        slow = [stalled_upload(harsh.url, form) for form in (False, True, False)]
        with trickling(slow):
            wait_for(harsh, "uploads", 3)
            r = client.post("/v1/classify", params=SUMMARY, files={"file": (CLIP, clip)})
            assert r.status_code == 503 and r.headers["retry-after"], r.text
            assert r.json()["detail"] == "busy: 3 uploads are in progress; try again shortly"
        answers += [reply(one) for one in slow]
    for status, headers, body, after in answers:
        assert after >= 1.5, after  # its 1.5 s without data, never less (a slow machine: more)
        assert status == "HTTP/1.1 408 Request Timeout", status
        assert headers["connection"] == "close"
        assert body == {"detail": "no data received for 1.5 s; upload abandoned"}
    settled(harsh, harsh.uploads)
    assert "Traceback" not in harsh.output(), harsh.output()


def test_a_full_disk_gets_503_on_a_connection_that_stays_usable(harsh):
    big = np.random.default_rng(2).bytes(8 << 20)  # the server fails to write it past 5 MB
    with httpx.Client(base_url=harsh.url, timeout=60) as client:
        r = client.post("/v1/classify", files={"file": ("big.mp4", big)})
        assert r.status_code == 503 and r.headers["retry-after"], r.text
        assert r.json()["detail"] == "the server cannot store the upload now (File too large)"
        kept = connection(r)
        clip = video(CLIP).read_bytes()
        r = client.post("/v1/classify", params=SUMMARY, files={"file": (CLIP, clip)})
        assert r.status_code == 200 and connection(r) == kept, r.text
    settled(harsh, harsh.uploads)
    assert "Traceback" not in harsh.output(), harsh.output()


def test_a_bug_gets_a_json_500_on_a_connection_that_stays_usable(harsh):
    clip = video(CLIP).read_bytes()
    with httpx.Client(base_url=harsh.url, timeout=60) as client:
        r = client.post("/v1/classify", files={"file": ("bug.mp4", clip)})  # the job raises
        assert r.status_code == 500, r.text
        assert r.json() == {"detail": "bug.mp4: internal error (RuntimeError)"}
        used = {connection(r)}
        r = client.get("/test/bug")  # the route raises
        assert r.status_code == 500 and r.json() == {"detail": "internal error (RuntimeError)"}
        used.add(connection(r))
        r = client.post("/v1/classify", params=SUMMARY, files={"file": (CLIP, clip)})
        assert r.status_code == 200, r.text
        used.add(connection(r))
    assert len(used) == 1  # before: each 500 closed the keep-alive connection
    settled(harsh, harsh.uploads)
    out = harsh.output()
    assert out.count(FAULT) >= 2 and "Exception in ASGI application" not in out, out
