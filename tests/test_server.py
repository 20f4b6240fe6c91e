"""The web server as a real process on loopback: HTTP API, docs, WebSocket streams.

Uploads under stress (bad files, caps, stalled and concurrent clients, bugs) are in
test_server_uploads.py.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import subprocess
import sys
import time

import av
import cv2
import httpx
import numpy as np
import pytest
from conftest import A0, CUSTOM, MODELS, needs_shared, video
from serve_process import ServerProcess, server_env

from vidcls import ClassifierOptions, VidclsError, VideoClassifier, classify_video
from vidcls.serve import ServeOptions

websockets = pytest.importorskip("websockets")
pytest.importorskip("fastapi")
from websockets.asyncio.client import connect  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402

from vidcls.serve.schema import ClassifyResponse, VideoResultModel  # noqa: E402

pytestmark = needs_shared
MAX_STREAMS = 20
CLIPS = ("carving_ice_rpi.mp4", "carving_ice_android.mp4", "example_video01.mp4", "eye_makeup.avi")
CUSTOM_ID = CUSTOM.name


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("server")
    args = ["--model", "a0", "--model", str(CUSTOM), "--max-upload-mb", "1"]
    args += ["--max-streams", str(MAX_STREAMS), "--max-jobs", "2", "--log-level", "warning"]
    with ServerProcess(args, server_env(tmp / "cache", MODELS), tmp / "server.log") as s:
        yield s
    assert "Traceback" not in s.output(), s.output()


def ws_url(server, query: str = "") -> str:
    return server.url.replace("http://", "ws://") + "/v1/stream" + query


def test_health_models_pages_and_openapi(server):
    health = httpx.get(server.url + "/healthz").json()
    assert health["status"] == "ok" and health["max_streams"] == MAX_STREAMS
    info = httpx.get(server.url + "/v1/models").json()
    assert info["default"] == "a0"
    ids = [m["id"] for m in info["models"]]
    assert ids[:2] == ["a0", CUSTOM_ID]
    custom = info["models"][1]
    assert custom["classes"] == 7 and custom["input"] == [172, 172] and custom["kind"] == "file"
    limits = info["limits"]
    assert limits["max_upload_bytes"] == 1 << 20 and limits["max_jobs"] == 2
    assert limits["max_uploads"] == 8 and limits["upload_timeout"] == 30
    assert str(CUSTOM.parent) not in json.dumps(info)  # clients see ids, not server paths
    schema = httpx.get(server.url + "/openapi.json").json()
    assert {"/v1/classify", "/v1/models", "/healthz"} <= set(schema["paths"])
    body = schema["paths"]["/v1/classify"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in body
    for page, marker in (("/", "live.js"), ("/file", "file.js"), ("/static/live.js", "WebSocket")):
        r = httpx.get(server.url + page)
        assert r.status_code == 200 and marker in r.text, page


def test_api_docs_load_nothing_from_elsewhere(server):
    # Swagger UI and ReDoc take their scripts and styles from this server: no CDN, so /docs
    # works without internet (the e2e test renders it in a browser with no network).
    for page in ("/docs", "/redoc"):
        r = httpx.get(server.url + page)
        assert r.status_code == 200, page
        urls = re.findall(r'(?:src|href|spec-url)="([^"]+)"', r.text)
        urls += re.findall(r"url: '([^']+)'", r.text)
        assert any(u.endswith(".js") for u in urls) and "/openapi.json" in urls, urls
        for url in urls:
            assert url.startswith("/") and not url.startswith("//"), (page, url)
            assert httpx.get(server.url + url).status_code == 200, url
        assert "://" not in r.text.replace("window.location.origin", ""), r.text


def resolve(schema: dict, node: dict) -> dict:
    """``node`` with its ``$ref`` (to ``#/components/schemas/...``) followed."""
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def test_openapi_describes_the_classification_from_the_result_model(server):
    schema = httpx.get(server.url + "/openapi.json").json()
    post = schema["paths"]["/v1/classify"]["post"]
    ok = resolve(schema, post["responses"]["200"]["content"]["application/json"]["schema"])
    fields = set(ok["properties"])
    assert {"source", "model", "fps", "frames", "summary", "window", "segments"} <= fields
    assert {"plot"} == fields - set(VideoResultModel.model_fields)
    assert {"source", "model", "fps", "frames", "summary"} <= set(ok["required"])
    frame = resolve(schema, ok["properties"]["frames"]["items"])
    assert {"time", "top", "infer_ms"} <= set(frame["properties"])
    category = resolve(schema, frame["properties"]["top"]["items"])
    assert set(category["properties"]) == {"label", "index", "score"}
    fps = {t.get("type") for t in ok["properties"]["fps"]["anyOf"]}
    assert fps == {"number", "null"}  # None: every decoded frame (no more "native" string)
    for status in ("400", "403", "408", "413", "422", "500", "503"):
        error = post["responses"][status]["content"]["application/json"]["schema"]
        assert resolve(schema, error)["properties"] == {
            "detail": {"title": "Detail", "type": "string"}
        }
    for path, name in (("/healthz", "Health"), ("/v1/models", "Models")):
        got = schema["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
        assert got["schema"]["$ref"].endswith("/" + name)


def test_classify_over_http_equals_the_cli_and_the_library(server, tmp_path):
    clip = video("carving_ice_rpi.mp4")
    with open(clip, "rb") as f:
        r = httpx.post(server.url + "/v1/classify", files={"file": (clip.name, f)}, timeout=60)
    assert r.status_code == 200, r.text
    doc = r.json()
    ClassifyResponse.model_validate(doc)  # the schema describes what is sent (no extra keys)
    # What `vidcls classify --format json` prints: the result document.
    cli = subprocess.run(
        [sys.executable, "-m", "vidcls.cli", "classify", str(clip), "--format", "json"],
        capture_output=True,
        text=True,
        env=server.env,
        check=True,
    )
    expected = json.loads(cli.stdout)
    assert expected == classify_video(clip, model="a0").to_dict()
    assert doc["summary"] == expected["summary"]
    assert doc["summary"]["top"][0]["label"] == "carving ice"
    assert doc == {**expected, "source": clip.name}  # frames, fps, model too
    assert doc["fps"] == 5.0 and len(doc["frames"]) > 20

    # The raw body works as well; segments and the plot on request.
    r = httpx.post(
        server.url + "/v1/classify",
        params={"filename": clip.name, "segments": "true", "plot": "true", "top_k": 3},
        content=clip.read_bytes(),
        headers={"content-type": "video/mp4"},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    doc = r.json()
    ClassifyResponse.model_validate(doc)
    assert doc["summary"]["top"] == expected["summary"]["top"][:3]
    assert doc["segments"][0]["label"] == "carving ice"
    png = base64.b64decode(doc["plot"].removeprefix("data:image/png;base64,"))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"

    # fps=native feeds every decoded frame; the JSON says so with a null fps.
    r = httpx.post(
        server.url + "/v1/classify",
        params={"fps": "native", "window": 2},
        files={"file": (clip.name, clip.read_bytes())},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    doc = r.json()
    native = classify_video(clip, model="a0", fps=0, window=2).to_dict()
    assert doc == {**native, "source": clip.name}
    assert doc["fps"] is None and doc["window"] == 2 and len(doc["frames"]) == 131


def test_classify_with_a_custom_model(server):
    clip = video("carving_ice_rpi.mp4")
    r = httpx.post(
        server.url + "/v1/classify",
        params={"model": CUSTOM_ID, "summary_only": "true", "top_k": 0},
        files={"file": (clip.name, clip.read_bytes())},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    doc = r.json()
    labels = CUSTOM.with_name("labels.txt").read_text().split()
    assert doc["model"] == CUSTOM_ID and doc["frames"] == []
    assert sorted(c["label"] for c in doc["summary"]["top"]) == sorted(labels)


# -- WebSocket streams -----------------------------------------------------------------


def jpeg(rgb: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    return data.tobytes()


def clip_frames(name: str, step: int = 6, limit: int = 16) -> list[np.ndarray]:
    with av.open(str(video(name))) as c:
        frames = [
            f.to_ndarray(format="rgb24") for i, f in enumerate(c.decode(video=0)) if i % step == 0
        ]
    return frames[:limit]


def reference_tops(model_path, sequences: list[list[bytes]]) -> list[list[list[dict]]]:
    """What a fresh classifier, run alone, gives for each JPEG sequence (decoded the same way)."""
    base = VideoClassifier.create_from_options(
        ClassifierOptions(model=model_path, top_k=3, threads=1)
    )
    out = []
    for seq in sequences:
        classifier = base.new_stream()
        tops = []
        for data in seq:
            bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            top = classifier.classify(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            tops.append([c.to_dict() for c in top])
        out.append(tops)
    return out


def same_top(got: list[dict], want: list[dict]) -> bool:
    return [c["label"] for c in got] == [c["label"] for c in want] and all(
        abs(g["score"] - w["score"]) <= 1e-5 for g, w in zip(got, want, strict=True)
    )


def test_malformed_websocket_messages_get_errors_and_the_stream_goes_on(server):
    frames = [jpeg(f) for f in clip_frames("carving_ice_rpi.mp4", limit=3)]
    want = reference_tops(A0, [frames])[0]

    async def main():
        async with connect(ws_url(server)) as ws:
            ready = json.loads(await ws.recv())
            assert ready["type"] == "ready" and ready["model"] == "a0" and ready["fps"] == 5
            bad = [
                ("not json", "control"),
                (json.dumps({"type": "dance"}), "control"),
                (json.dumps(["reset"]), "control"),
                (json.dumps({"type": "config", "threads": 99}), "control"),
                (json.dumps({"type": "config", "threads": "two"}), "control"),
                (json.dumps({"type": "config", "model": "/etc/passwd"}), "control"),
                (b"not a jpeg at all", "frame"),
                (frames[0][: len(frames[0]) // 3], "frame"),  # truncated JPEG
                (b"\xff\xd8\xff\xc0\x00\x11\x08\xff\xff\xff\xff" + b"\x00" * 64, "frame"),  # huge
                (b"", "frame"),
            ]
            for message, reply_to in bad:
                await ws.send(message)
                reply = json.loads(await ws.recv())
                assert reply["type"] == "error" and reply["reply_to"] == reply_to, reply
                assert reply["message"] and not reply["fatal"]
            got = []
            for data in frames:  # the errors fed nothing: results equal a fresh stream's
                await ws.send(data)
                got.append(json.loads(await ws.recv()))
            assert [r["frames"] for r in got] == [1, 2, 3]
            assert all(same_top(r["top"], w) for r, w in zip(got, want, strict=True))
            assert got[-1]["infer_ms"] > 0 and got[-1]["decode_ms"] > 0
            assert got[0]["time"] == 0 < got[1]["time"] < got[2]["time"]
            assert got[0]["size"] == [172, 172] and got[-1]["input_fps"] > 0
            await ws.send(json.dumps({"type": "reset"}))
            assert json.loads(await ws.recv()) == {"type": "reset", "frames": 0}
            await ws.send(frames[0])
            again = json.loads(await ws.recv())
            assert again["frames"] == 1 and same_top(again["top"], want[0])
            await ws.send(json.dumps({"type": "config", "model": CUSTOM_ID}))
            config = json.loads(await ws.recv())
            assert config["type"] == "config" and config["classes"] == 7
            await ws.send(frames[0])
            custom = json.loads(await ws.recv())
            labels = CUSTOM.with_name("labels.txt").read_text().split()
            assert custom["frames"] == 1 and custom["top"][0]["label"] in labels

        refused = [
            ({"origin": "http://elsewhere.example"}, "", "cross-origin"),
            ({}, "?model=nope", "unknown model 'nope'"),
            ({}, "?threads=many", "threads must be an integer"),
            ({}, "?threads=0", "threads must be from 1"),
        ]
        for options, query, words in refused:
            async with connect(ws_url(server, query), **options) as ws:
                refusal = json.loads(await ws.recv())
                assert refusal["fatal"] and words in refusal["message"], refusal
                with pytest.raises(ConnectionClosed) as closed:
                    await ws.recv()
                assert closed.value.rcvd.code == 1008

    asyncio.run(main())
    assert server.alive()


def test_concurrent_streams_get_their_own_unmixed_results_and_extra_ones_are_refused(server):
    # 20 different sequences: 4 clips x 5 starting points, 8 frames each.
    clips = {name: [jpeg(f) for f in clip_frames(name, step=3, limit=12)] for name in CLIPS}
    sequences = [clips[CLIPS[i % 4]][i // 4 : i // 4 + 8] for i in range(MAX_STREAMS)]
    want = reference_tops(A0, sequences)
    assert len({json.dumps(w[-1]) for w in want}) == MAX_STREAMS  # all distinguishable

    async def main():
        connected, go = asyncio.Event(), asyncio.Event()
        ready_count = 0

        async def client(seq: list[bytes]) -> list[dict]:
            nonlocal ready_count
            async with connect(ws_url(server, "?threads=1")) as ws:
                assert json.loads(await ws.recv())["type"] == "ready"
                ready_count += 1
                if ready_count == MAX_STREAMS:
                    connected.set()
                await go.wait()  # every stream is open, and the 21st refused, before any frame
                got = []
                for data in seq:  # one at a time (none skipped); the server interleaves all 20
                    await ws.send(data)
                    got.append(json.loads(await ws.recv()))
                return got

        tasks = [asyncio.create_task(client(seq)) for seq in sequences]
        await asyncio.wait_for(connected.wait(), 120)  # hang guards, these waits
        async with connect(ws_url(server)) as extra:  # the 21st: refused, clearly
            refusal = json.loads(await asyncio.wait_for(extra.recv(), 10))
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(extra.recv(), 10)
        go.set()
        return refusal, closed.value.rcvd, await asyncio.wait_for(asyncio.gather(*tasks), 300)

    refusal, close, results = asyncio.run(main())
    assert refusal["type"] == "error" and refusal["fatal"]
    assert "busy" in refusal["message"] and str(MAX_STREAMS) in refusal["message"]
    assert close.code == 1013 and "busy" in close.reason
    for i, (got, expected) in enumerate(zip(results, want, strict=True)):
        assert [r["type"] for r in got] == ["result"] * 8, got
        assert [r["frames"] for r in got] == list(range(1, 9)), i
        for r, w in zip(got, expected, strict=True):
            assert same_top(r["top"], w), (i, r["top"], w)
    deadline = time.monotonic() + 120  # the server notices the closes (a hang guard)
    while httpx.get(server.url + "/healthz").json()["streams"] != 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_idle_streams_are_closed_and_bad_models_stop_the_start(tmp_path):
    args = ["--idle-timeout", "0.5", "--log-level", "warning"]
    with ServerProcess(args, server_env(tmp_path / "cache", MODELS), tmp_path / "log") as s:

        async def main():
            async with connect(ws_url(s)) as ws:
                assert json.loads(await ws.recv())["type"] == "ready"
                idle = json.loads(await asyncio.wait_for(ws.recv(), 10))
                assert idle["fatal"] and "0.5 s without a message" in idle["message"]
                with pytest.raises(ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 10)

        asyncio.run(main())
        assert httpx.get(s.url + "/healthz").json()["streams"] == 0

    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a model")
    run = subprocess.run(
        [sys.executable, "-m", "vidcls.serve", "--model", str(bad), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2 and "bad.tflite: not a TFLite model file" in run.stderr
    assert "Traceback" not in run.stderr


def test_serve_options_are_checked_when_made():
    assert ServeOptions(threads=4).max_threads >= 4  # the CPU count, or threads if more
    assert ServeOptions(model="a0").model == ["a0"]
    assert ServeOptions(max_upload_mb=0.5).max_upload_bytes == 1 << 19
    bad = [
        ({"threads": 0}, "threads must be 1 or more"),
        ({"threads": 3, "max_threads": 2}, "threads (3) above max_threads (2)"),
        ({"max_streams": 0}, "max_streams"),
        ({"max_jobs": 1.5}, "max_jobs"),
        ({"max_uploads": 0}, "max_uploads"),
        ({"upload_timeout": 0}, "upload_timeout"),
        ({"upload_timeout": float("nan")}, "upload_timeout"),
        ({"max_upload_mb": 0}, "max_upload_mb"),
        ({"idle_timeout": float("inf")}, "idle_timeout"),
        ({"window": -1}, "window"),
        ({"top_k": -1}, "top_k"),
        ({"certfile": "cert.pem"}, "certfile and keyfile go together"),
        ({"log_level": "loud"}, "log_level"),
        ({"model": []}, "no model"),
    ]
    for kwargs, words in bad:
        with pytest.raises(VidclsError) as e:
            ServeOptions(**kwargs)
        assert words in str(e.value), kwargs
