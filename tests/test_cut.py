"""Cutting clips out of a long video: exact re-encoded cuts, stream copies on keyframes, and
``copy=True`` from the keyframe before. The video is made here: each frame's grey level is
its number, so a clip's first frame says where it really starts."""

from __future__ import annotations

import numpy as np
import pytest

from vidcls import VidclsError
from vidcls.bench.clips import encode_h264
from vidcls.media import duration, read_clip
from vidcls.media.cut import cut_clip

FPS, GOP, SECONDS = 10, 25, 40  # a keyframe every 2.5 s


def level(n: int) -> int:
    return 20 + 2 * (n % 100)


@pytest.fixture(scope="module")
def long_video(tmp_path_factory):
    """40 s at 10 fps, keyframes every 2.5 s; (without B-frames, with B-frames)."""
    folder = tmp_path_factory.mktemp("long")
    frames = [np.full((48, 64, 3), level(n), np.uint8) for n in range(FPS * SECONDS)]
    gop = {"g": str(GOP), "keyint_min": str(GOP), "sc_threshold": "0", "crf": "10"}
    plain = encode_h264(folder / "plain.mp4", frames, 64, 48, FPS, options={**gop, "bf": "0"})
    b = encode_h264(folder / "b.mp4", frames, 64, 48, FPS, options={**gop, "bf": "2"})
    return plain, b


def first_frame_number(path) -> int:
    frames, _ = read_clip(path)
    return round((float(frames[0].mean()) - 20) / 2)


@pytest.mark.parametrize("which", [0, 1])
@pytest.mark.parametrize("start,end", [(3.3, 7.1), (12.0, 12.9), (0.0, 1.0), (38.2, 40.0)])
def test_a_cut_is_exact_to_a_frame(long_video, tmp_path, which, start, end):
    """Re-encoded, unless it starts on a keyframe of the video without B-frames (0.0 s)."""
    out = tmp_path / "c.mp4"
    cut = cut_clip(long_video[which], start, end, out)
    on_keyframe = round(start * FPS) % GOP == 0
    assert cut.mode == ("copy" if on_keyframe and which == 0 else "encode")
    frames, _ = read_clip(out)
    assert abs(len(frames) / FPS - (end - start)) <= 1 / FPS + 1e-9
    assert abs(duration(out) - (end - start)) <= 1 / FPS + 1e-9
    assert first_frame_number(out) == round(start * FPS) % 100


def test_a_cut_on_a_keyframe_without_b_frames_is_a_stream_copy(long_video, tmp_path):
    out = tmp_path / "c.mp4"
    cut = cut_clip(long_video[0], 5.0, 8.0, out)  # 5.0 s is frame 50, a keyframe
    assert cut.mode == "copy" and cut.start == pytest.approx(5.0)
    frames, _ = read_clip(out)
    assert len(frames) == 30 and first_frame_number(out) == 50 % 100


@pytest.mark.parametrize("which", [0, 1])
def test_copy_starts_at_the_keyframe_before_within_one_gop(long_video, tmp_path, which):
    out = tmp_path / "c.mp4"
    cut = cut_clip(long_video[which], 6.0, 9.0, out, copy=True)
    assert cut.mode == "copy" and cut.start == pytest.approx(5.0)  # the keyframe at 5.0 s
    frames, _ = read_clip(out)
    assert first_frame_number(out) == 50
    # From the keyframe to the end: at most one GOP more than asked for, never less.
    assert 3.0 <= len(frames) / FPS <= 3.0 + GOP / FPS + 1 / FPS


def test_bad_spans_and_files_are_errors_naming_the_video(long_video, tmp_path):
    with pytest.raises(VidclsError, match="start < end"):
        cut_clip(long_video[0], 5, 5, tmp_path / "c.mp4")
    with pytest.raises(VidclsError, match="no frames"):
        cut_clip(long_video[0], 50, 60, tmp_path / "c.mp4")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video" * 100)
    with pytest.raises(VidclsError) as e:
        cut_clip(bad, 0, 1, tmp_path / "c.mp4")
    assert str(bad) in str(e.value)
    assert not list(tmp_path.glob("*c.mp4*"))  # nothing half-written left behind


def test_spans_past_any_video_and_unwritable_clips_are_errors(long_video, tmp_path):
    """(issue 28) Times past any video are refused before a seek could overflow; a clip
    that cannot be written is an error naming it, not an OSError."""
    with pytest.raises(VidclsError, match=r"start < end <= 1e\+08, not 1e\+18 to 2e\+18"):
        cut_clip(long_video[0], 1e18, 2e18, tmp_path / "c.mp4")
    afile = tmp_path / "afile"
    afile.write_text("x")
    for copy in (False, True):
        with pytest.raises(VidclsError, match="cannot write the clip") as e:
            cut_clip(long_video[0], 1, 2, afile / "label" / "c.mp4", copy=copy)
        assert str(afile / "label" / "c.mp4") in str(e.value)
    assert afile.read_text() == "x"
