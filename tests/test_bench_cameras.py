"""Simulated IP cameras on loopback: the camera clip, and live streams that PyAV reads at real
time, each camera at its own place in the clip, one droppable, all killable."""

from __future__ import annotations

import threading
import time
from itertools import combinations, pairwise

import av
import pytest
from conftest import needs_shared

from vidcls import VidclsError, zoo
from vidcls.bench.cameras import CameraServer, camera_clip

pytestmark = needs_shared

SECONDS = 4.0  # the served clip's length
HANG = 120.0  # seconds: only a stream that never does what is waited for takes this long


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return camera_clip(tmp_path_factory.mktemp("cameras") / "cam.ts", 192, 108, seconds=SECONDS)


@pytest.fixture(scope="module")
def server(clip):
    with CameraServer(clip) as server:
        yield server


class Reader(threading.Thread):
    """Decodes a camera, noting each frame's arrival, until ``seconds`` after the first frame,
    until told to stop, or until the stream ends (then ``ended`` is when)."""

    def __init__(self, url: str, seconds: float = 6.0) -> None:
        super().__init__(daemon=True)
        self.url, self.seconds, self.stop = url, seconds, threading.Event()
        self.frames: list[tuple[float, float, bool]] = []  # arrival, time in the stream, key
        self.ended: float | None = None

    def run(self) -> None:
        try:
            with av.open(self.url, timeout=5) as container:
                for frame in container.decode(video=0):
                    now = time.monotonic()
                    self.frames.append((now, float(frame.time), frame.key_frame))
                    if self.stop.is_set() or now - self.frames[0][0] > self.seconds:
                        return
        except (av.FFmpegError, OSError):
            pass
        self.ended = time.monotonic()

    def wait_for(self, n: int, timeout: float = HANG) -> None:
        deadline = time.monotonic() + timeout
        while len(self.frames) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.frames) >= n, (self.url, len(self.frames))


def test_clip_is_a_camera_substream_made_once(clip, capsys):
    with av.open(str(clip)) as container:
        assert container.format.name == "mpegts"
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.width, stream.height) == ("h264", 192, 108)
        assert stream.average_rate == 30
        packets = [p for p in container.demux(stream) if p.size]
    assert len(packets) == SECONDS * 30
    assert [n for n, p in enumerate(packets) if p.is_keyframe] == [0, 60]  # every 2 s
    assert all(p.pts == p.dts for p in packets)  # no B-frames
    made = camera_clip(width=96, height=54, seconds=1)
    assert "making a 96x54 30 fps camera clip" in capsys.readouterr().err
    assert camera_clip(width=96, height=54, seconds=1) == made
    assert capsys.readouterr().err == ""  # reused
    assert list((zoo.cache_dir() / "cameras").iterdir()) == [made]  # no temporary left


def test_cameras_play_in_real_time_each_at_its_own_place(server):
    readers = [Reader(server.url(i), seconds=1.2) for i in (1, 2, 3)]
    for r in readers:
        r.start()
    for r in readers:
        r.join(10)
        assert r.frames and r.ended is None, r.url
        times = [t for _, t, _ in r.frames]
        assert all(0.03 < b - a < 0.04 for a, b in pairwise(times))  # never a jump
        # After the frames since the last keyframe (sent at once), one frame every 33 ms.
        late = [a for a, _, _ in r.frames if a > r.frames[0][0] + 0.3]
        assert 20 < (len(late) - 1) / (late[-1] - late[0]) < 40, r.url
    # At the same moment the cameras are at different places in the clip.
    now = min(r.frames[-1][0] for r in readers)
    places = [[t for a, t, _ in r.frames if a <= now][-1] % SECONDS for r in readers]
    for a, b in combinations(places, 2):
        assert min(abs(a - b), SECONDS - abs(a - b)) > 0.5, places


def until(condition) -> None:
    deadline = time.monotonic() + HANG
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_drop_ends_only_that_camera_and_it_comes_back(server):
    """The readers would read for a minute: only the drop ends one (the served clip loops)."""
    stay, go = Reader(server.url(5), seconds=HANG), Reader(server.url(6), seconds=HANG)
    stay.start()
    go.start()
    stay.wait_for(10)
    go.wait_for(10)
    dropped = time.monotonic()
    assert server.drop(6) == 1
    assert server.drop(7) == 0
    go.join(HANG)
    assert go.ended is not None
    again = Reader(server.url(6))
    again.start()
    again.wait_for(10)
    until(lambda: stay.frames[-1][0] > dropped + 0.5)  # the other one goes on
    assert stay.ended is None
    for r in (stay, again):
        r.stop.set()
        r.join(HANG)


def test_kill_ends_every_stream(clip):
    server = CameraServer(clip).start()
    readers = [Reader(server.url(i), seconds=HANG) for i in range(2)]
    for r in readers:
        r.start()
        r.wait_for(5)
    assert server.cpu_seconds() > 0
    server.kill()
    for r in readers:
        r.join(HANG)
        assert r.ended is not None  # ended by the kill, not by its minute of reading
    with pytest.raises((av.FFmpegError, OSError)):
        av.open(server.url(0), timeout=2)


def test_a_bad_clip_is_a_one_line_error(tmp_path, capfd):
    bad = tmp_path / "bad.ts"
    bad.write_bytes(b"not a transport stream" * 20)
    with pytest.raises(VidclsError, match="the camera server did not start"):
        CameraServer(bad).start()
    err = capfd.readouterr().err.strip().splitlines()
    assert err == [f"vidcls: error: {bad}: not an MPEG-TS file"]
