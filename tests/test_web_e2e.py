"""The web pages in real headless Chromium (Debian's, driven by Playwright) on a real server.

Chromium's fake camera plays a y4m made here from a shared clip, so the live page goes through
getUserMedia, the canvas, JPEG and the WebSocket exactly as with a real camera. The API docs
render with every request off this server refused, as without internet. Screenshots are kept
in test-artifacts/.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import av
import pytest
from conftest import MODELS, ROOT, needs_shared, video
from serve_process import ServerProcess, server_env

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
PHONE = {"width": 390, "height": 844}

pytestmark = [
    needs_shared,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason=f"{CHROMIUM} not found (apt install chromium)"
    ),
]
playwright = pytest.importorskip(
    "playwright.sync_api", reason="playwright (Python) not installed: pip install -e '.[test]'"
)
pytest.importorskip("fastapi", reason="the server needs: pip install -e '.[serve]'")

HANG = 120_000  # ms: only a page that never gets there waits this long
TOP_LABEL = "() => document.querySelector('#results li .label').textContent"


def make_y4m(src: Path, out: Path, size: int = 172) -> Path:
    """The clip as raw yuv420p frames at its own rate, which Chromium's fake camera loops."""
    with av.open(str(src)) as inp, av.open(str(out), "w", format="yuv4mpegpipe") as dst:
        stream = dst.add_stream("rawvideo", rate=inp.streams.video[0].average_rate)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for frame in inp.decode(video=0):
            frame = frame.reformat(width=size, height=size, format="yuv420p")
            frame.pts = None
            for packet in stream.encode(frame):
                dst.mux(packet)
        for packet in stream.encode():
            dst.mux(packet)
    return out


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("web")
    args = ["--log-level", "warning", "--max-threads", "2"]
    with ServerProcess(args, server_env(tmp / "cache", MODELS), tmp / "server.log") as s:
        yield s
    assert "Traceback" not in s.output(), s.output()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    camera = make_y4m(video("carving_ice_rpi.mp4"), tmp_path_factory.mktemp("cam") / "cam.y4m")
    args = [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={camera}",
    ]
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=args)
        yield b
        b.close()


def open_page(browser, url: str, errors: list[str], **options):
    page = browser.new_page(viewport=PHONE, **options)
    page.set_default_timeout(HANG)  # waits end when their condition holds; this is a hang guard
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    return page


def test_live_page_classifies_the_fake_camera_and_clears_the_state(server, browser):
    errors: list[str] = []
    page = open_page(browser, server.url + "/", errors, device_scale_factor=2)
    page.wait_for_function(f"() => ({TOP_LABEL})() === 'carving ice'", timeout=HANG)
    page.wait_for_function("() => Number(document.querySelector('#frames').textContent) >= 10")
    page.wait_for_function(f"() => ({TOP_LABEL})() === 'carving ice'", timeout=HANG)
    assert re.fullmatch(r"\d+\.\d ms", page.inner_text("#infer"))
    assert re.fullmatch(r"\d+\.\d fps", page.inner_text("#fps"))
    assert int(page.inner_text("#frames")) > 0
    assert "live · a0" in page.inner_text("#status")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "web_live.png")

    # Clear the model state: the display empties, then results restart from frame 1.
    page.evaluate(
        """() => {
        window.cleared = false;
        const frames = document.querySelector('#frames');
        const label = document.querySelector('#results li .label');
        new MutationObserver(() => {
            if (frames.textContent === '0' && label.textContent === '–') window.cleared = true;
        }).observe(document.body, {subtree: true, childList: true, characterData: true});
    }"""
    )
    before = int(page.inner_text("#frames"))
    page.click("#reset")
    page.wait_for_function("() => window.cleared", timeout=HANG)
    page.wait_for_function(
        f"() => {{ const n = Number(document.querySelector('#frames').textContent);"
        f" return n >= 1 && n < {max(before, 2)}; }}",
        timeout=HANG,
    )
    page.wait_for_function(f"() => ({TOP_LABEL})() === 'carving ice'", timeout=HANG)

    # The thread stepper reconfigures the stream.
    page.click("#threads-plus")
    page.wait_for_function(
        "() => document.querySelector('#status').textContent.includes('2 threads')"
    )
    assert page.inner_text("#threads") == "2"
    assert not errors, errors


def test_file_page_uploads_a_video_and_shows_the_result(server, browser):
    errors: list[str] = []
    page = open_page(browser, server.url + "/file", errors, accept_downloads=True)
    page.wait_for_function("() => document.querySelector('#model').options.length > 0")
    clip = video("carving_ice_rpi.mp4")
    page.set_input_files("#input", str(clip))
    page.evaluate(
        """() => {
        window.phases = [];
        const phase = document.querySelector('#phase');
        new MutationObserver(() => window.phases.push(phase.textContent))
            .observe(phase, {subtree: true, childList: true, characterData: true});
    }"""
    )
    page.click("#submit")
    page.wait_for_selector("#result:not([hidden])", timeout=HANG)
    page.wait_for_function("() => document.querySelector('#plot').naturalWidth > 0")
    phases = page.evaluate("window.phases")
    assert any(p.startswith("Uploading") for p in phases) and "Classifying…" in phases, phases
    assert page.inner_text("#summary li .label") == "carving ice"
    assert " · a0 · 5 fps · " in page.inner_text("#meta")
    assert "carving ice" in page.inner_text("#segments tbody tr")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    with page.expect_download() as download:
        page.click("#download")
    doc = json.loads(Path(download.value.path()).read_text())
    assert doc["source"] == clip.name and "plot" not in doc
    assert doc["summary"]["top"][0]["label"] == "carving ice"
    assert page.locator("#frames tbody tr").count() == len(doc["frames"]) > 10

    page.set_viewport_size({"width": 1000, "height": 900})
    page.evaluate("window.scrollTo(0, 0)")
    settled = "new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))"
    page.evaluate(f"() => {settled}")  # laid out at the new size before the capture
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "web_file.png", full_page=True)

    # Not a video: the page says so, with the server's message.
    page.set_input_files(
        "#input", {"name": "junk.mp4", "mimeType": "video/mp4", "buffer": b"junk" * 1000}
    )
    page.click("#submit")
    page.wait_for_selector("#error:not([hidden])", timeout=HANG)
    assert page.inner_text("#error").startswith("junk.mp4: ")
    assert not errors, errors


def test_api_docs_render_without_internet(server, browser):
    context = browser.new_context(viewport={"width": 1000, "height": 900})
    elsewhere: list[str] = []

    def only_this_server(route):
        if route.request.url.startswith(server.url + "/"):
            route.continue_()
        else:  # no network: what a CDN-hosted Swagger UI would need fails here
            elsewhere.append(route.request.url)
            route.abort()

    context.route("**/*", only_this_server)
    errors: list[str] = []
    page = context.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.url + "/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=HANG)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert {"/v1/classify", "/v1/models", "/healthz"} <= {p.strip() for p in paths}, paths
    assert "/v1/classify" in page.inner_text("body")
    page.click("#operations-default-classify_v1_classify_post .opblock-summary")
    page.wait_for_selector("text=summary_only")  # the operation opens, with its parameters
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "web_docs.png")
    context.close()
    assert not elsewhere and not errors, (elsewhere, errors)


def nav_links(page) -> list[str]:
    """The header's links once the page has left out the pages this server lacks."""
    page.wait_for_selector('header.bar nav[data-pages="checked"]', state="attached")
    return page.locator("header.bar nav a").all_inner_texts()


def test_plain_serve_links_events_and_teach_and_both_work(server, browser):
    """No --data: the default data folder (here conftest's temporary one) holds them."""
    errors: list[str] = []
    page = open_page(browser, server.url + "/file", errors)
    assert nav_links(page) == ["Live", "File", "Events", "Teach", "API"]
    page.click('nav a[href="teach"]')
    assert nav_links(page) == ["Live", "File", "Events", "Teach", "API"]
    page.wait_for_selector("#none", state="visible")  # nothing to label yet, no problem
    assert page.locator("#problem").is_hidden() and page.locator("#upload").is_enabled()
    page.click('nav a[href="events"]')
    page.wait_for_selector("#empty", state="visible")  # "No events yet."
    assert page.locator("#problem").is_hidden()
    assert not errors, errors


def test_without_a_usable_data_folder_events_and_teach_are_not_linked(tmp_path, browser):
    afile = tmp_path / "afile"
    afile.write_text("x")  # XDG_DATA_HOME/vidcls cannot be made under a file
    env = server_env(tmp_path / "cache", MODELS, XDG_DATA_HOME=str(afile))
    env.pop("VIDCLS_DATA", None)
    with ServerProcess(["--log-level", "warning"], env, tmp_path / "server.log") as s:
        errors: list[str] = []
        page = open_page(browser, s.url + "/file", errors)
        assert nav_links(page) == ["Live", "File", "API"]
        page.goto(s.url + "/teach")  # typed in: says why, and offers nothing to press
        page.wait_for_selector("#problem", state="visible")
        assert "--data DIR" in page.inner_text("#problem")
        assert page.locator("main.teach > section:visible").count() == 0
        assert not errors, errors
    assert "no events or teaching pages (give a folder: --data DIR)" in s.output()
