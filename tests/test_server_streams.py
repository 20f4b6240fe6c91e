"""Live browser streams on the server's shared scheduler: real clients, a real server.

Each frame gets exactly one reply, in order (a result, or ``skipped`` when a newer frame took
its place); clients at the model's rate get every result; a client sending far faster gets
``skipped`` replies, not a backlog; control messages stay in order with the frames.
"""

from __future__ import annotations

import asyncio
import json
import time

import cv2
import httpx
import numpy as np
import pytest
from conftest import MODELS, needs_shared, video
from serve_process import ServerProcess, server_env

pytest.importorskip("websockets")
pytest.importorskip("fastapi")
from websockets.asyncio.client import connect  # noqa: E402

from vidcls.bench.ws import browser_client  # noqa: E402
from vidcls.media import read_frames  # noqa: E402

pytestmark = needs_shared
HANG = 120.0  # seconds: only a reply that never comes waits this long


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("streams")
    args = ["--log-level", "warning"]
    with ServerProcess(args, server_env(tmp / "cache", MODELS), tmp / "server.log") as s:
        yield s
    assert "Traceback" not in s.output(), s.output()


@pytest.fixture(scope="module")
def frames() -> list[bytes]:
    """JPEG frames of a real clip, frame k ``200 + 2k`` pixels wide: a result's ``size``
    says which frame it answers."""
    rgb = read_frames(video("carving_ice_android.mp4"), fps=5, short_side=180)[:30]
    out = []
    for k, image in enumerate(rgb):
        bgr = cv2.cvtColor(cv2.resize(image, (200 + 2 * k, 180)), cv2.COLOR_RGB2BGR)
        out.append(cv2.imencode(".jpg", bgr)[1].tobytes())
    return out


def width(k: int) -> int:
    return 200 + 2 * k


def ws_url(server) -> str:
    return server.url.replace("http://", "ws://") + "/v1/stream"


def test_clients_at_the_model_rate_get_every_frame_answered_in_order(server, frames):
    """Six pages at 5 fps with timer jitter, each sending a frame once the one before is
    answered: one reply per frame, in order, and every frame classified, however busy the
    machine (a busy one makes the pages send fewer frames, never lose one). A page keeping
    two frames in flight gets every one classified too when the server keeps up (the
    scheduler locking on to its phase: tests/test_live_scheduler.py checks it on a virtual
    clock); how soon is the machine's speed: `vidcls bench --ws` measures it, this prints it."""

    async def main():
        clients = [
            browser_client(
                ws_url(server),
                frames[i:] + frames[:i],
                3.0,
                in_flight=1,
                jitter=0.04,
                seed=i,
                drain=HANG,
            )  # fmt: skip
            for i in range(6)
        ]
        return await asyncio.gather(*clients)

    runs = asyncio.run(main())
    rtts = []
    for i, (ready, sent) in enumerate(runs):
        assert ready["fps"] == 5 and sent, i
        assert all(s.answered is not None for s in sent), i  # every frame: one reply
        assert [s.reply["type"] for s in sent] == ["result"] * len(sent), i  # none skipped
        for s in sent:  # in order: each result is its own frame's
            assert s.reply["size"] == [width((s.index + i) % len(frames)), 180], (i, s)
        assert [s.reply["frames"] for s in sent] == list(range(1, len(sent) + 1))
        rtts += [s.rtt_ms for s in sent]
    p50, p99 = np.percentile(rtts, [50, 99])
    print(f"round trips: p50 {p50:.0f} ms, p99 {p99:.0f} ms")


def test_a_client_sending_too_fast_gets_skips_not_a_backlog_and_reset_stays_in_order(
    server, frames
):
    async def main():
        async with connect(ws_url(server)) as ws:
            assert json.loads(await ws.recv())["type"] == "ready"
            t0 = time.monotonic()
            for data in frames:  # 30 frames at once: far past 5 per second
                await ws.send(data)
            sent_last = time.monotonic()
            await ws.send(json.dumps({"type": "reset"}))
            await ws.send(frames[0])
            replies, times = [], []
            for _ in range(len(frames) + 2):
                replies.append(json.loads(await asyncio.wait_for(ws.recv(), HANG)))
                times.append(time.monotonic())
        return t0, sent_last, replies, times

    t0, sent_last, replies, times = asyncio.run(main())
    burst, reset, after = replies[: len(frames)], replies[-2], replies[-1]
    kinds = [r["type"] for r in burst]
    assert set(kinds) <= {"result", "skipped"}, kinds
    results = [(k, r) for k, r in enumerate(burst) if r["type"] == "result"]
    assert [r["size"][0] for _, r in results] == [width(k) for k, _ in results]  # in order
    assert [r["frames"] for _, r in results] == list(range(1, len(results) + 1))
    skipped = [r for r in burst if r["type"] == "skipped"]
    assert skipped and skipped[-1]["skipped"] == len(skipped) == len(frames) - len(results)
    assert "newer frame" in skipped[0]["reason"]
    assert httpx.get(server.url + "/healthz").json()["skipped"] >= len(skipped)
    # No backlog: never past 5 results a second (plus the one fed at once, within slack),
    # however long the burst took to arrive and be answered.
    assert len(results) <= 2 + 5 * (times[len(frames) - 1] - t0)
    assert reset == {"type": "reset", "frames": 0}  # after every earlier frame's reply
    assert after["type"] == "result" and after["frames"] == 1 and after["size"][0] == width(0)
    deadline = time.monotonic() + HANG  # the closed stream is let go (a hang guard)
    while httpx.get(server.url + "/healthz").json()["streams"] != 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)
