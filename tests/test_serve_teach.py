"""The teaching page end to end, in real headless Chromium, on a real server with sign-in
watching four looping cameras: an admin signs in, uploads clips, labels them with the keyboard
(one discarded), checks them, trains with the phases shown as they go, reads the report,
deploys the model to the running cameras and undoes it (no camera lost, every segment closed)
and deploys it again; a viewer signs in, plays an event's clip, finds no way to teach or
deploy, signs out, and the clip's address answers 401; everything is still there after the
server restarts."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from conftest import MODELS, ROOT, SHARED, needs_shared, video
from serve_process import ServerProcess, server_env

pytestmark = [
    needs_shared,
    pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="no chromium"),
]
pytest.importorskip("fastapi", reason="the server needs: pip install -e '.[serve]'")
playwright = pytest.importorskip("playwright.sync_api")

BASKETBALL = SHARED / "datasets" / "basketball"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--autoplay-policy=no-user-gesture-required"]  # fmt: skip
SOURCES = ["ice", "rpi", "eye", "rope"]
TAUGHT = {"dribbling", "shooting"}
HANG = 600


class Starts(BaseHTTPRequestHandler):
    """A webhook receiver: ``(source, label)`` of each segment start, in order."""

    seen: list[tuple[str, str]] = []

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        doc = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if doc["event"] == "start":
            Starts.seen.append((doc["source"], doc["segment"]["label"]))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def started(labels: set[str], after: int = 0) -> set[str]:
    """The cameras whose segment of one of ``labels`` started (past the first ``after``)."""
    return {source for source, label in Starts.seen[after:] if label in labels}


ADMIN, VIEWER = ("ada", "ada-password-1"), ("vic", "vic-password-1")
AUTH: dict[str, str] = {}  # the admin's API token, for the test's own requests


def events(server, since: float = 0) -> list[dict]:
    query = {"limit": 500, "since": since}
    return httpx.get(server.url + "/api/events", params=query, headers=AUTH).json()["events"]


def add_users(data: Path) -> None:
    """The admin and the viewer, as a user adds them; the admin's token for the test."""
    from vidcls.serve.users import Users

    users = Users(data)
    users.add(*ADMIN, role="admin")
    users.add(*VIEWER, role="viewer")
    AUTH["Authorization"] = "Bearer " + users.new_token(ADMIN[0])[1]


def sign_in(page, user: tuple[str, str]) -> None:
    """Fill the sign-in page the server sent the browser to, and wait to be let through."""
    page.wait_for_selector("#signin")
    page.fill("#name", user[0])
    page.fill("#password", user[1])
    page.click("#go")
    page.wait_for_function("() => !location.pathname.endsWith('/login')")


def uploads(tmp: Path) -> list[Path]:
    """Five clips of each taught class and one to discard, named by class."""
    out = []
    for cls in ("dribbling", "shooting", "passing"):
        for p in sorted(BASKETBALL.joinpath(cls).glob("*.mp4"))[: 1 if cls == "passing" else 5]:
            out.append(tmp / f"{cls}-{p.name}")
            out[-1].write_bytes(p.read_bytes())
    return out


def wait_for(check, what: str, timeout: float = HANG):
    deadline = time.monotonic() + timeout
    while not (got := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.25)
    return got


def test_teach_label_train_deploy_undo_and_restart(tmp_path):
    config = tmp_path / "cameras.yml"
    clips = ["carving_ice_android.mp4", "carving_ice_rpi.mp4", "eye_makeup.avi"]
    cameras = "\n".join(
        f"  {name}: {{source: {video(clip)}}}"
        for name, clip in zip(SOURCES, [*clips, "example_video01.mp4"], strict=True)
    )
    config.write_text(
        f"clips: {{folder: {tmp_path / 'clips'}, pre_roll: 1, post_roll: 1}}\n"
        f"loop: true\nmin_duration: 0.5\ncameras:\n{cameras}\n"
    )
    Starts.seen.clear()
    hook = ThreadingHTTPServer(("127.0.0.1", 0), Starts)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    with config.open("a") as f:
        f.write(f"webhook: http://127.0.0.1:{hook.server_port}/hook\n")
    try:
        run_the_page(config, tmp_path)
    finally:
        hook.shutdown()
        hook.server_close()


def run_the_page(config: Path, tmp_path: Path) -> None:
    args = ["--config", str(config), "--data", str(tmp_path / "data"), "--log-level", "warning"]
    args.append("--auth")
    add_users(tmp_path / "data")
    env = server_env(tmp_path / "cache", MODELS)
    files = uploads(tmp_path)
    with ServerProcess(args, env, tmp_path / "server.log") as server:
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium", headless=True, args=ARGS
            )
            page = browser.new_page(viewport={"width": 1000, "height": 1400})
            page.set_default_timeout(HANG * 1000)  # waits end when their condition holds
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server.url + "/teach")  # not signed in: to the sign-in page, and back
            sign_in(page, ADMIN)
            assert page.url == server.url + "/teach"
            page.wait_for_selector("#none:not([hidden])")
            page.set_input_files("#upload", [str(f) for f in files])
            page.wait_for_function(
                "() => document.querySelector('#left').textContent === '11 waiting'"
            )
            label_all_with_the_keyboard(page)
            page.wait_for_function(
                "() => document.querySelector('#left').textContent === '0 waiting'"
            )
            counts = page.locator("#labelled strong").all_inner_texts()
            assert counts == ["dribbling (5)", "shooting (5)"]
            page.click("#check")
            page.wait_for_selector("#findings li")
            assert "class dribbling has 5 clips" in page.inner_text("#findings")
            # Train: the phases show as they go, then the report.
            page.fill("#views", "2")
            page.click("#train")
            page.wait_for_selector("#phases li", timeout=HANG * 1000)
            page.wait_for_function(
                "() => document.querySelector('#job-state').textContent === 'done'",
                timeout=HANG * 1000,
            )
            phases = page.locator("#phases .phase").all_inner_texts()
            assert phases == ["features", "fitting", "writing", "verifying"]
            report = page.inner_text("#report")
            assert "cross-validated accuracy" in report and "int8 check: agrees" in report
            assert page.locator("table.confusion tr").count() == 3  # a header, two classes
            # Deploy while the four cameras run; then undo: every source is still watched and
            # its segments under each model closed, their events stored.
            # The looping carving-ice cameras have a segment open (it never ends by itself).
            wait_for(lambda: started({"carving ice"}) >= {"ice", "rpi"}, "carving ice started")
            before_deploy = len(Starts.seen)
            page.click("#deploy")
            page.wait_for_function(
                "() => document.querySelector('#deployed').textContent.includes('job')"
            )
            wait_for(  # closed by the switch
                lambda: (
                    {e["source"] for e in events(server) if e["label"] == "carving ice"}
                    >= {"ice", "rpi"}
                ),
                "the old model's segments closed by the deploy",
                timeout=HANG,
            )
            wait_for(  # every camera's segment under the taught model is open
                lambda: started(TAUGHT, before_deploy) >= set(SOURCES), "taught segments started"
            )
            page.click("#undo")
            page.wait_for_function("() => document.querySelector('#undo').hidden")
            taught = wait_for(
                lambda: (
                    # Only the taught model has these labels. Not since=the deploy: a row's
                    # start is its segment's, from the frame's capture, and the first frame the
                    # new model classified can be older than the click.
                    {e["source"] for e in events(server) if e["label"] in TAUGHT} >= set(SOURCES)
                ),
                "every camera's taught segment closed by the undo",
                timeout=HANG,
            )
            assert taught
            assert server.health()["cameras"] == "watching"
            page.click("#deploy")  # deployed again, for the restart
            page.wait_for_function(
                "() => document.querySelector('#deployed').textContent.includes('job')"
            )
            (ROOT / "test-artifacts").mkdir(exist_ok=True)
            page.screenshot(path=ROOT / "test-artifacts" / "web_teach.png", full_page=True)
            assert "POST /api/teach/jobs/" in page.inner_text("#audit")  # who deployed
            jobs = httpx.get(server.url + "/api/teach", headers=AUTH).json()["jobs"]
            as_a_viewer(browser, server, jobs[0]["id"], errors)
            browser.close()
        assert errors == []
        before = httpx.get(server.url + "/api/teach", headers=AUTH).json()
    assert "Traceback" not in server.output(), server.output()
    with ServerProcess(args, env, tmp_path / "server2.log") as server:
        after = httpx.get(server.url + "/api/teach", headers=AUTH).json()
        assert after["clips"] == before["clips"] and after["deployed"] == before["deployed"]
        assert [j["state"] for j in after["jobs"]] == ["done"]
        # The cameras run the deployed model again: its labels come.
        wait_for(
            lambda: (
                httpx.get(server.url + "/v1/models", headers=AUTH)
                .json()["default"]
                .endswith(".tflite")
            ),
            "model",
        )
    assert "Traceback" not in server.output(), server.output()


def as_a_viewer(browser, server, job: str, errors: list[str]) -> None:
    """A viewer plays an event's clip, has no way to teach or deploy, signs out, and then the
    clip's address (and the old cookie) answer 401."""
    context = browser.new_context(viewport={"width": 900, "height": 900})
    page = context.new_page()
    page.set_default_timeout(HANG * 1000)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.url + "/events")
    sign_in(page, VIEWER)
    page.wait_for_selector("#list li.event")
    page.wait_for_selector("#signout")  # the header knows who is signed in
    assert page.locator('nav a[href="teach"]').count() == 0
    # A camera whose clips Chromium plays (the eye camera's AVI is MPEG-4 part 2, kept as is).
    page.select_option("#source", "rpi")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#list li .where')].every(e => e.textContent === "
        "'rpi') && document.querySelector('#list li.event')"
    )
    page.click("#list li.event >> nth=-1")  # the oldest listed: its clip long written
    page.wait_for_function(
        "() => { const v = document.querySelector('#clip'); "
        "return v.readyState >= 2 && v.videoWidth > 0; }"
    )
    clip = page.evaluate("document.querySelector('#clip').src")
    assert "/media/" in clip
    refused = page.evaluate(
        """async (job) => [
            (await fetch('teach')).status,
            (await fetch('api/teach')).status,
            (await fetch(`api/teach/jobs/${job}/deploy`, {method: 'POST'})).status,
            (await fetch('api/teach/undo', {method: 'POST'})).status,
        ]""",
        job,
    )
    assert refused == [403, 403, 403, 403]
    cookie = next(c["value"] for c in context.cookies() if c["name"] == "vidcls_session")
    assert context.request.get(clip).status == 200
    page.click("#signout")
    page.wait_for_selector("#signin")
    assert context.request.get(clip).status == 401
    old = httpx.get(clip, cookies={"vidcls_session": cookie})
    assert old.status_code == 401  # the session ended on the server, not just in the browser
    context.close()


def label_all_with_the_keyboard(page) -> None:
    """Each clip shown gets its class from its name: a new label typed the first time (n,
    then Enter), its number key after; the passing clip is discarded (x)."""
    known: list[str] = []
    for _ in range(11):
        name = page.inner_text("#name")
        cls = name.split("-")[0]
        if cls == "passing":
            page.keyboard.press("x")
        elif cls not in known:
            page.keyboard.press("n")
            page.keyboard.type(cls)
            page.keyboard.press("Enter")
            known.append(cls)
        else:
            page.keyboard.press(str(sorted(known).index(cls) + 1))
        page.wait_for_function(
            "name => document.querySelector('#name').textContent !== name "
            "|| !document.querySelector('#current').offsetParent",
            arg=name,
        )
