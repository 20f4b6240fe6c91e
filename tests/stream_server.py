"""A live MPEG-TS stream over HTTP on loopback, made from a real clip, that tests can kill."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from fractions import Fraction
from pathlib import Path

import av


def make_ts(src: Path, out: Path, repeats: int = 3, gop: int = 10) -> float:
    """Re-encode ``src`` ``repeats`` times over into one MPEG-TS file; returns its duration."""
    n = 0
    with av.open(str(src)) as inp:
        first = next(inp.decode(video=0))
    width, height = first.width // 2 * 2, first.height // 2 * 2
    with av.open(str(out), "w", format="mpegts") as dst:
        s = dst.add_stream("libx264", rate=30, options={"preset": "veryfast", "g": str(gop)})
        s.pix_fmt, s.width, s.height = "yuv420p", width, height
        s.codec_context.time_base = Fraction(1, 30)
        for _ in range(repeats):
            with av.open(str(src)) as inp:
                for frame in inp.decode(video=0):
                    f = frame.reformat(width=width, height=height, format="yuv420p")
                    f.pts, f.time_base = n, Fraction(1, 30)
                    n += 1
                    for p in s.encode(f):
                        dst.mux(p)
        for p in s.encode():
            dst.mux(p)
    return n / 30


class LiveTSServer:
    """Serves ``/live.ts``: the file's bytes at its real-time rate, looped, to every client."""

    def __init__(self, ts: Path, duration: float, port: int = 0) -> None:
        self.data = ts.read_bytes()
        self.rate = len(self.data) / duration  # bytes per second
        self.port = port
        self._clients: list[socket.socket] = []
        self._server = None

    def start(self) -> LiveTSServer:
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                self.send_response(200)
                self.send_header("Content-Type", "video/mp2t")
                self.end_headers()
                owner._clients.append(self.connection)
                chunk, pos, t0, sent = 188 * 32, 0, time.monotonic(), 0
                try:
                    while True:
                        piece = owner.data[pos : pos + chunk]
                        pos = (pos + chunk) % len(owner.data)
                        self.wfile.write(piece)
                        sent += len(piece)
                        ahead = sent / owner.rate - (time.monotonic() - t0)
                        if ahead > 0:
                            time.sleep(ahead)
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/live.ts"

    def kill(self) -> None:
        """Stop listening and cut every client off mid-stream."""
        self._server.shutdown()
        self._server.server_close()
        for c in self._clients:
            try:
                c.shutdown(socket.SHUT_RDWR)
                c.close()
            except OSError:
                pass
        self._clients.clear()
