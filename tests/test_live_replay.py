"""Files replayed on a virtual clock: each frame handed over when the clock reaches its
time, all of them decoded, a looping file without a seam, and what cannot be replayed."""

from __future__ import annotations

import pytest
from conftest import needs_shared, video
from media import tiny_clip

from vidcls.errors import VidclsError
from vidcls.live.clock import VirtualClock
from vidcls.live.replay import ReplayedFile
from vidcls.media import VideoFile, open_source


def replayed(path, loop: bool = False, start: float = 50.0) -> tuple[ReplayedFile, VirtualClock]:
    clock = VirtualClock(start)
    source = ReplayedFile(open_source(str(path), loop=loop), clock)
    source.start()
    return source, clock


def test_the_freshest_frame_is_the_last_one_due(tmp_path):
    clip = tiny_clip(tmp_path / "c.mp4", frames=10, fps=10)
    with VideoFile(clip) as v:
        times = [t for t, _ in v.frames()]
    source, clock = replayed(clip)
    assert source.online and source.captured == 0
    got = source.latest()
    assert (got.index, got.captured_at) == (0, 50.0)  # the first frame: due when it starts
    assert source.latest(0) is None  # the next one is not due yet
    clock.advance(0.35)  # frames 1, 2 and 3 came meanwhile: the freshest is 3
    got = source.latest(0)
    assert got.index == 3 and got.captured_at == pytest.approx(50.0 + times[3] - times[0])
    assert source.captured == 4  # every frame decoded (each depends on those before)
    assert source.input_fps == pytest.approx(10.0)
    clock.advance(10.0)
    last = source.latest(3)
    assert last.index == 9 and source.ended and not source.online and source.error is None
    assert source.latest(9) is None


def test_a_looping_file_plays_on_a_frame_after_its_last(tmp_path):
    clip = tiny_clip(tmp_path / "c.mp4", frames=5, fps=8)  # frames at 0 .. 0.5 s
    source, clock = replayed(clip, loop=True, start=0.0)
    seen = []
    for _ in range(16):  # asked at every frame's time (eighths of a second: exact)
        got = source.latest(seen[-1].index if seen else -1)
        seen.append(got)
        clock.advance(0.125)
    assert [g.index for g in seen] == list(range(16))  # three times through and more
    assert [g.captured_at for g in seen] == [k / 8 for k in range(16)]  # no seam
    assert {g.generation for g in seen} == {0} and not source.ended  # one long video
    source.stop()
    assert source.ended and source.error is None


@needs_shared
def test_a_replay_gives_the_same_frames_every_time():
    runs = []
    for _ in range(2):
        source, clock = replayed(video("carving_ice_rpi.mp4"))
        got = []
        while not source.ended:
            frame = source.latest(got[-1][0] if got else -1)
            if frame is not None:
                got.append((frame.index, frame.captured_at, frame.frame.pts))
            clock.advance(0.2)
        runs.append(got)
    assert runs[0] == runs[1] and len(runs[0]) == 23  # 4.4 s at 5 asks a second


def test_cameras_and_streams_are_live_not_replayed():
    for spec in ("0", "rtsp://127.0.0.1:9/cam"):
        with pytest.raises(VidclsError, match="only files can be replayed"):
            ReplayedFile(open_source(spec), VirtualClock())


def test_a_file_that_is_not_a_video_ends_with_the_reason(tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video at all\n" * 50)
    source, _ = replayed(bad)
    assert source.ended and not source.online and source.latest() is None
    assert "cannot open" in str(source.error)
    truncated = tmp_path / "cut.mp4"
    whole = tiny_clip(tmp_path / "whole.mp4", frames=30, fps=10).read_bytes()
    truncated.write_bytes(whole[: len(whole) // 2])
    source, clock = replayed(truncated)
    clock.advance(5.0)
    source.latest()
    assert source.ended and not source.online  # never a hang, never an exception
