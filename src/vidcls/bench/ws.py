"""``vidcls bench --ws``: how many browser streams one ``vidcls serve`` holds.

A real server (``python -m vidcls.serve`` in a subprocess on a free loopback port) gets N
WebSocket clients that behave as the live page does: a JPEG frame (640x360, from a real clip)
at the fps the ``ready`` message gives, at most two unanswered (a tick with two out sends
nothing). After a warm-up it measures round trips (frame sent to reply), results per second
per stream, frames the server skipped, and the server's CPU. A run holds when p99 round trip
is under 100 ms and every stream gets at least 90 % of the model's rate.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..cpu import machine_busy, process_seconds
from ..errors import VidclsError

P99_LIMIT_MS = 100.0
RATE_SHARE = 0.9
WARMUP = 3.0
MAX_IN_FLIGHT = 2  # as the live page (live.js)
SIZE = (640, 360)
CLIP = "carving_ice_android.mp4"


@dataclass
class Sent:
    """One frame a client sent, and its reply."""

    index: int  # in the client's frame list
    sent: float
    answered: float | None = None
    reply: dict = field(default_factory=dict)

    @property
    def rtt_ms(self) -> float:
        return 1e3 * ((self.answered or float("nan")) - self.sent)


async def browser_client(
    url: str,
    frames: list[bytes],
    seconds: float,
    *,
    in_flight: int = MAX_IN_FLIGHT,
    jitter: float = 0.0,
    seed: int = 0,
    drain: float = 5.0,
) -> tuple[dict, list[Sent]]:
    """Play ``frames`` (JPEG bytes, looped) to a ``/v1/stream`` URL as the live page does, for
    ``seconds``: one per tick at the ``ready`` message's fps from a random phase (each tick
    moved by up to ``jitter`` seconds either way), none while ``in_flight`` are unanswered;
    then wait up to ``drain`` seconds for the last replies. Returns the ready message and
    every frame sent, in order, with its reply."""
    from websockets.asyncio.client import connect

    rng = np.random.default_rng(seed)
    async with connect(url, max_size=None) as ws:
        ready = json.loads(await ws.recv())
        if ready.get("type") != "ready":
            raise VidclsError(f"the server refused the stream: {ready.get('message', ready)}")
        sent: list[Sent] = []
        answered = 0

        async def read() -> None:
            nonlocal answered
            async for message in ws:
                sent[answered].reply = json.loads(message)
                sent[answered].answered = time.monotonic()
                answered += 1

        reader = asyncio.create_task(read())
        interval, tick = 1.0 / ready["fps"], 0
        start = time.monotonic() + float(rng.uniform(0, interval))  # the page's own phase
        while (due := start + tick * interval) < start + seconds:
            shift = float(rng.uniform(-jitter, jitter)) if jitter else 0.0
            await asyncio.sleep(max(0.0, due + shift - time.monotonic()))
            if len(sent) - answered < in_flight:
                sent.append(Sent(tick % len(frames), time.monotonic()))
                await ws.send(frames[tick % len(frames)])
            tick += 1
        deadline = time.monotonic() + drain
        while answered < len(sent) and time.monotonic() < deadline and not reader.done():
            await asyncio.sleep(0.01)
        reader.cancel()
    if reader.done() and not reader.cancelled() and reader.exception() is not None:
        raise reader.exception()  # e.g. more replies than frames
    return ready, sent


def jpeg_frames(video: str | os.PathLike | None = None, count: int = 50) -> list[bytes]:
    """``count`` JPEG frames (640x360, quality 85, as a browser's canvas gives) at 5 fps from
    ``video`` (default: the shared clip of carving ice, else a synthetic clip)."""
    from ..media import VideoFile
    from .clips import shared_folder, synthetic_video

    path = Path(video) if video else shared_folder() / CLIP
    if not video and not path.is_file():
        path = synthetic_video(Path(os.environ.get("TMPDIR", "/tmp")) / "vidcls-ws-bench.mp4")
    out: list[bytes] = []
    with VideoFile(path) as v:
        for _, frame in v.frames(5.0):
            bgr = cv2.resize(frame.to_ndarray(format="bgr24"), SIZE)
            out.append(cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes())
            if len(out) == count:
                break
    if not out:
        raise VidclsError("no frames decoded", path)
    return out


@dataclass
class WsRun:
    """One run of N browser streams."""

    streams: int
    p50_ms: float
    p99_ms: float
    rate_mean: float  # results per second per stream
    rate_min: float
    skipped: int  # frames the server answered ``skipped``
    errors: int  # error replies and frames never answered
    server_cores: float  # the server's CPU seconds per second
    machine_cores: float  # every process's (these clients and anything else running)
    fps: float

    @property
    def holds(self) -> bool:
        return (
            self.p99_ms < P99_LIMIT_MS
            and self.rate_min >= RATE_SHARE * self.fps
            and self.errors == 0
        )

    def row(self) -> str:
        verdict = "holds" if self.holds else "fails"
        return (
            f"{self.streams:>7} {self.p50_ms:>8.0f} {self.p99_ms:>8.0f} {self.rate_mean:>9.2f} "
            f"{self.rate_min:>9.2f} {self.skipped:>8} {self.errors:>6} "
            f"{self.server_cores:>7.2f} {self.machine_cores:>8.2f}  {verdict}"
        )


HEADER = (
    f"{'streams':>7} {'p50 ms':>8} {'p99 ms':>8} {'res/s avg':>9} {'res/s min':>9} "
    f"{'skipped':>8} {'errors':>6} {'cpu':>7} {'machine':>8}"
)


class BenchServer:
    """``vidcls serve`` in a subprocess on a free loopback port, for as long as the block."""

    def __init__(self, model: str, max_streams: int = 1000) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.args = [sys.executable, "-m", "vidcls.serve", "--port", str(self.port)]
        self.args += ["--model", model, "--max-streams", str(max_streams)]
        self.args += ["--log-level", "warning"]
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/stream"

    def __enter__(self) -> BenchServer:
        import urllib.request

        self.log = tempfile.TemporaryFile()
        self.data = tempfile.TemporaryDirectory(prefix="vidcls-bench-")  # not the user's
        self.proc = subprocess.Popen(
            self.args,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, VIDCLS_DATA=self.data.name),
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise VidclsError(f"vidcls serve exited {self.proc.returncode}: {self.output()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2):
                    return self
            except OSError:
                time.sleep(0.1)
        self.__exit__()
        raise VidclsError("vidcls serve did not answer in 60 s")

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if "Traceback" in self.output():
            print(self.output(), file=sys.stderr)
        self.log.close()
        self.data.cleanup()

    def output(self) -> str:
        """What the server printed (its last lines)."""
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-2000:].strip()

    def cpu_seconds(self) -> float:
        """The server's CPU time so far (0 where /proc is absent)."""
        return process_seconds(self.proc.pid) if self.proc is not None else 0.0


async def measure(server: BenchServer, n: int, frames: list[bytes], seconds: float) -> WsRun:
    """N browser clients for WARMUP + ``seconds``; figures from the frames sent in the
    ``seconds`` after the warm-up."""
    marks: list[tuple[float, float, float]] = []  # (time, server CPU, machine CPU)

    async def mark() -> None:
        for wait in (WARMUP, seconds):
            await asyncio.sleep(wait)
            marks.append((time.monotonic(), server.cpu_seconds(), machine_busy()))

    marker = asyncio.create_task(mark())
    clients = [  # each its own phase and place in the clip, as browsers opened at random
        browser_client(server.url, frames[i:] + frames[:i], WARMUP + seconds, seed=i)
        for i in range(n)
    ]
    runs = await asyncio.gather(*clients)
    await marker
    (start, cpu0, busy0), (end, cpu1, busy1) = marks
    window = [[s for s in sent if start <= s.sent < end] for _, sent in runs]
    rtts = np.array([s.rtt_ms for sents in window for s in sents if s.answered is not None])
    results = np.array([sum(s.reply.get("type") == "result" for s in sents) for sents in window])
    kinds = [s.reply.get("type") for sents in window for s in sents]
    rtts = rtts if rtts.size else np.array([np.nan])
    rates = results / (end - start)
    return WsRun(
        n,
        float(np.percentile(rtts, 50)),
        float(np.percentile(rtts, 99)),
        float(rates.mean()),
        float(rates.min()),
        kinds.count("skipped"),
        len(kinds) - kinds.count("result") - kinds.count("skipped"),
        (cpu1 - cpu0) / (end - start),
        (busy1 - busy0) / (end - start),
        float(runs[0][0]["fps"]),
    )


def run_ws_capacity(
    model: str,
    streams: list[int],
    seconds: float = 15.0,
    search: bool = False,
    video: str | None = None,
) -> list[WsRun]:
    """Measure each N in ``streams`` (with ``search``: go on by 8 while it holds) on one
    server, print a row per run, and return the runs."""
    frames = jpeg_frames(video)
    cores = os.cpu_count() or 1
    print(f"server vidcls serve --model {model}; {cores} cores; clients in this process")
    kb = np.mean([len(f) for f in frames]) / 1024
    print(
        f"input  {len(frames)} JPEG frames {SIZE[0]}x{SIZE[1]} ({kb:.0f} kB) at the server's "
        f"fps, <= {MAX_IN_FLIGHT} in flight; {WARMUP:g} s warm-up, {seconds:g} s "
        f"measured per run; holds: p99 round trip < {P99_LIMIT_MS:.0f} ms and every stream >= "
        f"{RATE_SHARE:.0%} of the model's rate"
    )
    print(HEADER, flush=True)
    runs: list[WsRun] = []
    todo = list(streams)
    with BenchServer(model) as server:
        while todo:
            n = todo.pop(0)
            run = asyncio.run(measure(server, n, frames, seconds))
            print(run.row(), flush=True)
            runs.append(run)
            if search and run.holds and not todo:
                todo.append(n + 8)
    held = [r.streams for r in runs if r.holds]
    print(f"largest N that holds: {max(held) if held else 'none'}", file=sys.stderr)
    return runs
