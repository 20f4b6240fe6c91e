"""Frame sources: a file at its real speed, a looping file without a seam, a network stream
that drops and comes back, pushed frames, pictures for windows.

Waits poll with generous deadlines that only a failure reaches; nothing asserts how fast the
machine is.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pytest
from conftest import needs_shared, video
from media import tiny_clip

from vidcls import VidclsError
from vidcls.bench.cameras import CameraServer, camera_clip
from vidcls.live.capture import Arrivals as CountedArrivals
from vidcls.live.capture import FrameGrabber, FrameSlot
from vidcls.media import VideoFile, open_source

pytestmark = needs_shared


def wait_until(condition, timeout: float = 120.0) -> None:  # a hang guard
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


class Arrivals:
    """Every frame a grabber captures, as it wakes its consumer."""

    def __init__(self, grabber: FrameGrabber) -> None:
        self.grabber, self.seen = grabber, []
        grabber.wake = self

    def __call__(self) -> None:
        got = self.grabber.latest(self.seen[-1].index if self.seen else -1)
        if got is not None:
            self.seen.append(got)


def test_a_file_plays_at_its_real_speed_and_ends(tmp_path):
    """Real time is what is tested here: a frame never comes before its timestamp says (a
    busy machine only ever makes it later), every frame comes, in order."""
    clip = tiny_clip(tmp_path / "second.mp4", frames=15, fps=15)
    with VideoFile(clip) as v:
        times = [t for t, _ in v.frames()]
    grabber = FrameGrabber(open_source(str(clip), realtime=True))
    arrivals = Arrivals(grabber)
    grabber.start()
    wait_until(lambda: grabber.ended)
    grabber.stop()
    assert grabber.error is None and not grabber.online
    assert grabber.captured == len(times) == 15
    seen = arrivals.seen  # woken on the capture thread at each frame: every one
    assert [g.index for g in seen] == list(range(15))
    for got in seen:
        shown = times[got.index] - times[0]
        assert got.captured_at - seen[0].captured_at >= shown - 0.01, got.index
    assert grabber.input_fps > 0


def test_the_input_rate_is_counted_over_the_last_two_seconds():
    arrivals = CountedArrivals()
    assert arrivals.fps == 0.0
    for k in range(90):  # 30 fps for 3 s
        arrivals.add(100.0 + k / 30)
    assert arrivals.fps == pytest.approx(30.0)
    for k in range(1, 11):  # then 5 fps: the last 2 s hold the slower frames
        fps = arrivals.add(100.0 + 89 / 30 + k / 5)
    assert fps == pytest.approx(5.0)
    burst = CountedArrivals()
    for _ in range(4):  # frames in a burst at one time: no rate from them yet
        burst.add(7.0)
    assert burst.fps == 0.0


def test_a_looping_file_plays_on_without_a_seam(tmp_path, caplog):
    clip = tiny_clip(tmp_path / "short.mp4", frames=5, fps=10)  # half a second
    grabber = FrameGrabber(open_source(str(clip), realtime=True, loop=True))
    with caplog.at_level(logging.WARNING, logger="vidcls"):
        grabber.start()
        wait_until(lambda: grabber.captured >= 16)  # more than three times through
        got = grabber.latest()
        grabber.stop()
    assert got.generation == 0 and grabber.reconnects == 0  # one long video: no state reset
    assert not caplog.records  # nothing logged at the seams
    assert grabber.ended and grabber.error is None


@pytest.fixture(scope="module")
def live_ts(tmp_path_factory):
    out = tmp_path_factory.mktemp("stream") / "live.ts"  # 4 s: the camera server loops it
    return camera_clip(out, 172, 172, seconds=4, sources=[video("carving_ice_rpi.mp4")])


def test_a_network_stream_that_drops_is_reopened_with_a_new_generation(live_ts, caplog):
    server = CameraServer(live_ts).start()
    url = server.url(0)
    grabber = FrameGrabber(open_source(url))
    try:
        with caplog.at_level(logging.WARNING, logger="vidcls"):
            grabber.start()
            wait_until(lambda: grabber.captured >= 10 and grabber.online)
            first = grabber.latest()
            assert first.generation == 0
            server.kill()
            wait_until(lambda: not grabber.online)
            lost = grabber.captured
            server.start()  # the camera comes back on the same port
            wait_until(lambda: grabber.reconnects == 1 and grabber.captured > lost + 5)
        got = grabber.latest(first.index)
    finally:
        grabber.stop()
        server.kill()
    assert got.generation == 1 and got.index > first.index  # newer, and its state starts anew
    assert not grabber.ended or grabber.error is None
    log = caplog.text
    assert f"lost {url}" in log and f"reconnected to {url}" in log


def test_an_unreachable_stream_keeps_trying_until_stopped():
    grabber = FrameGrabber(open_source("http://127.0.0.1:9/none.ts"))
    grabber.start()
    wait_until(lambda: grabber._thread.is_alive())
    assert grabber.latest() is None and not grabber.ended and not grabber.online
    grabber.stop()
    assert grabber.ended and grabber.captured == 0


def test_pictures_come_upright_at_any_size():
    grabber = FrameGrabber(open_source(str(video("carving_ice_android.mp4"))))
    assert grabber.picture() is None  # nothing captured yet
    grabber.start()
    wait_until(lambda: grabber.captured > 45)  # past the clip's dark first second
    full, tile = grabber.picture(), grabber.picture((160, 90))
    grabber.stop()
    assert full.shape == (360, 360, 3) and full.dtype == np.uint8 and full.std() > 5
    assert tile.shape == (90, 160, 3)


def test_a_slot_keeps_the_freshest_pushed_frame_and_says_which_it_replaced():
    slot, woken = FrameSlot("browser"), []
    slot.wake = lambda: woken.append(slot.captured)
    a, b = np.zeros((4, 4, 3), np.uint8), np.ones((4, 4, 3), np.uint8)
    assert slot.put(a, captured_at=1.0) is None
    replaced = slot.put(b, captured_at=2.0)
    assert replaced is not None and replaced.index == 0  # never fed: handed back
    got = slot.latest()
    assert got.index == 1 and got.captured_at == 2.0 and got.frame is b
    assert slot.latest(got.index) is None
    assert slot.put(a, captured_at=3.0) is None  # the one before was taken
    assert slot.picture((2, 2)).shape == (2, 2, 3)
    slot.close()
    assert slot.ended and not slot.online and woken == [1, 2, 3, 3]


def test_a_source_is_lost_when_it_failed_or_is_down_without_having_ended():
    slot = FrameSlot("cam")
    assert not slot.lost  # up
    slot.online = False
    assert slot.lost  # down, being retried
    slot.close()
    assert not slot.lost  # ended: no more frames, nothing lost
    slot.error = VidclsError("reading failed (connection reset)", "cam")
    assert slot.lost
