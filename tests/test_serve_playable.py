"""Every event clip plays in the events page (issue 29): a clip in a codec browsers do not
decode (MPEG-4 Part 2 from an AVI camera, HEVC, MJPEG) gets a browser copy made once, by one
low-priority worker, and one that cannot be copied a clear message and a download link; in
real headless Chromium against a real ``vidcls serve``."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from conftest import MODELS, ROOT, needs_shared, video
from media import tiny_clip
from odd_codecs import reencoded, stream_copy
from serve_process import raw_get

from vidcls.live.store import EventStore
from vidcls.media.playable import copy_path, make_copy
from vidcls.results import Segment, SegmentEvent

pytest.importorskip("fastapi", reason="the server needs: pip install -e '.[serve]'")
from vidcls.serve.copies import MAX_WAITING, Copies, Status  # noqa: E402

pytestmark = needs_shared
HANG = 120  # seconds: a hang guard for one wait, not a measure of speed


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    """The recorder's clip of an AVI camera: MPEG-4 Part 2 packets in an MP4 (2 s of it)."""
    folder = tmp_path_factory.mktemp("rec")
    return stream_copy(video("eye_makeup.avi"), folder / "eye.mp4", most=50)


@pytest.fixture
def clip(tmp_path, recorded) -> Path:
    path = tmp_path / "cam" / "eye.mp4"
    path.parent.mkdir()
    path.write_bytes(recorded.read_bytes())
    return path


class Gated:
    """The real :func:`make_copy`, held at a gate until the test opens it; counts its calls."""

    def __init__(self) -> None:
        self.gate, self.arrived, self.calls = threading.Event(), threading.Event(), []

    def __call__(self, clip: Path, progress, stop) -> Path:
        self.calls.append(clip)
        self.arrived.set()
        assert self.gate.wait(HANG)
        return make_copy(clip, progress=progress, stop=stop)


@pytest.fixture
def gated():
    make = Gated()
    copies = Copies(make=make)
    yield copies, make
    make.gate.set()
    copies.close()


def test_many_requests_for_one_clip_make_one_copy(clip, gated):
    copies, make = gated
    assert copies.status(clip) == Status("making")
    with ThreadPoolExecutor(4) as pool:
        states = list(pool.map(lambda c: copies.status(c).state, [clip] * 12))
    assert states == ["making"] * 12
    make.gate.set()
    copies.wait(clip)
    assert copies.status(clip) == Status("ready", copy_path(clip))
    assert make.calls == [clip]
    assert sorted(p.name for p in clip.parent.iterdir()) == [".eye.web.mp4", "eye.mp4"]


def test_a_clip_browsers_play_is_its_own_answer_and_never_copied(tmp_path, gated):
    copies, make = gated
    h264 = tmp_path / "rpi.mp4"
    h264.write_bytes(video("carving_ice_rpi.mp4").read_bytes())
    assert copies.status(h264) == Status("original", h264)
    assert make.calls == [] and not copy_path(h264).exists()


def test_a_clip_that_cannot_be_copied_is_remembered_until_it_changes(clip, gated, caplog):
    copies, make = gated
    data = bytearray(clip.read_bytes())
    start, end = data.index(b"mdat") + 4, data.index(b"moov") - 4
    data[start:end] = bytes(end - start)  # its pictures zeroed, its header whole
    clip.write_bytes(bytes(data))
    make.gate.set()
    assert copies.status(clip).state == "making"
    copies.wait(clip)
    failed = Status("failed", detail="eye.mp4: no picture in it can be decoded")
    assert copies.status(clip) == failed
    assert copies.status(clip) == failed and make.calls == [clip]  # not tried again
    assert [r.getMessage() for r in caplog.records if "no browser copy" in r.getMessage()] == [
        f"no browser copy of {clip}: no picture in it can be decoded"
    ]  # one line for the clip, however often it is asked for
    clip.write_bytes(b"not a video at all")  # changed: looked at again
    assert copies.status(clip) == Status(
        "failed", detail="eye.mp4: not a video that can be read (Invalid data found when "
        "processing input)"
    )  # fmt: skip
    assert make.calls == [clip] and sorted(p.name for p in clip.parent.iterdir()) == ["eye.mp4"]


def test_copies_wait_their_turn_and_past_a_few_the_answer_is_busy(tmp_path, gated):
    copies, make = gated
    short = stream_copy(video("eye_makeup.avi"), tmp_path / "short.mp4", most=10)
    clips = []
    for i in range(MAX_WAITING + 2):
        clips.append(tmp_path / f"{i}.mp4")
        clips[-1].write_bytes(short.read_bytes())
    states = [copies.status(c).state for c in clips]
    assert states == ["making"] * (MAX_WAITING + 1) + ["busy"]
    assert make.arrived.wait(HANG)
    assert make.calls == clips[:1]  # one at a time: the others wait
    make.gate.set()
    for c in clips[: MAX_WAITING + 1]:
        copies.wait(c)
    assert make.calls == clips[: MAX_WAITING + 1]
    assert [copies.status(c).state for c in clips] == ["ready"] * (MAX_WAITING + 1) + ["making"]


def test_closing_stops_the_copy_under_way_and_leaves_no_part(clip):
    started = threading.Event()

    def make(path, progress, stop):
        def progressing(done):
            if done > 0.5:  # half the pictures encoded and written to the part
                started.set()
                assert stop.wait(HANG)  # held there until the close
            progress(done)

        return make_copy(path, progress=progressing, stop=stop)

    copies = Copies(make=make)
    assert copies.status(clip).state == "making"
    assert started.wait(HANG)
    assert any(p.name.endswith(".part") for p in clip.parent.iterdir())
    copies.close()
    copies.wait(clip)
    assert sorted(p.name for p in clip.parent.iterdir()) == ["eye.mp4"]


# -- the server and the page, in real Chromium ----------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory, recorded):
    """A server whose events are clips in each codec: MPEG-4 Part 2 (the recorder's copy of
    an AVI), HEVC and MJPEG (encoded here with PyAV), H.264, and a corrupt one."""
    pytest.importorskip("playwright.sync_api")
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("no /usr/bin/chromium")
    from serve_process import ServerProcess, server_env

    tmp = tmp_path_factory.mktemp("playable")
    cam = tmp / "clips" / "cam"
    cam.mkdir(parents=True)
    rpi = video("carving_ice_rpi.mp4")
    clips = {
        "mpeg4": cam / "mpeg4.mp4",
        "hevc": reencoded(rpi, cam / "hevc.mp4", "libx265"),
        "mjpeg": reencoded(rpi, cam / "mjpeg.mp4", "mjpeg"),
        "h264": cam / "h264.mp4",
        "corrupt": cam / "corrupt.mp4",
    }
    clips["mpeg4"].write_bytes(recorded.read_bytes())
    clips["h264"].write_bytes(rpi.read_bytes())
    clips["corrupt"].write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    store = EventStore(tmp / "data" / "events.db")
    for label, path in clips.items():
        end = SegmentEvent("end", 5.0, Segment(label, 0, 0.0, 5.0, 0.9), clip=str(path))
        store.event("cam", end)
    store.close()
    config = tmp / "cameras.yml"
    camera = tiny_clip(tmp / "camera.mp4")  # a camera that ends at once, with no events
    config.write_text(
        f"clips: {{folder: {tmp / 'clips'}}}\nreplay: true\n"
        f"cameras:\n  tiny:\n    source: {camera}\n"
    )
    args = ["--config", str(config), "--data", str(tmp / "data"), "--log-level", "warning"]
    with ServerProcess(args, server_env(tmp / "cache", MODELS), tmp / "server.log") as s:
        s.clips = clips
        yield s
    assert "Traceback" not in s.output(), s.output()


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--autoplay-policy=no-user-gesture-required"]  # fmt: skip
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=args)
        page = browser.new_page(viewport={"width": 900, "height": 900}, accept_downloads=True)
        page.set_default_timeout(HANG * 1000)  # waits end when their condition holds
        page.errors = []
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        page.goto(server.url + "/events")
        page.wait_for_selector("#list li.event")
        yield page
        browser.close()
    assert page.errors == []


def click(page, label: str) -> None:
    page.locator("#list li.event", has=page.locator(".label", has_text=label)).click()


PLAYING = """() => { const v = document.querySelector('#clip');
  return v.currentTime > 0.5 && !v.paused && v.videoWidth > 0; }"""


@pytest.mark.parametrize("codec", ["mpeg4", "hevc", "mjpeg"])
def test_a_clip_browsers_cannot_decode_plays_from_its_copy(server, page, codec):
    clip = server.clips[codec]
    click(page, codec)
    page.wait_for_function(PLAYING)  # currentTime advances: it plays
    src = page.evaluate("document.querySelector('#clip').currentSrc")
    assert page.is_hidden("#clip-note") and page.is_hidden("#download")
    if codec == "hevc" and src == f"{server.url}/media/cam/hevc.mp4":
        return  # a Chromium with an HEVC decoder (not Debian's: it has none) plays it as it is
    assert src == f"{server.url}/media/cam/.{codec}.web.mp4", src  # the copy, not the clip
    assert "a copy made for the browser" in page.text_content("#playing")
    assert copy_path(clip).is_file() and clip.is_file()  # the camera's packets kept
    (ROOT / "test-artifacts").mkdir(exist_ok=True)
    page.screenshot(path=ROOT / "test-artifacts" / f"web_events_{codec}.png")


def test_an_h264_clip_plays_as_it_is(server, page):
    click(page, "h264")
    page.wait_for_function(PLAYING)
    src = page.evaluate("document.querySelector('#clip').currentSrc")
    assert src == f"{server.url}/media/cam/h264.mp4"
    assert not copy_path(server.clips["h264"]).exists()


def test_a_corrupt_clip_says_so_and_offers_a_download_that_works(server, page):
    click(page, "corrupt")
    page.wait_for_selector("#download", state="visible")
    assert page.is_hidden("#clip")  # no empty player
    note = page.text_content("#clip-note")
    assert note == (
        "Cannot play the clip here: corrupt.mp4: not a video that can be read (Invalid data "
        "found when processing input). Download it to play it in a video player."
    ), note
    with page.expect_download() as info:
        page.click("#download")
    saved = info.value.path()
    assert Path(saved).read_bytes() == server.clips["corrupt"].read_bytes()
    page.screenshot(path=ROOT / "test-artifacts" / "web_events_corrupt.png")


def api(server, path: str) -> tuple[int, dict]:
    return raw_get(server.port, path, HANG)


def test_the_api_answers_for_each_kind_of_clip(server):
    assert api(server, "/api/playable/cam/h264.mp4") == (
        200,
        {"state": "original", "url": "/media/cam/h264.mp4"},
    )
    status, body = api(server, "/api/playable/cam/corrupt.mp4")
    assert (status, body["state"], body["download"]) == (422, "failed", "/media/cam/corrupt.mp4")
    deadline = time.monotonic() + HANG  # a hang guard: the copy is made in well under a second
    while (answer := api(server, "/api/playable/cam/mjpeg.mp4"))[0] == 202:
        assert answer[1]["state"] == "making" and time.monotonic() < deadline
        time.sleep(0.2)
    assert answer == (200, {"state": "ready", "url": "/media/cam/.mjpeg.web.mp4"})
    copy = httpx.get(server.url + answer[1]["url"])
    assert copy.status_code == 200 and copy.headers["content-type"] == "video/mp4"


@pytest.mark.parametrize(
    "path",
    [
        "/api/playable/cam/x%00.mp4",
        "/api/playable/%00",
        "/api/playable/" + "a" * 300 + ".mp4",
        "/api/playable/" + ("d" * 200 + "/") * 25 + "x.mp4",
        "/api/playable/../cameras.yml",
        "/api/playable/%2e%2e/cameras.yml",
        "/api/playable/%2e%2e/data/events.db",
        "/api/playable/cam/nope.mp4",
        "/api/playable/cam/.mpeg4.web.mp4.part",
        "/api/playable/cam",
    ],
    ids=[
        "nul",
        "only-nul",
        "long-name",
        "long-path",
        "up",
        "up-escaped",
        "up-db",
        "missing",
        "part",
        "folder",
    ],  # fmt: skip
)
def test_paths_outside_the_clips_or_not_clips_are_404(server, path):
    assert api(server, path) == (404, {"detail": "no such clip"})
