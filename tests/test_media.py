"""Tests for vidcls.video: the frame sampler, decoding real and synthetic clips, bad inputs."""

from __future__ import annotations

import math
import os
import random
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import video

from vidcls.errors import VidclsError
from vidcls.media import FrameSampler, VideoFile

ANDROID_FRAMES = 200  # carving_ice_android.mp4: 30 fps, 6.67 s

# -- FrameSampler ------------------------------------------------------------------------


def kept(fps: float | None, times: list[float]) -> list[float]:
    sampler = FrameSampler(fps)
    return [t for t in times if sampler.keep(t)]


def increasing(times: list[float]) -> bool:
    return all(b > a for a, b in zip(times, times[1:], strict=False))


def test_sampler_none_keeps_every_frame():
    times = [0.0, 0.001, 0.002, 0.5, 0.5, 3.0]
    assert kept(None, times) == times


def test_sampler_30fps_to_5fps_keeps_one_frame_per_fifth_of_a_second():
    times = [i / 30 for i in range(90)]  # 3 s
    assert kept(5, times) == times[::6]  # 0.0, 0.2, 0.4, ... 2.8


@pytest.mark.parametrize("rate", [24, 25, 29.97, 30, 50, 60])
@pytest.mark.parametrize("millis", [False, True], ids=["exact", "ms-timebase"])
def test_sampler_faster_source_keeps_the_frame_nearest_each_step(rate, millis):
    times = [i / rate for i in range(round(rate * 4))]  # 4 s
    if millis:
        times = [round(t * 1000) / 1000 for t in times]
    out = kept(5, times)
    assert out[0] == 0.0
    assert increasing(out)
    assert abs(len(out) - 4 * 5) <= 1
    for k, t in enumerate(out):  # the nearest frame to k/5 s is within half a frame of it
        assert abs(t - k * 0.2) <= 0.5 / rate + 1e-3, (k, t)


def test_sampler_jittery_source_at_target_rate_keeps_every_frame():
    rng = random.Random(1234)
    times = [0.0] + [k * 0.2 + rng.uniform(-0.03, 0.03) for k in range(1, 200)]
    assert kept(5, times) == times


def test_sampler_slower_source_keeps_every_frame_and_never_repeats():
    times = [k * 0.5 for k in range(40)]  # 2 fps
    assert kept(5, times) == times
    # feeding the same timestamp twice does not keep it twice
    sampler = FrameSampler(5)
    assert [sampler.keep(t) for t in (0.0, 0.0, 0.5, 0.5)] == [True, False, True, False]


def test_sampler_start_is_the_first_timestamp():
    times = [10.0 + i / 30 for i in range(30)]
    out = kept(5, times)
    assert out == times[::6]  # 10.0, 10.2, ... 10.8: the grid starts at the first frame


@pytest.mark.parametrize("fps", [0, -5, math.nan, math.inf, -math.inf])
def test_sampler_rejects_invalid_fps(fps):
    with pytest.raises(ValueError):
        FrameSampler(fps)


# -- a synthetic variable-frame-rate clip ------------------------------------------------

# 1 s at 30 fps, 1 s at 10 fps, 1 s at 60 fps; times in milliseconds
VFR_PTS = (
    [round(i * 1000 / 30) for i in range(30)]
    + [1000 + i * 100 for i in range(10)]
    + [2000 + round(i * 1000 / 60) for i in range(60)]
)
SIZE = 64
STEP = 24  # grey-level step between digits: far above the codec's error on flat colour


def _frame_image(index: int) -> np.ndarray:
    """Grey frame: left half encodes index // 10, right half index % 10."""
    img = np.empty((SIZE, SIZE, 3), np.uint8)
    img[:, : SIZE // 2] = 16 + STEP * (index // 10)
    img[:, SIZE // 2 :] = 16 + STEP * (index % 10)
    return img


def _frame_index(frame: av.VideoFrame) -> int:
    grey = frame.to_ndarray(format="gray").astype(float)
    q = SIZE // 4
    tens = grey[q : 3 * q, 4 : SIZE // 2 - 4].mean()
    ones = grey[q : 3 * q, SIZE // 2 + 4 : SIZE - 4].mean()
    return round((tens - 16) / STEP) * 10 + round((ones - 16) / STEP)


@pytest.fixture(scope="module")
def vfr_clip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("vfr") / "vfr.mp4"
    tb = Fraction(1, 1000)
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=30)
        s.width = s.height = SIZE
        s.pix_fmt = "yuv420p"
        s.time_base = tb
        s.codec_context.time_base = tb
        s.options = {"qscale": "2"}
        for i, pts in enumerate(VFR_PTS):
            f = av.VideoFrame.from_ndarray(_frame_image(i), format="rgb24")
            f.pts = pts
            f.time_base = tb
            for packet in s.encode(f):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)
    return path


def test_vfr_clip_info(vfr_clip):
    with VideoFile(vfr_clip) as v:
        info = v.info
    assert (info.width, info.height) == (SIZE, SIZE)
    assert info.codec == "mpeg4"
    assert info.path == str(vfr_clip)
    assert info.duration == pytest.approx(3.0, abs=0.05)


def test_vfr_native_yields_every_encoded_frame(vfr_clip):
    with VideoFile(vfr_clip) as v:
        frames = list(v.frames(None))
    assert len(frames) == len(VFR_PTS)
    assert [_frame_index(f) for _, f in frames] == list(range(len(VFR_PTS)))
    for (t, _), pts in zip(frames, VFR_PTS, strict=True):
        assert t == pytest.approx(pts / 1000, abs=1e-6)


def test_vfr_at_5fps_keeps_the_frame_at_each_fifth_of_a_second(vfr_clip):
    with VideoFile(vfr_clip) as v:
        frames = [(t, _frame_index(f)) for t, f in v.frames(5)]
    times = [t for t, _ in frames]
    assert times[0] == 0.0
    assert increasing(times)
    assert abs(len(frames) - 3.0 * 5) <= 1
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert all(g == pytest.approx(0.2, abs=1e-3) for g in gaps), gaps
    # the content is the frame encoded at that time ...
    for t, index in frames:
        assert VFR_PTS[index] / 1000 == pytest.approx(t, abs=1e-6)
    # ... and it is the one on the 0.2 s grid, in each of the 30, 10 and 60 fps sections
    on_grid = [i for i, pts in enumerate(VFR_PTS) if pts % 200 == 0]
    assert [index for _, index in frames] == on_grid
    for start in (0, 1, 2):
        assert sum(start <= t < start + 1 for t in times) == 5


# -- bad inputs --------------------------------------------------------------------------


def assert_names(err: pytest.ExceptionInfo, path: Path) -> None:
    assert str(path) in str(err.value)
    assert err.value.path == str(path)


def _open_and_decode(path: Path) -> int:
    with VideoFile(path) as v:
        return sum(1 for _ in v.frames(None))


def test_missing_file(tmp_path):
    path = tmp_path / "nope.mp4"
    with pytest.raises(VidclsError) as err:
        VideoFile(path)
    assert_names(err, path)
    assert "not found" in str(err.value)


def test_directory(tmp_path):
    with pytest.raises(VidclsError) as err:
        VideoFile(tmp_path)
    assert_names(err, tmp_path)
    assert "directory" in str(err.value)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.mp4"
    path.touch()
    with pytest.raises(VidclsError) as err:
        _open_and_decode(path)
    assert_names(err, path)
    assert "empty" in str(err.value)


def test_random_bytes(tmp_path):
    path = tmp_path / "noise.mp4"
    path.write_bytes(random.Random(7).randbytes(20_000))
    with pytest.raises(VidclsError) as err:
        _open_and_decode(path)
    assert_names(err, path)


@pytest.mark.parametrize(
    ("name", "lines"),
    [
        ("notes.txt", 10),  # short: FFmpeg's tty demuxer does not claim it
        ("notes.mp4", 50),
        # FFmpeg's tty (ANSI art) demuxer claims a .txt of 1 KB or more as a 640x400 video.
        pytest.param("notes.txt", 50, id="notes.txt-1KB"),
        pytest.param("notes.nfo", 3, id="notes.nfo"),
    ],
)
def test_text_file(tmp_path, name, lines):
    path = tmp_path / name
    path.write_text("this is not a video\n" * lines)
    with pytest.raises(VidclsError) as err:
        _open_and_decode(path)
    assert_names(err, path)


@pytest.mark.parametrize(
    ("name", "codec", "fmt"),
    [("tone.wav", "pcm_s16le", "s16"), ("tone.m4a", "aac", "fltp")],
)
def test_audio_only_file(tmp_path, name, codec, fmt):
    path = tmp_path / name
    rate = 8000
    samples = (np.sin(np.arange(rate) * 2 * np.pi * 440 / rate) * 0.3).astype(np.float32)
    data = (samples * 32767).astype(np.int16) if fmt == "s16" else samples
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=rate)
        s.layout = "mono"
        for start in range(0, rate, 1024):
            frame = av.AudioFrame.from_ndarray(data[None, start : start + 1024], fmt, "mono")
            frame.sample_rate = rate
            frame.pts = start
            for packet in s.encode(frame):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)
    with av.open(str(path)) as c:  # the file itself is a valid audio file
        assert c.streams.audio and not c.streams.video
    with pytest.raises(VidclsError) as err:
        _open_and_decode(path)
    assert_names(err, path)
    assert "no video stream" in str(err.value)


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0, reason="root can read a chmod-000 file"
)
def test_unreadable_file(tmp_path):
    path = tmp_path / "locked.mp4"
    path.write_bytes(video("carving_ice_rpi.mp4").read_bytes())
    path.chmod(0)
    try:
        with pytest.raises(VidclsError) as err:
            VideoFile(path)
        assert_names(err, path)
    finally:
        path.chmod(0o644)


def test_truncated_to_30_percent_is_reported_after_its_prefix(tmp_path):
    """The index (moov) is at the front, so the cut file opens and the container still claims
    200 frames; FFmpeg just stops early. The reader yields the prefix, then reports the cut."""
    src = video("carving_ice_android.mp4")
    data = src.read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) * 3 // 10])
    times = []
    with VideoFile(path) as v, pytest.raises(VidclsError) as err:
        assert v.info.frames == ANDROID_FRAMES
        for t, _ in v.frames(None):
            times.append(t)
    assert_names(err, path)
    assert f"truncated: only {len(times)} of {ANDROID_FRAMES} frames decoded" in str(err.value)
    assert 0 < len(times) < ANDROID_FRAMES * 0.5
    assert times[0] == 0.0
    assert increasing(times)
    with VideoFile(src) as v:
        assert sum(1 for _ in v.frames(None)) == ANDROID_FRAMES


def test_truncated_to_10_percent_has_no_decodable_frames(tmp_path):
    data = video("carving_ice_android.mp4").read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) // 10])
    with pytest.raises(VidclsError) as err:
        _open_and_decode(path)
    assert_names(err, path)
    assert "no decodable video frames" in str(err.value)


# -- real clips --------------------------------------------------------------------------


def test_eye_makeup_avi_native_and_5fps():
    path = video("eye_makeup.avi")
    with VideoFile(path) as v:
        info = v.info
        native = list(v.frames(None))
    assert (info.codec, info.width, info.height) == ("mpeg4", 320, 240)
    assert info.fps == pytest.approx(25.0)
    assert len(native) == 164
    assert native[0][0] == 0.0
    with VideoFile(path) as v:
        times = [t for t, _ in v.frames(5)]
    assert len(times) in (32, 33, 34)  # 6.56 s at 5 fps: ~33
    assert times[0] == 0.0
    assert increasing(times)


def test_eye_makeup_avi_times_never_go_back_and_5fps_is_on_the_grid():
    """MPEG-4 Part 2 with packed B-frames in AVI: frame.pts come out permuted (1, 2, 4, 3, ...)
    while the decode order is right; the reader falls back to dts, as FFmpeg's best effort
    timestamp does. The one frame seen before the fall-back repeats its neighbour's time."""
    path = video("eye_makeup.avi")
    with VideoFile(path) as v:
        times = [t for t, _ in v.frames(None)]
    assert all(b >= a for a, b in zip(times, times[1:], strict=False))
    assert len(set(times)) >= len(times) - 1
    assert times[-1] == pytest.approx(163 * 0.04, abs=1e-6)
    with VideoFile(path) as v:
        picked = [t for t, _ in v.frames(5)]
    for k, t in enumerate(picked):  # 25 fps: a frame lands exactly on every 0.2 s step
        assert t == pytest.approx(k * 0.2, abs=1e-6)


def test_carving_ice_rpi_native_frame_count():
    with VideoFile(video("carving_ice_rpi.mp4")) as v:
        frames = list(v.frames(None))
        assert v.info.codec == "h264"
    assert len(frames) == 131
    assert all(isinstance(f, av.VideoFrame) for _, f in frames)


def test_skip_nonref_keeps_the_grid_and_leaves_low_rate_video_alone():
    """B-frames are not decoded; each 0.2 s step still gets a frame within two source frames."""
    with VideoFile(video("carving_ice_android.mp4")) as v:
        exact = [t for t, _ in v.frames(5)]
    with VideoFile(video("carving_ice_android.mp4")) as v:
        fast = [t for t, _ in v.frames(5, skip_nonref=True)]
        assert v.stream.codec_context.skip_frame == "NONREF"
    assert abs(len(fast) - len(exact)) <= 1
    assert all(abs(t - 0.2 * k) <= 2 / 30 + 1e-6 for k, t in enumerate(fast))
    assert fast != exact  # some steps really got a neighbouring frame
    with VideoFile(video("example_video01.mp4")) as v:  # 5 fps: every frame is wanted
        assert len(list(v.frames(5, skip_nonref=True))) == 50


# -- decoding at a working size ------------------------------------------------------------


def test_working_size_scales_the_short_side_down_never_up():
    from vidcls.media import working_size

    assert working_size(1280, 720, 344) == (612, 344)
    assert working_size(720, 1280, 344) == (344, 612)  # portrait
    assert working_size(180, 100, 344) is None  # already small: kept as it is
    assert working_size(1280, 720, None) is None


def test_read_clip_decodes_at_the_working_size():
    import cv2

    from vidcls.media import read_clip, read_frames

    path = video("carving_ice_android.mp4")  # 360x360, 30 fps
    full = read_frames(path, 5.0)
    small, rate = read_clip(path, 5.0, 172)
    assert rate == pytest.approx(30.0) and len(small) == len(full)
    assert all(f.shape == (172, 172, 3) and f.dtype == np.uint8 for f in small)
    # The same pictures, scaled with an area filter (swscale's and OpenCV's differ slightly).
    want = cv2.resize(full[3], (172, 172), interpolation=cv2.INTER_AREA).astype(int)
    assert np.abs(small[3].astype(int) - want).mean() < 3
    same, _ = read_clip(path, 5.0, 400)  # larger than the video: not scaled at all
    np.testing.assert_array_equal(same[3], full[3])
