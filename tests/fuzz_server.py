"""The ``server`` target of ``tests/fuzz_surfaces.py``: mutated requests to every route of a
real ``vidcls serve --config ... --data DIR`` process on loopback.

The routes come from the app itself (``vidcls.serve.app.create_app().routes``, included routers
walked), so a route added later is fuzzed too. A case is one request, a pure function of
(seed, case number): a route, its path parameters, query values (the route's own and strays),
headers (Content-Type, Content-Length, Range, Origin, Host, Transfer-Encoding, long, many, odd
bytes) and a body (JSON for the route's model with odd values, uploads of real, cut and
garbage clips, raw bytes), sent byte for byte over a socket; ``/v1/stream`` gets a WebSocket
handshake and frames (JPEG, mutated JPEG, JSON messages, odd opcodes). ``{clip}`` and
``{teachclip}`` in a case are the first event clip and teaching clip the server lists when the
case runs.

Judged: no 5xx (a 503 with Retry-After is a refusal, as the README promises), no answer to a
whole request within --timeout is a hang, the server's log gains no traceback, ``/healthz``
answers after the case, no answer carries the sentinel's bytes (a file outside the data
folder), and nothing is written outside the data folder (the sentinel folder and the server's
working folder are compared before and after). A sign-in answer (401) is not a failure.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import random
import re
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx
from fuzz_inputs import ANDROID, EYE, LABELS, MODELS, RPI, TIMES, _mutate_tree, _short
from fuzz_run import Outcome
from fuzz_surfaces import Failure, Summary, changes, make_outside, run_jobs, snapshot, wipe
from serve_process import ServerProcess, server_env

MARKER = b"vidcls-fuzz-sentinel-7f3a"  # in the sentinel's files: never in an answer
READ_LIMIT = 8 << 20
EXTRA_QUERY = (
    "model", "fps", "top_k", "threshold", "window", "segments", "plot", "summary_only",
    "filename", "source", "label", "since", "until", "limit", "before", "x",
)  # fmt: skip
QUERY_VALUES = (
    "", "0", "-1", "1", "99999999999999999999999999", "-99999999999999999999999999", "1e400",
    "nan", "inf", "-inf", "true", "false", "null", "2099-01-01T00:00:00Z", "yesterday",
    "1970-01-01", "9999-12-31T23:59:59", "-0", "0x10", "a0", "ice", "carving ice", "%00",
    "%zz", "%", "%ff%fe", "x" * 5000, "../../etc/passwd", "\u00e9", "1.5", "1e-320", "[]",
    "{}", "native", "%0d%0aX-Injected:%201",
)  # fmt: skip
PATH_VALUES = (
    "{clip}", "{teachclip}", "ice/x.mp4", "x.mp4", "..", "../..", "..%2f..%2foutside%2fnotes.txt",
    "../../outside/notes.txt", "../../../outside/notes.txt", "%2e%2e/%2e%2e/outside/notes.txt",
    "{outside}/notes.txt", "/{outside}/notes.txt", "ice/..%00/x.mp4", "x%00.mp4", "cam/x%00.mp4",
    "x" * 300 + ".mp4", "/".join(["d"] * 800), "%ff%fe.mp4", "\u00e9.mp4", "a b.mp4", "%20",
    "", ".", "...", "~", "ice/", "ice//x", "\\..\\..\\x", "%5c..%5c..%5cx", "jobs", "0",
    "20261203-072232", "a" * 5000, ".serving", ".upload-x", "{clip}%00", "{clip}/..",
    "{teachclip}/../../outside", "..%252f..%252fx", "%c0%ae%c0%ae/x",
)  # fmt: skip
HEADER_MUTATIONS = (
    ("Content-Type", "application/json"), ("Content-Type", "video/mp4"),
    ("Content-Type", "multipart/form-data"), ("Content-Type", "multipart/form-data; boundary="),
    ("Content-Type", "multipart/form-data; boundary=" + "b" * 5000),
    ("Content-Type", "text/plain; charset=utf-99"), ("Content-Type", "\x00"),
    ("Content-Length", "-1"), ("Content-Length", "1000000000000"), ("Content-Length", "abc"),
    ("Content-Length", "99999999999999999999999999"), ("Transfer-Encoding", "chunked"),
    ("Transfer-Encoding", "gzip, chunked"), ("Range", "bytes=0-0"), ("Range", "bytes=-1"),
    ("Range", "bytes=99999999999999999999-"), ("Range", "bytes=5-1"), ("Range", "bytes=abc"),
    ("Range", "bytes=" + ",".join(f"{i}-{i}" for i in range(2000))), ("Range", "bytes=0-,0-"),
    ("If-Range", "x"), ("If-None-Match", "*"), ("If-Modified-Since", "yesterday"),
    ("Origin", "http://evil.example"), ("Origin", "null"), ("Host", "evil.example"),
    ("Host", ""), ("Host", "[::1"), ("Host", "a" * 1000), ("Accept-Encoding", "gzip;q=nan"),
    ("Cookie", "a=" + "b" * 8000), ("Authorization", "Basic " + "%" * 20),
    ("Authorization", "Bearer " + "x" * 5000), ("X-Forwarded-For", "1.2.3.4"),
    ("Upgrade", "websocket"), ("Expect", "100-continue"), ("Accept", "*/*;q=2"),
    ("X-Long", "v" * 60000), ("X-Bytes", "\u00ff\u00fe"),
)  # fmt: skip


@dataclass
class Route:
    method: str  # GET, POST, DELETE or WS
    path: str  # with {param} / {param:path}
    query: tuple[str, ...] = ()
    body: str = ""  # the route's JSON model name, "" for none


def app_routes() -> list[Route]:
    """Every route the app registers, from ``create_app().routes`` (routers walked)."""
    from vidcls.serve.app import create_app
    from vidcls.serve.options import ServeOptions

    app = create_app(ServeOptions())
    out: list[Route] = []

    def walk(routes, prefix: str = "") -> None:
        for r in routes:
            inner = getattr(r, "original_router", None)
            if inner is not None:
                walk(inner.routes, prefix)
                continue
            path = prefix + getattr(r, "path", "")
            if type(r).__name__ == "Mount":
                out.append(Route("GET", path + "/{path:path}"))
                continue
            methods = sorted(getattr(r, "methods", None) or [])
            dependant = getattr(r, "dependant", None)
            query = tuple(p.name for p in getattr(dependant, "query_params", []))
            body = tuple(p.name for p in getattr(dependant, "body_params", []))
            if not methods:  # a WebSocket route
                out.append(Route("WS", path, query))
            for m in methods:
                if m != "HEAD":
                    out.append(Route(m, path, query, body[0] if body else ""))

    try:
        walk(app.routes)
    finally:
        with contextlib.suppress(Exception):
            app.state.vidcls.close()
    return sorted(out, key=lambda r: (r.path, r.method))


# -- one request ------------------------------------------------------------------------------


@dataclass
class Request:
    route: Route
    method: str
    target: str  # path and query, with {clip}, {teachclip}, {outside} to fill in
    headers: list[tuple[str, str]]
    body: bytes = b""
    frames: list[tuple[int, bytes]] = field(default_factory=list)  # WebSocket (opcode, payload)
    mutation: str = ""
    complete: bool = True  # the body is as long as it says (else no answer is expected)


def _jpeg(width: int = 64, height: int = 48) -> bytes:
    import cv2
    import numpy as np

    y, x = np.mgrid[0:height, 0:width]
    image = np.stack([x * 4 % 256, y * 5 % 256, (x + y) % 256], -1).astype(np.uint8)
    return cv2.imencode(".jpg", image)[1].tobytes()


def _clip_bodies() -> list[tuple[str, bytes]]:
    rpi = RPI.read_bytes()
    small = MODELS.parent.parent / "datasets" / "basketball" / "nothing" / "nothing_41.mp4"
    return [
        ("rpi.mp4", rpi), ("small.mp4", small.read_bytes()), ("cut.mp4", rpi[: len(rpi) // 3]),
        ("empty.mp4", b""), ("text.mp4", b"not a video\n"), ("eye.avi", EYE.read_bytes()),
        ("flipped.mp4", rpi[:4000] + bytes(b ^ 0xFF for b in rpi[4000:4100]) + rpi[4100:]),
    ]  # fmt: skip


_BODIES: list | None = None
_JPEG: bytes | None = None


def _odd_json(rng: random.Random):
    return rng.choice((
        None, True, 0, -1, 10**30, 1e308, -0.0, "", " ", "x" * 5000, [], {}, [1], {"a": 1},
        *LABELS, *TIMES[:10], "ice", "a0", "crop", "head", 1.5, 120, 121, 0.0001,
    ))  # fmt: skip


BODY_SEEDS = {
    "LabelBody": {"label": "carving"},
    "RecordBody": {"source": "ice", "seconds": 1},
    "TrainBody": {"views": 1, "fit": "squash", "method": "head"},
}


def _json_body(rng: random.Random, model: str) -> tuple[bytes, str]:
    doc = json.loads(json.dumps(BODY_SEEDS.get(model, {"x": 1})))
    what = []
    for _ in range(rng.choice((0, 1, 2))):
        if isinstance(doc, dict) and doc and rng.random() < 0.6:
            key = rng.choice(list(doc))
            doc[key] = _odd_json(rng)
            what.append(f"{key}={_short(doc[key])}")
        else:
            doc, w = _mutate_tree(rng, doc, keys=("label", "source", "seconds", "views"))
            what.append(w)
    try:
        text = json.dumps(doc).encode()
    except (ValueError, RecursionError):
        text = b"{}"
    pick = rng.random()
    if pick < 0.06:
        text, what = b"[" * 100000 + b"]" * 100000, [*what, "json-nest"]
    elif pick < 0.12:
        text, what = text[: rng.randrange(len(text) + 1)], [*what, "truncated"]
    elif pick < 0.15:
        text, what = b"\xff\xfe" + text, [*what, "bytes"]
    return text, "json " + ", ".join(what)


def _multipart(rng: random.Random, name: str, data: bytes) -> tuple[bytes, str, str]:
    boundary = rng.choice(("fuzzboundary", "x" * 70, "a b", "--"))
    filename = rng.choice((name, "", "../../outside/x.mp4", "a\"b.mp4", "x" * 300, "\u00e9.mp4",
                           "a\r\nX: y.mp4", "x.exe", ".mp4", "/etc/passwd"))  # fmt: skip
    field_name = rng.choice(("file", "file", "upload", ""))
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field_name}"; '
        f'filename="{filename}"\r\nContent-Type: video/mp4\r\n\r\n'.encode("utf-8", "replace"),
        data,
        f"\r\n--{boundary}--\r\n".encode(),
    ]
    if rng.random() < 0.1:
        parts[-1] = b""  # no closing boundary
    return b"".join(parts), f"multipart/form-data; boundary={boundary}", filename


def make_request(seed: int, number: int, routes: list[Route]) -> Request:
    global _BODIES, _JPEG
    if _BODIES is None:
        _BODIES, _JPEG = _clip_bodies(), _jpeg()
    rng = random.Random(f"server/{seed}/{number}")
    route = rng.choice(routes)
    what = [f"{route.method} {route.path}"]

    def param(_m) -> str:
        value = rng.choice(PATH_VALUES)
        what.append(f"param={_short(value)}")
        if rng.random() < 0.5 and "{" not in value:
            return quote(value, safe="/%") if rng.random() < 0.7 else value
        return value

    path = re.sub(r"\{[^}]*\}", param, route.path)
    query = []
    for name in route.query + tuple(rng.sample(EXTRA_QUERY, rng.choice((0, 0, 1, 3)))):
        if rng.random() < 0.6:
            value = rng.choice(QUERY_VALUES)
            raw = value if value.startswith("%") and rng.random() < 0.5 else quote(value, safe="")
            query.append(f"{quote(name)}={raw}")
            what.append(f"{name}={_short(value)}")
    if rng.random() < 0.05:
        query.append(rng.choice(("&&&", "=", "a", "a=1&a=2&a=3", "%", "x=" + "%" * 10)))
        what.append("odd query")
    target = path + ("?" + "&".join(query) if query else "")
    method = route.method
    if rng.random() < 0.04:
        method = rng.choice(("PUT", "PATCH", "OPTIONS", "HEAD", "TRACE", "GET", "X" * 50, "G\0T"))
        what.append(f"method {method!r}")
    headers: list[tuple[str, str]] = []
    body, complete = b"", True
    if route.method == "WS":
        return _websocket(rng, route, target, what)
    if route.method == "POST" and route.path in ("/v1/classify", "/api/teach/upload"):
        name, data = rng.choice(_BODIES)
        if rng.random() < 0.5:
            body, ctype, fname = _multipart(rng, name, data)
            what.append(f"multipart {name} as {_short(fname)}")
        else:
            body, ctype = (
                data,
                rng.choice(("video/mp4", "application/octet-stream", "video/x-msvideo", "")),
            )
            what.append(f"raw {name} {ctype}")  # fmt: skip
        if ctype:
            headers.append(("Content-Type", ctype))
    elif route.method in ("POST", "DELETE") and (route.body or rng.random() < 0.3):
        body, w = _json_body(rng, route.body)
        headers.append(("Content-Type", "application/json"))
        what.append(w)
    if body or method in ("POST", "PUT", "PATCH"):
        headers.append(("Content-Length", str(len(body))))
    for _ in range(rng.choice((0, 0, 1, 2))):
        h = rng.choice(HEADER_MUTATIONS)
        headers = [x for x in headers if x[0] != h[0] or rng.random() < 0.3] + [h]
        what.append(f"header {h[0]}: {_short(h[1])}")
        if h[0] == "Content-Length" and h[1].isdigit() and int(h[1]) > len(body):
            complete = False
        if h[0] in ("Transfer-Encoding", "Expect"):
            complete = False
    if rng.random() < 0.03:
        headers += [(f"X-{i}", "y") for i in range(rng.choice((100, 500)))]
        what.append("many headers")
    return Request(route, method, target, headers, body, [], "; ".join(what), complete)


def _websocket(rng: random.Random, route: Route, target: str, what: list[str]) -> Request:
    key = base64.b64encode(bytes(rng.randrange(256) for _ in range(16))).decode()
    headers = [("Upgrade", "websocket"), ("Connection", "Upgrade"),
               ("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", "13")]  # fmt: skip
    if rng.random() < 0.2:
        h = rng.choice((("Sec-WebSocket-Version", "8"), ("Sec-WebSocket-Key", ""),
                        ("Origin", "http://evil.example"), ("Upgrade", "h2c")))  # fmt: skip
        headers = [x for x in headers if x[0] != h[0]] + [h]
        what.append(f"header {h[0]}: {h[1]}")
    frames = []
    for _ in range(rng.choice((1, 2, 3, 5))):
        pick = rng.randrange(8)
        if pick <= 1:
            frames.append((2, _JPEG))
            what.append("jpeg")
        elif pick == 2:
            data = bytearray(_JPEG)
            for _ in range(rng.choice((1, 5, 50))):
                data[rng.randrange(len(data))] = rng.randrange(256)
            frames.append((2, bytes(data[: rng.randrange(1, len(data) + 1)])))
            what.append("mutated jpeg")
        elif pick == 3:
            msg = rng.choice((
                {"type": "reset"}, {"type": "config", "model": _odd_json(rng)},
                {"type": "config", "threads": _odd_json(rng)}, {"type": _odd_json(rng)},
                {"type": "config", "model": "a0", "threads": 1}, [],
            ))  # fmt: skip
            try:
                text = json.dumps(msg)
            except ValueError:
                text = "{}"
            frames.append((1, text.encode()))
            what.append(f"text {_short(msg)}")
        elif pick == 4:
            frames.append((1, rng.choice((b"", b"{", b"\xff\xfe", b"null", b"x" * 70000))))
            what.append("odd text")
        elif pick == 5:
            frames.append((2, rng.choice((b"", b"\xff\xd8", b"\xff\xd8\xff\xc0" + b"\xff" * 20))))
            what.append("odd binary")
        elif pick == 6:
            op = rng.choice((0, 3, 7, 9, 10, 11, 15))
            frames.append((op, b"x" * rng.choice((0, 5, 200))))
            what.append(f"opcode {op}")
        else:
            frames.append((8, rng.choice((b"", b"\x03\xe8", b"\x00\x00", b"\x0b\xb8bye", b"\x03"))))
            what.append("close")
    return Request(route, "GET", target, headers, b"", frames, "; ".join(what), True)


def _ws_frame(opcode: int, payload: bytes, rng: random.Random) -> bytes:
    mask = bytes(rng.randrange(256) for _ in range(4))
    n = len(payload)
    head = bytes([0x80 | (opcode & 0x0F)])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([0x80 | 127]) + n.to_bytes(8, "big")
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


@dataclass
class Answer:
    status: int | None
    headers: dict[str, str]
    body: bytes
    seconds: float
    note: str = ""  # "timeout", "reset", ...


def send(port: int, req: Request, fill: dict[str, str], timeout: float, seed: str) -> Answer:
    """The request byte for byte; the answer read until the server closes (or ``timeout``)."""
    target = req.target
    for k, v in fill.items():
        target = target.replace("{" + k + "}", v)
    head = [f"{req.method} {target} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    if req.route.method != "WS":
        head.append("Connection: close")
    head += [f"{k}: {v}" for k, v in req.headers]  # a Host of the case's own comes second
    data = ("\r\n".join(head) + "\r\n\r\n").encode("utf-8", "surrogateescape") + req.body
    start = time.monotonic()
    chunks: list[bytes] = []
    note = ""
    rng = random.Random(seed)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            try:
                s.sendall(data)
                if req.frames:
                    s.settimeout(min(timeout, 5))
                    first = s.recv(65536)
                    chunks.append(first)
                    if first.startswith(b"HTTP/1.1 101"):
                        for opcode, payload in req.frames:
                            s.sendall(_ws_frame(opcode, payload, rng))
                            time.sleep(0.05)
                        s.settimeout(2)
                        with contextlib.suppress(TimeoutError, OSError):
                            while sum(map(len, chunks)) < READ_LIMIT:
                                got = s.recv(65536)
                                if not got:
                                    break
                                chunks.append(got)
                        return _answer(chunks, start, "websocket")
            except (BrokenPipeError, ConnectionResetError):
                note = "closed while sending"
            while sum(map(len, chunks)) < READ_LIMIT:
                got = s.recv(65536)
                if not got:
                    break
                chunks.append(got)
    except TimeoutError:
        note = "timeout"
    except ConnectionResetError:
        note = note or "reset"
    except OSError as e:
        note = f"socket: {e}"
    return _answer(chunks, start, note)


def _answer(chunks: list[bytes], start: float, note: str) -> Answer:
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = None
    if lines and lines[0].startswith(b"HTTP/"):
        with contextlib.suppress(ValueError, IndexError):
            status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        headers[k.decode("latin-1").strip().lower()] = v.decode("latin-1").strip()
    return Answer(status, headers, body, time.monotonic() - start, note)


# -- the fuzzer -------------------------------------------------------------------------------


class ServerFuzzer:
    """Requests to one real server per job (``session``), judged after each."""

    target = "server"

    def __init__(self, seed: int, workdir: Path, timeout: float = 30.0, keep=None, log=print):
        self.seed, self.workdir, self.timeout, self.keep, self.log = (
            seed,
            Path(workdir),
            timeout,
            keep,
            log,
        )
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.routes = app_routes()
        self.summary = Summary()
        self.lock = threading.Lock()
        self.servers: dict[Path, _Session] = {}

    def case(self, number: int) -> Request:
        return make_request(self.seed, number, self.routes)

    def describe(self, number: int) -> str:
        return self.case(number).mutation

    @contextlib.contextmanager
    def session(self, job: Path):
        s = _Session(job, self.timeout)
        self.servers[job] = s
        try:
            s.start()
            yield s
        finally:
            s.stop()
            self.servers.pop(job, None)

    def run_one(self, number, job: Path) -> None:
        """Case ``number`` of this run's seed, or a (seed, number) pair (a case found before)."""
        s = self.servers[job]
        seed, number = number if isinstance(number, tuple) else (self.seed, number)
        req = make_request(seed, number, self.routes)
        fill = s.fill() if "{clip}" in req.target or "{teachclip}" in req.target else {}
        fill["outside"] = str(s.outside).lstrip("/")
        before = snapshot(s.outside), sorted(os.listdir(job))
        wait = self.timeout if req.complete else 6  # a body short of its length: 408 after 3 s
        answer = send(s.server.port, req, fill, wait, f"ws/{seed}/{number}")
        category, detail = None, []
        if answer.status is not None and answer.status >= 500:
            refused = answer.status == 503 and "retry-after" in answer.headers
            if not refused:
                category = f"http-{answer.status}"
                detail.append(answer.body[:200].decode("utf-8", "replace"))
        if answer.note == "timeout" and req.complete:
            category = category or "hang"
        if MARKER in answer.body:
            category = category or "leak"
            detail.append("the answer holds the sentinel's bytes (a file outside the data folder)")
        if not req.complete:  # the server learns of the disconnect after the socket closed
            time.sleep(0.3)
        log = s.new_log()
        if "Traceback" in log:
            category = category or "traceback-in-log"
            detail += [x for x in log.splitlines() if x.strip()][-4:]
        healthy = s.healthy()
        if not healthy:
            category = category or ("server-died" if not s.server.alive() else "unhealthy")
            detail.append(s.server.output()[-600:])
        wrote = changes(before[0], snapshot(s.outside))
        wrote += [f"+{x}" for x in sorted(set(os.listdir(job)) - set(before[1]))]
        if wrote:
            category = category or "wrote-outside"
            detail.append(f"outside the data folder: {', '.join(wrote)[:280]}")
        status = answer.status if answer.status is not None else (answer.note or "closed")
        outcome = Outcome(None if category == "hang" else 0, "", "\n".join(detail), answer.seconds,
                          "server", f"status {status}")  # fmt: skip
        with self.lock:
            self.summary.cases["server"] += 1
            self.summary.busy["server"] += answer.seconds
            self.summary.outcomes[f"server:{status}"] += 1
            if category:
                f = Failure("server", seed, number, f"{req.mutation} -> {status}", category,
                            outcome, detail)  # fmt: skip
                self.summary.failed["server"] += 1
                self.summary.failures.append(f)
                self.log(f.report())
        if not healthy:  # the next cases get a server of their own
            s.stop()
            s.start()

    def run(self, seconds: float | None = None, cases=None, jobs: int = 1) -> Summary:
        return run_jobs(self, seconds, cases, jobs)


CONFIG = """\
clips: {{folder: {data}/clips, pre_roll: 1, post_roll: 1}}
replay: true
cameras:
  ice:
    source: {android}
  rpi:
    source: {rpi}
"""


class _Session:
    """One real server in ``job``: its data folder, the sentinel beside it, its log."""

    def __init__(self, job: Path, timeout: float) -> None:
        self.job, self.timeout = job, timeout
        self.data, self.outside = job / "data", job / "outside"
        self.server: ServerProcess | None = None
        self.client: httpx.Client | None = None
        self.offset = 0
        self.starts = 0

    def start(self) -> None:
        for folder in (self.data, self.outside):
            wipe(folder)
        make_outside(self.outside)
        (self.outside / "notes.txt").write_bytes(MARKER + b"\n")
        (self.outside / "secret.mp4").write_bytes(RPI.read_bytes()[:2048] + MARKER)
        (self.data / "tmp").mkdir(parents=True)
        config = self.job / "cameras.yml"
        config.write_text(CONFIG.format(data=self.data, android=ANDROID, rpi=RPI))
        (self.job / "home").mkdir(exist_ok=True)
        env = server_env(self.job / "cache", MODELS, TMPDIR=str(self.data / "tmp"),
                         HOME=str(self.job / "home"))  # fmt: skip
        env = {k: v for k, v in env.items() if k not in ("VIDCLS_DATA", "VIDCLS_VERBOSE")}
        self.starts += 1
        log = self.job / f"server{self.starts}.log"
        args = ["--config", str(config), "--data", str(self.data), "--log-level", "warning",
                "--upload-timeout", "3", "--max-upload-mb", "20"]  # fmt: skip
        self.server = ServerProcess(args, env, log).__enter__()
        deadline = time.monotonic() + 180  # a hang guard: the two clips are replayed at once
        while self.server.health().get("cameras") != "done":
            if time.monotonic() > deadline:
                raise RuntimeError(f"the cameras did not finish:\n{self.server.output()}")
            time.sleep(0.3)
        self.offset = 0
        self.new_log()
        self.client = httpx.Client(base_url=self.server.url, timeout=15)

    def stop(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.server is not None:
            self.server.__exit__()
            self.server = None
        _end_children(self.data)

    def fill(self) -> dict[str, str]:
        """What ``{clip}``, ``{teachclip}`` and ``{outside}`` stand for now."""
        out = {"outside": str(self.outside).lstrip("/"), "clip": "ice/none.mp4", "teachclip": "x"}
        with contextlib.suppress(httpx.HTTPError, ValueError, KeyError, IndexError, TypeError):
            events = self.client.get("/api/events").json()["events"]
            clip = next(e["clip"] for e in events if e.get("clip"))
            out["clip"] = clip.removeprefix("/media/")
        with contextlib.suppress(httpx.HTTPError, ValueError, KeyError, IndexError, TypeError):
            clips = self.client.get("/api/teach").json()["clips"]
            names = [c["name"] for c in clips] if isinstance(clips, list) else []
            if names:
                out["teachclip"] = quote(names[0])
        return out

    def new_log(self) -> str:
        text = self.server.output()
        new, self.offset = text[self.offset :], len(text)
        return new

    def healthy(self) -> bool:
        if not self.server.alive():
            return False
        try:
            return self.client.get("/healthz").status_code == 200
        except httpx.HTTPError:
            return False


def _end_children(data: Path) -> None:
    """Training jobs the server started run in sessions of their own: end those of this data
    folder (their command line names it), by process id."""
    needle = os.fsencode(str(data))
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if needle in cmd and b"vidcls.training.job" in cmd:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(pid), signal.SIGKILL)
