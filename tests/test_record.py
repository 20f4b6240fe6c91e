"""Event clips from a source's own packets: what the recorder keeps, what a clip holds (the
source's codec and size, every frame decodable, the packets byte for byte, no re-encoding),
and writes that fail or are cut short."""

from __future__ import annotations

import logging
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from vidcls.media import ClipRecorder, RecordOptions

FPS, GOP, SECONDS = 30, 60, 20  # a keyframe every 2 s
BASE = 1000.0  # the monotonic time the source's first packet stands for


@pytest.fixture(scope="module")
def camera(tmp_path_factory) -> Path:
    """20 s of 320x240 H.264 at 30 fps with B-frames, a keyframe every 2 s, each frame's
    index drawn as a bar so frames differ."""
    path = tmp_path_factory.mktemp("camera") / "camera.mp4"
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=FPS, options={"preset": "veryfast", "bf": "2"})
        s.width, s.height, s.pix_fmt = 320, 240, "yuv420p"
        s.codec_context.gop_size = GOP
        s.codec_context.options = {"keyint_min": str(GOP), "sc_threshold": "0"}
        s.codec_context.time_base = Fraction(1, FPS)
        for i in range(FPS * SECONDS):
            rgb = np.full((240, 320, 3), 40, np.uint8)
            rgb[100:140, : (i % 320) + 1] = (250, 200, 30)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            for p in s.encode(frame):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    return path


def fed(
    recorder: ClipRecorder, path: Path, until: float = float("inf"), asks=(), end: bool = True
) -> list[bytes]:
    """Demux ``path`` into ``recorder`` up to ``until`` seconds of the source, each packet at
    BASE + its time, after asking for the clips ``asks`` [(path, start, end)]; the packets'
    bytes in order."""
    data = []
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        recorder.begin(stream)
        for ask in asks:
            recorder.request(*ask)
        for p in c.demux(stream):
            if not p.size:
                continue
            t = float(p.pts * p.time_base)
            if t > until:
                break
            data.append(bytes(p))
            recorder.add(p, BASE + t)
        if end:
            recorder.finish()
    return data


def frames_of(path: Path) -> tuple[list[float], str, int, int, list[bytes]]:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        packets = [bytes(p) for p in c.demux(v) if p.size]
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        times = [f.time for f in c.decode(v)]
        return times, v.codec_context.name, v.width, v.height, packets


def test_a_clip_spans_pre_roll_to_post_roll_from_a_keyframe_byte_for_byte(camera, tmp_path):
    options = RecordOptions(pre_roll=5, post_roll=3)
    rec = ClipRecorder(options)
    clip = tmp_path / "clip.mp4"
    start, end = 9.0, 12.0
    source = fed(rec, camera, asks=[(clip, BASE + start)])  # asked when the segment starts...
    rec.request(clip, BASE + start, BASE + end)  # ...and given its end when it ends
    rec.close()
    assert rec.written == [clip]
    times, codec, width, height, packets = frames_of(clip)
    assert (codec, width, height) == ("h264", 320, 240)
    # From the keyframe at or before start - pre_roll (4 s) to end + post_roll (15 s) and
    # the frames B-frames may reorder (0.5 s).
    assert times[0] == 0.0
    assert 15.0 - 4.0 <= times[-1] <= 15.5 - 4.0
    assert times == sorted(times) and len(times) == round(times[-1] * FPS) + 1  # none missing
    # Not re-encoded: the clip's packets are the source's, byte for byte, from a keyframe on.
    at = source.index(packets[0])
    assert at == 4 * FPS
    assert packets == source[at : at + len(packets)]


def test_first_and_last_frame_bounds(camera, tmp_path):
    """The must-hold bounds, on the clip's own frame times mapped back to the source's."""
    options = RecordOptions(pre_roll=3, post_roll=2)
    rec = ClipRecorder(options)
    clip = tmp_path / "c.mp4"
    start, end = 7.5, 9.2
    source = fed(rec, camera, asks=[(clip, BASE + start, BASE + end)])
    rec.close()
    times, *_, packets = frames_of(clip)
    offset = source.index(packets[0]) / FPS  # the source time of the clip's first frame
    first, last = offset + times[0], offset + times[-1]
    assert start - options.pre_roll - GOP / FPS <= first <= start - options.pre_roll
    assert last >= end + options.post_roll - 1 / FPS


def test_without_requests_the_recorder_keeps_pre_roll_and_one_gop(camera):
    rec = ClipRecorder(RecordOptions(pre_roll=5))
    fed(rec, camera)
    kept = [when for _, when, _ in rec._packets]
    assert kept[-1] - kept[0] <= 5 + GOP / FPS
    assert kept[-1] - kept[0] >= 5


def test_a_clip_is_written_once_its_post_roll_has_passed(camera, tmp_path):
    rec = ClipRecorder(RecordOptions(pre_roll=1, post_roll=2))
    clip = tmp_path / "c.mp4"
    fed(
        rec, camera, until=6.9, asks=[(clip, BASE + 4.0, BASE + 5.0)], end=False
    )  # the source has not yet passed 5 + 2 s
    assert rec._requests  # still waiting for its post-roll
    rec2 = ClipRecorder(RecordOptions(pre_roll=1, post_roll=2))
    fed(rec2, camera, until=7.7, asks=[(clip, BASE + 4.0, BASE + 5.0)], end=False)
    assert not rec2._requests  # handed to the writer while the source went on
    rec2.close()
    assert rec2.written == [clip]


def test_a_long_segment_is_cut_at_max_clip(camera, tmp_path):
    rec = ClipRecorder(RecordOptions(pre_roll=0, post_roll=0, max_clip=4))
    clip = tmp_path / "long.mp4"
    fed(rec, camera, asks=[(clip, BASE + 2.0)])  # never ends
    rec.close()
    times = frames_of(clip)[0]
    assert 4.0 <= times[-1] - times[0] <= 4.5  # max_clip, and frames B-frames may reorder


def test_an_unwritable_folder_is_one_warning_not_an_error(camera, tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    rec = ClipRecorder(RecordOptions())
    with caplog.at_level(logging.WARNING, logger="vidcls"):
        fed(rec, camera, asks=[(blocker / "sub" / "c.mp4", BASE + 3.0, BASE + 4.0)])
        rec.close()
    assert rec.written == []
    warnings = [r.getMessage() for r in caplog.records if "cannot write clip" in r.getMessage()]
    assert len(warnings) == 1 and "c.mp4" in warnings[0]


def test_a_write_cut_short_leaves_nothing_under_the_final_name(camera, tmp_path):
    """A disk that fills midway (a file size limit here): an error, and no file, partial or
    temporary, is left."""
    script = f"""
import resource, signal, av
from vidcls.media import write_clip
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))
with av.open({str(camera)!r}) as c:
    s = c.streams.video[0]
    try:
        write_clip(s, [p for p in c.demux(s) if p.size], {str(tmp_path / "clip.mp4")!r})
    except Exception as e:
        print(type(e).__name__)
"""
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() in ("OSError", "FileTooLargeError"), r.stdout + r.stderr
    assert list(tmp_path.iterdir()) == []


def test_record_options_are_checked():
    with pytest.raises(ValueError, match="pre_roll"):
        RecordOptions(pre_roll=-1)
    with pytest.raises(ValueError, match="max_clip"):
        RecordOptions(max_clip=float("nan"))
