"""``vidcls serve --config``: the cameras run inside the server, their events reach
``GET /api/events`` (filters, pages), the clips and snapshots ``/media``, and the events page
in real headless Chromium lists them and plays a clip."""

from __future__ import annotations

import http.client
import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import av
import httpx
import pytest
from conftest import MODELS, ROOT, needs_shared, video
from serve_process import ServerProcess, raw_get, server_env

pytestmark = [
    needs_shared,
    pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="no chromium"),
]
pytest.importorskip("fastapi", reason="the server needs: pip install -e '.[serve]'")
playwright = pytest.importorskip("playwright.sync_api")
HANG = 120  # seconds: a hang guard for one request, not a measure of speed


class Hook(BaseHTTPRequestHandler):
    """A webhook receiver on loopback: keeps each POSTed JSON document."""

    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def hook():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def server(tmp_path_factory, hook):
    tmp = tmp_path_factory.mktemp("events")
    config = tmp / "cameras.yml"
    config.write_text(
        f"""\
clips: {{folder: {tmp / "clips"}, pre_roll: 2, post_roll: 1}}
webhook: {hook}
replay: true
cameras:
  ice:
    source: {video("carving_ice_android.mp4")}
  rpi:
    source: {video("carving_ice_rpi.mp4")}
  gone:
    source: {tmp / "missing.mp4"}
"""
    )
    args = ["--config", str(config), "--data", str(tmp / "data"), "--log-level", "warning"]
    args += ["--upload-timeout", "600"]  # an upload refused at once is not one that stalled
    with ServerProcess(args, server_env(tmp / "cache", MODELS), tmp / "server.log") as s:
        s.data = tmp / "data"
        deadline = time.monotonic() + 120  # a hang guard: the files are replayed at once
        while httpx.get(s.url + "/healthz").json()["cameras"] != "done":  # both files ended
            assert time.monotonic() < deadline, s.output()
            time.sleep(0.5)
        yield s
    assert "Traceback" not in s.output(), s.output()
    assert "camera gone" in s.output()


def test_the_api_lists_the_events_newest_first_with_filters_and_pages(server):
    events = httpx.get(server.url + "/api/events").json()["events"]
    assert {(e["source"], e["label"]) for e in events} >= {
        ("ice", "carving ice"),
        ("rpi", "carving ice"),
    }  # (a cold start may add a short segment of something else)
    carving = [e for e in events if e["label"] == "carving ice"]
    assert sorted(e["source"] for e in carving) == ["ice", "rpi"]  # one segment each
    assert [e["id"] for e in events] == sorted((e["id"] for e in events), reverse=True)
    for e in carving:
        assert e["zone"] is None and e["peak"] > 0.9 and e["duration"] > 2
        assert e["clip"].startswith(f"/media/{e['source']}/") and e["clip"].endswith(".mp4")
    only = httpx.get(server.url + "/api/events", params={"source": "rpi"}).json()
    assert {e["source"] for e in only["events"]} == {"rpi"}
    label = httpx.get(server.url + "/api/events", params={"label": "carving ice"}).json()
    assert [e["id"] for e in label["events"]] == [e["id"] for e in carving]
    first = httpx.get(server.url + "/api/events", params={"limit": 1}).json()
    assert len(first["events"]) == 1 and first["next"] == first["events"][0]["id"]
    rest = httpx.get(server.url + "/api/events", params={"before": first["next"]}).json()
    assert [e["id"] for e in rest["events"]] == [e["id"] for e in events[1:]]
    later = httpx.get(server.url + "/api/events", params={"since": "2099-01-01T00:00:00Z"})
    assert later.json()["events"] == []
    bad = httpx.get(server.url + "/api/events", params={"until": "yesterday"})
    assert bad.status_code == 422 and "until" in bad.json()["detail"]


def test_clips_and_snapshots_are_served_and_nothing_else(server):
    params = {"source": "ice", "label": "carving ice"}
    event = httpx.get(server.url + "/api/events", params=params).json()["events"][0]
    clip = httpx.get(server.url + event["clip"])
    assert clip.status_code == 200 and clip.headers["content-type"] == "video/mp4"
    with av.open(io.BytesIO(clip.content)) as c:
        v = c.streams.video[0]
        assert (v.codec_context.name, v.width, v.height) == ("h264", 360, 360)
        assert sum(1 for _ in c.decode(v)) == 200  # the whole file: the segment lasts to its end
    snap = httpx.get(server.url + event["snapshot"])
    assert snap.headers["content-type"] == "image/jpeg" and snap.content[:2] == b"\xff\xd8"
    conn = http.client.HTTPConnection("127.0.0.1", server.port)
    for path in ("/media/../cameras.yml", "/media/%2e%2e/cameras.yml", "/media/ice/nope.mp4"):
        conn.request("GET", path)
        r = conn.getresponse()
        r.read()
        assert r.status == 404, path


def test_the_webhook_gets_the_clips_web_address(server):
    ends = [e for e in Hook.received if e["event"] == "end"]
    assert {e["source"] for e in ends if e["segment"]["label"] == "carving ice"} == {"ice", "rpi"}
    for e in ends:
        assert e["clip"].startswith(server.url + "/media/") and e["clip"].endswith(".mp4")
        assert httpx.get(e["clip"]).status_code == 200
        assert httpx.get(e["snapshot"]).headers["content-type"] == "image/jpeg"


def test_the_store_and_the_api_carry_the_webhooks_documents_and_ids(server):
    hooked = {e["event_id"]: e for e in Hook.received if e["event"] == "end"}
    listed = httpx.get(server.url + "/api/events", params={"limit": 500}).json()["events"]
    assert sorted(e["event_id"] for e in listed) == sorted(hooked)  # each end once, one id
    starts = {e["event_id"] for e in Hook.received if e["event"] == "start"}
    for e in listed:  # the same document, but the clip's address (the webhook's is absolute)
        sent = hooked[e["event_id"]]
        assert {k: e[k] for k in sent if k not in ("clip", "snapshot")} == {
            k: v for k, v in sent.items() if k not in ("clip", "snapshot")
        }
        assert sent["clip"] == server.url + e["clip"] and e["start_id"] in starts
        assert e["interrupted"] is False  # the files ended: nothing was lost


def test_the_events_page_lists_them_and_plays_a_clip(server):
    args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--autoplay-policy=no-user-gesture-required"]  # fmt: skip
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=args)
        page = browser.new_page(viewport={"width": 900, "height": 900})
        page.set_default_timeout(120_000)  # waits end when their condition holds (hang guard)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server.url + "/events")
        page.wait_for_selector("#list li.event")
        labels = page.locator("#list li .label").all_inner_texts()
        count = len(httpx.get(server.url + "/api/events").json()["events"])
        assert len(labels) == count and sum(t.startswith("carving ice 0.9") for t in labels) == 2
        assert page.evaluate("document.querySelector('#list li img').naturalWidth") > 0
        page.select_option("#source", "rpi")
        page.fill("#label", "carving ice")
        page.wait_for_function(
            "() => [...document.querySelectorAll('#list li .where')].map(e => e.textContent)"
            ".join() === 'rpi'"
        )
        assert "rpi" in page.inner_text("#list li .where")
        page.click("#list li.event")
        page.wait_for_function(
            "() => { const v = document.querySelector('#clip'); "
            "return v.readyState >= 2 && v.videoWidth === 172; }",
            timeout=120_000,  # a hang guard: the wait ends when the clip plays
        )
        (ROOT / "test-artifacts").mkdir(exist_ok=True)
        page.screenshot(path=ROOT / "test-artifacts" / "web_events.png")
        browser.close()
    assert errors == []


# -- hostile requests (issue 28): a 4xx with a clear JSON detail, nothing in the log ---------

LONG_PATH = "/media/" + ("d" * 200 + "/") * 25 + "x.mp4"  # over PATH_MAX once resolved


def get(server, path: str) -> tuple[int, dict]:
    return raw_get(server.port, path, HANG)


@pytest.mark.parametrize(
    "path",
    [
        "/media/ice/x%00.mp4",
        "/media/..%00/secret.mp4",
        "/media/%00",
        "/media/" + "a" * 300 + ".mp4",
        "/media/ice/" + "%C3%A9" * 200 + ".jpg",  # 200 characters, 400 bytes
        LONG_PATH,
    ],
    ids=["nul", "nul-up", "only-nul", "long-name", "long-utf8-name", "long-path"],
)
def test_media_paths_with_nul_or_past_the_limits_are_404(server, path):
    status, body = get(server, path)
    assert (status, body) == (404, {"detail": "no such clip or snapshot"})


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("before=99999999999999999999999999", "before: Input should be less than or equal to"),
        ("before=-99999999999999999999999999", "before: Input should be greater than or equal"),
        ("before=-1", "before: Input should be greater than or equal to 0"),
        ("since=1e400", "since: not a time"),
        ("until=nan", "until: not a time"),
        ("since=99999-01-01", "since: not a time"),
    ],
)
def test_event_queries_out_of_range_are_422_with_the_parameter_named(server, query, says):
    status, body = get(server, "/api/events?" + query)
    assert status == 422 and says in body["detail"], body


def test_a_teach_upload_declaring_a_huge_length_is_refused_at_once(server):
    """413 before any of the body is sent (the server waits 600 s for a stalled upload)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=HANG)
    conn.putrequest("POST", "/api/teach/upload?filename=big.mp4")
    conn.putheader("Content-Type", "video/mp4")
    conn.putheader("Content-Length", "1000000000000")
    conn.endheaders()  # and not a byte of the body
    r = conn.getresponse()
    detail = json.loads(r.read())["detail"]
    conn.close()
    assert r.status == 413 and detail == "upload larger than the server's limit"


def test_teach_errors_name_the_clients_file_never_the_servers_paths(server):
    notes = httpx.post(
        server.url + "/api/teach/upload",
        files={"file": ("notes.mp4", b"notes, not a video" * 100, "video/mp4")},
        timeout=HANG,
    )
    detail = notes.json()["detail"]
    assert notes.status_code == 400 and detail.startswith("notes.mp4: "), detail
    assert str(server.data) not in detail and ".upload-" not in detail and "/tmp" not in detail
    good = httpx.post(
        server.url + "/api/teach/upload",
        files={"file": ("clip.mp4", video("carving_ice_rpi.mp4").read_bytes(), "video/mp4")},
        timeout=HANG,
    )
    assert good.status_code == 200, good.text
    name = good.json()["name"]
    for label, status, says in [
        ("a\nb", 400, "has a line break or a control character"),
        ("x" * 300, 400, "over 100 characters"),
        ("unlabelled", 400, "'unlabelled' is for clips still to label"),
        (["a", "b"], 422, "label: Input should be a valid string"),
    ]:
        r = httpx.post(f"{server.url}/api/teach/clips/{name}", json={"label": label}, timeout=HANG)
        assert r.status_code == status and says in r.json()["detail"], (label, r.text)
    clips = httpx.get(server.url + "/api/teach", timeout=HANG).json()["clips"]
    assert clips["labels"] == [] and name in clips["unlabelled"]


@pytest.mark.parametrize("route", ["/api/teach/upload", "/v1/classify"])
def test_a_form_with_a_boundary_over_256_bytes_is_400(server, route):
    """(found by tests/fuzz_surfaces.py) python-multipart refuses such a boundary when its
    parser is made: a malformed form, not a 500."""
    boundary = "b" * 5000
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=file; filename=a.mp4\r\n\r\n"
        f"data\r\n--{boundary}--\r\n"
    ).encode()
    kind = f"multipart/form-data; boundary={boundary}"
    r = httpx.post(server.url + route, content=body, headers={"content-type": kind}, timeout=HANG)
    assert r.status_code == 400, r.text
    assert r.json()["detail"].startswith("malformed multipart/form-data (Boundary length 5000")
