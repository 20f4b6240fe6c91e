"""Browser copies of clips (vidcls.media.playable): which codecs browsers play as they are,
and an H.264 copy of the others, every picture kept, made whole or not at all."""

from __future__ import annotations

import threading
from pathlib import Path

import av
import pytest
from conftest import video
from odd_codecs import reencoded, stream_copy

from vidcls.errors import VidclsError
from vidcls.media.playable import CopyLimits, clip_of, copy_path, make_copy, probe


def frames_of(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


@pytest.fixture(scope="module")
def avi_recorded(tmp_path_factory) -> Path:
    """The recorder's clip of an AVI camera: MPEG-4 Part 2 packets in an MP4."""
    return stream_copy(video("eye_makeup.avi"), tmp_path_factory.mktemp("avi") / "eye.mp4")


@pytest.fixture
def avi_clip(tmp_path, avi_recorded) -> Path:
    """That clip alone in a folder of its own."""
    clip = tmp_path / "avi" / "eye.mp4"
    clip.parent.mkdir()
    clip.write_bytes(avi_recorded.read_bytes())
    return clip


def test_browsers_play_h264_as_it_is_and_not_mpeg4_part2(avi_clip):
    h264 = probe(video("carving_ice_rpi.mp4"))
    assert (h264.codec, h264.pix_fmt, h264.plays_in_browsers) == ("h264", "yuv420p", True)
    mpeg4 = probe(avi_clip)
    assert (mpeg4.codec, mpeg4.width, mpeg4.height) == ("mpeg4", 320, 240)
    assert not mpeg4.plays_in_browsers and mpeg4.seconds == pytest.approx(6.56, abs=0.1)


@pytest.mark.parametrize("codec", ["mpeg4", "libx265", "mjpeg"])
def test_a_copy_is_h264_beside_the_clip_with_every_picture(tmp_path, avi_clip, codec):
    if codec == "mpeg4":
        clip = avi_clip
    else:
        clip = reencoded(video("carving_ice_rpi.mp4"), tmp_path / f"{codec}.mp4", codec)
    source = probe(clip)
    assert not source.plays_in_browsers, source
    seen: list[float] = []
    copy = make_copy(clip, progress=seen.append)
    assert copy == copy_path(clip) == clip.with_name(f".{clip.stem}.web.mp4")
    assert clip_of(copy) == clip
    made = probe(copy)
    assert made.plays_in_browsers and (made.codec, made.pix_fmt) == ("h264", "yuv420p")
    assert (made.width, made.height) == (source.width, source.height)
    assert made.seconds == pytest.approx(source.seconds, abs=0.1)
    assert frames_of(copy) == frames_of(clip)
    assert seen == sorted(seen) and 0.9 <= seen[-1] <= 1.0
    assert sorted(p.name for p in clip.parent.iterdir() if ".part" in p.name) == []
    with open(copy, "rb") as f:  # faststart: the index first, so a browser plays as it loads
        head = f.read(64 * 1024)
    assert head.index(b"moov") < head.index(b"mdat")


def test_large_pictures_are_scaled_down_to_even_sizes(tmp_path, avi_clip):
    copy = make_copy(avi_clip, CopyLimits(max_side=101))
    made = probe(copy)
    assert (made.width, made.height) == (100, 74)  # 320x240 at 101/320, even
    assert frames_of(copy) == 164


def test_clips_past_the_limits_are_refused_and_no_copy_is_left(tmp_path, avi_clip):
    with pytest.raises(VidclsError, match=r"eye\.mp4: lasts 7 s, over the 2 s a copy is made of"):
        make_copy(avi_clip, CopyLimits(max_seconds=2))
    with pytest.raises(VidclsError, match=r"is 0 MB, over the 0 MB a copy is made of"):
        make_copy(avi_clip, CopyLimits(max_bytes=1000))
    assert not copy_path(avi_clip).exists()


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda clip: b"not a video\n" * 100, "not a video that can be read (Invalid data"),
        (lambda clip: b"", "not a video that can be read"),
        (lambda clip: clip.read_bytes()[: len(clip.read_bytes()) // 2], "not a video that can"),
    ],
    ids=["text", "empty", "cut-in-half"],
)
def test_a_corrupt_clip_is_one_clear_error_and_leaves_nothing(tmp_path, avi_clip, make, says):
    bad = tmp_path / "cam" / "bad.mp4"
    bad.parent.mkdir()
    bad.write_bytes(make(avi_clip))
    with pytest.raises(VidclsError) as caught:
        make_copy(bad)
    assert str(caught.value).startswith(f"{bad}: {says}"), caught.value
    assert "\n" not in str(caught.value)
    assert [p.name for p in bad.parent.iterdir()] == ["bad.mp4"]


def test_a_clip_whose_pictures_do_not_decode_gives_no_copy(tmp_path, avi_clip):
    """The header is whole, the pictures are noise: an error, never an empty copy."""
    data = bytearray(avi_clip.read_bytes())
    mdat = data.index(b"mdat") + 4
    data[mdat : mdat + 150_000] = bytes(150_000)  # every picture's bytes zeroed
    bad = tmp_path / "cam" / "zeroed.mp4"
    bad.parent.mkdir()
    bad.write_bytes(bytes(data))
    with pytest.raises(VidclsError) as caught:
        make_copy(bad)
    assert str(caught.value) == f"{bad}: no picture in it can be decoded"
    assert sorted(p.name for p in bad.parent.iterdir()) == ["zeroed.mp4"]


def test_a_stop_ends_the_copy_and_removes_its_part(avi_clip):
    stop = threading.Event()

    def progress(done: float) -> None:
        if done > 0.3:
            stop.set()

    with pytest.raises(VidclsError, match="stopped before the copy was made"):
        make_copy(avi_clip, progress=progress, stop=stop)
    assert sorted(p.name for p in avi_clip.parent.iterdir()) == ["eye.mp4"]


def test_copy_names():
    assert copy_path("/c/cam/1_x.mp4") == Path("/c/cam/.1_x.web.mp4")
    assert clip_of("/c/cam/.1_x.web.mp4") == Path("/c/cam/1_x.mp4")
    for name in ("1_x.mp4", ".1_x.mp4.part", ".web.mp4", "..web.mp4", ".1_x.web.mp4.part"):
        assert clip_of(Path("/c/cam") / name) is None, name
