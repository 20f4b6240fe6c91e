"""``vidcls classify --annotate``: a playable copy with the results drawn on, audio kept."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest
from cli_here import run_here
from cli_run import assert_clean_error, run
from conftest import needs_shared, video
from media import join_clips

from vidcls import VidclsError

pytestmark = needs_shared


@dataclass
class Probe:
    """What a file decodes to (not what its header claims)."""

    times: list[float]
    width: int
    height: int
    rate: float
    stream_duration: float | None
    audio: float | None  # seconds of decoded audio samples

    @property
    def span(self) -> float:
        return self.times[-1] - self.times[0]


def probe(path: Path) -> Probe:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        times = [f.time for f in c.decode(video=0)]
        duration = float(v.duration * v.time_base) if v.duration and v.time_base else None
        probe = Probe(times, v.width, v.height, float(v.average_rate or 0), duration, None)
    with av.open(str(path)) as c:
        if c.streams.audio:
            frames = list(c.decode(audio=0))
            probe.audio = sum(f.samples for f in frames) / frames[0].sample_rate
    return probe


def decoded_frame(path: Path, index: int, size: tuple[int, int] | None = None) -> np.ndarray:
    """Frame ``index`` as RGB, scaled by FFmpeg to ``(width, height)`` when given."""
    width, height = size or (None, None)
    with av.open(str(path)) as c:
        for i, frame in enumerate(c.decode(video=0)):
            if i == index:
                return frame.to_ndarray(format="rgb24", width=width, height=height).astype(int)
    raise AssertionError(f"{path} has no frame {index}")


@pytest.mark.parametrize(
    ("clip", "frames"),
    [("carving_ice_rpi.mp4", 131), ("eye_makeup.avi", 164)],  # h264 + AAC, mpeg4 + MP3
)
def test_annotated_copy_keeps_frames_times_and_audio(clip, frames, tmp_path):
    src, out = video(clip), tmp_path / "out.mp4"
    r = run("classify", src, "--annotate", out, "--summary-only")
    assert r.returncode == 0, r.stderr
    assert f"wrote {out}" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]

    a, b = probe(src), probe(out)
    assert len(a.times) == frames
    assert len(b.times) == len(a.times)
    interval = 1 / a.rate
    assert abs(b.span - a.span) <= interval, (a.span, b.span)
    if a.stream_duration and b.stream_duration:
        assert abs(b.stream_duration - a.stream_duration) <= interval
    assert np.all(np.diff(b.times) > 0)
    assert a.audio is not None and b.audio is not None
    assert abs(b.audio - a.audio) <= 0.1, (a.audio, b.audio)
    assert b.height >= 360 and b.width % 2 == 0 and b.height % 2 == 0
    assert b.width / b.height == pytest.approx(a.width / a.height, rel=0.02)

    # The overlay is drawn: the top-left box is darkened with text on it, the rest is intact.
    k = frames // 2
    drawn = decoded_frame(out, k)
    plain = decoded_frame(src, k, (b.width, b.height))
    box = np.abs(drawn[:50, :80] - plain[:50, :80]).mean()
    corner = np.abs(drawn[-80:, -80:] - plain[-80:, -80:]).mean()
    assert box > 20, (box, corner)
    assert drawn[:50, :80].mean() < plain[:50, :80].mean() - 10
    assert corner < 6, (box, corner)


def test_video_without_audio(tmp_path):
    joined = tmp_path / "joined.mp4"  # the clip re-encoded by PyAV without its audio
    join_clips([video("carving_ice_rpi.mp4")], joined)
    out = tmp_path / "annotated.mp4"
    r = run("classify", joined, "--window", 4, "--annotate", out, "--summary-only")
    assert r.returncode == 0, r.stderr
    a, b = probe(joined), probe(out)
    assert a.audio is None and b.audio is None
    assert len(b.times) == len(a.times)
    assert abs(b.span - a.span) <= 1 / a.rate
    assert (b.width, b.height) == (360, 360)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["annotated.mp4", "joined.mp4"]


def test_missing_output_folder(tmp_path, capfd):
    out = tmp_path / "missing" / "out.mp4"
    r = run_here(capfd, "classify", video("carving_ice_rpi.mp4"), "--annotate", out)
    assert_clean_error(r, out.parent)
    assert list(tmp_path.iterdir()) == []


def test_failure_leaves_nothing_behind(tmp_path):
    """An output name that is not a video container fails cleanly; the old file stays."""
    out = tmp_path / "out.xyz"
    out.write_text("old")
    r = run("classify", video("carving_ice_rpi.mp4"), "--annotate", out, "--summary-only")
    assert_clean_error(r, out)
    assert [p.name for p in tmp_path.iterdir()] == ["out.xyz"]
    assert out.read_text() == "old"


def test_annotate_api_reports_unwritable_formats(tmp_path):
    from vidcls import classify_video
    from vidcls.annotate import annotate_video

    result = classify_video(video("carving_ice_rpi.mp4"))
    with pytest.raises(VidclsError, match="cannot write annotated video"):
        annotate_video(result, tmp_path / "out.png")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["out.xyz", "out.png"])
def test_unwritable_output_format_is_a_clean_error(tmp_path, name, capfd):
    out = tmp_path / name
    r = run_here(
        capfd, "classify", video("carving_ice_rpi.mp4"), "--annotate", out, "--summary-only"
    )
    assert_clean_error(r, out)
