"""The camera server: live cameras over HTTP on loopback, in a process of their own."""

from __future__ import annotations

import argparse
import contextlib
import http.server
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from bisect import bisect_right
from pathlib import Path

from ...cpu import process_seconds
from ...errors import VidclsError
from ...files import check_regular
from .clip import camera_clip
from .tsclip import TsClip

GOLDEN = 0.6180339887498949  # spreads the cameras' starting points evenly over the clip


class _Cameras(http.server.ThreadingHTTPServer):
    """``GET /cam/<i>.ts``: camera ``i``, live; ``GET /drop/<i>``: cut camera ``i``'s clients
    off (the body says how many)."""

    daemon_threads = True
    request_queue_size = 256  # many cameras connect at once

    def __init__(self, clip: TsClip, port: int) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.clip, self.t0 = clip, time.monotonic()
        self.clients: dict[int, set[socket.socket]] = {}
        self.lock = threading.Lock()

    def stream(self, i: int, sock: socket.socket) -> None:
        """Send camera ``i`` to ``sock`` until the client goes: from the last keyframe before
        the camera's present at once, then each frame at its time."""
        clip = self.clip
        offset = (i * GOLDEN) % 1 * clip.duration  # where camera i was when the server started
        k, now = divmod(time.monotonic() - self.t0 + offset, clip.duration)
        k, j = int(k), bisect_right(clip.times, now) - 1
        while not clip.keys[j]:
            j -= 1
        zero, data = self.t0 - offset, clip.loop(k)  # the wall time of the camera's start
        while True:
            delay = zero + k * clip.duration + clip.times[j] - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sock.sendall(memoryview(data)[clip.starts[j] : clip.starts[j + 1]])
            j += 1
            if j == len(clip.times):
                j, k = 0, k + 1
                data = clip.loop(k)

    def drop(self, i: int) -> int:
        with self.lock:
            clients = list(self.clients.get(i, ()))
        for sock in clients:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        return len(clients)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Cameras

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        match = re.fullmatch(r"/(cam|drop)/(\d+)(\.ts)?", self.path)
        if not match or (match[1] == "cam") != bool(match[3]):
            self.send_error(404)
            return
        i = int(match[2])
        if match[1] == "drop":
            body = str(self.server.drop(i)).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        self.send_header("Content-Type", "video/mp2t")  # no length: a live stream
        self.end_headers()
        with self.server.lock:
            self.server.clients.setdefault(i, set()).add(self.connection)
        try:
            self.server.stream(i, self.connection)
        except OSError:
            pass  # the client went, or was cut off
        finally:
            with self.server.lock:
                self.server.clients[i].discard(self.connection)

    def log_message(self, *args) -> None:
        pass


class CameraServer:
    """Live cameras ``server.url(i)`` (any ``i``) on 127.0.0.1, playing ``clip`` (MPEG-TS), from
    a child process running ``python -m vidcls.bench.cameras serve``, so that serving costs the
    measured process nothing. ``with CameraServer(clip) as server: ...``."""

    def __init__(self, clip: Path, port: int = 0) -> None:
        self.clip, self.port = check_regular(clip, "camera clip"), port
        self._proc: subprocess.Popen | None = None

    def start(self) -> CameraServer:
        """Start serving (again after :meth:`kill`, on the same port)."""
        env = dict(os.environ)
        here = str(Path(__file__).resolve().parents[2])  # the child imports this vidcls
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [here, env.get("PYTHONPATH")]))
        command = [sys.executable, "-m", "vidcls.bench.cameras", "serve", str(self.clip)]
        self._proc = subprocess.Popen(
            [*command, "--port", str(self.port)], stdout=subprocess.PIPE, text=True, env=env
        )
        line: list[str] = []
        reader = threading.Thread(
            target=lambda: line.append(self._proc.stdout.readline()), daemon=True
        )
        reader.start()
        reader.join(60)
        if not line or not line[0].strip().isdigit():
            self.kill()
            raise VidclsError("the camera server did not start", self.clip)
        self.port = int(line[0])
        return self

    def url(self, i: int) -> str:
        """Camera ``i``'s stream."""
        return f"http://127.0.0.1:{self.port}/cam/{i}.ts"

    def drop(self, i: int) -> int:
        """Cut camera ``i``'s clients off (the camera is back for the next request); returns
        how many there were."""
        url = f"http://127.0.0.1:{self.port}/drop/{i}"
        with urllib.request.urlopen(url, timeout=10) as reply:
            return int(reply.read())

    def kill(self) -> None:
        """Stop the server: every stream ends at once, and nothing listens on the port."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc.stdout.close()
            self._proc = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def cpu_seconds(self) -> float:
        """CPU time the server's process has used so far (Linux), seconds."""
        if self._proc is None:
            raise VidclsError("the camera server is not running", self.clip)
        return process_seconds(self.pid)

    def __enter__(self) -> CameraServer:
        return self if self._proc else self.start()

    def __exit__(self, *exc) -> None:
        self.kill()


def _serve(clip: Path, port: int) -> None:
    cameras = TsClip(check_regular(clip, "camera clip"))
    try:
        server = _Cameras(cameras, port)
    except OSError as e:
        raise VidclsError(f"cannot listen on 127.0.0.1:{port} ({e.strerror})") from None
    print(server.server_address[1], flush=True)
    parent = os.getppid()

    def orphaned() -> None:  # a server whose parent died stops too
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=orphaned, daemon=True).start()
    server.serve_forever()


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise VidclsError(f"--size must be WIDTHxHEIGHT, not '{text}'") from None
    return width, height


def main(argv: list[str] | None = None) -> int:
    """``serve CLIP [--port N]``: serve a clip's cameras, printing the port first; ``clip``:
    make (once) the camera clip and print where it is."""
    parser = argparse.ArgumentParser(
        prog="python -m vidcls.bench.cameras", description=main.__doc__
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve a clip as live cameras")
    serve.add_argument("clip", type=Path)
    serve.add_argument("--port", type=int, default=0)
    make = commands.add_parser("clip", help="make the camera clip")
    make.add_argument("--size", default="640x360", help="WIDTHxHEIGHT")
    make.add_argument("--fps", type=int, default=30)
    make.add_argument("--seconds", type=float, default=20)
    make.add_argument("-o", "--output", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            _serve(args.clip, args.port)
        else:
            width, height = _size(args.size)
            print(camera_clip(args.output, width, height, args.fps, args.seconds))
    except VidclsError as e:
        print(f"vidcls: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0
