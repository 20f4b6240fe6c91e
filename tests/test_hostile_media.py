"""Hostile and unusual video input: every case is a result or a one-line error, never a
traceback, a hang or a sideways picture."""

from __future__ import annotations

import os
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import av
import numpy as np
import pytest
from cli_here import run_here
from cli_run import assert_clean_error, run
from conftest import VIDEOS, needs_shared, video
from media import rotated_copy

import vidcls
from vidcls.errors import VidclsError
from vidcls.media import VideoFile, read_frames

pytestmark = needs_shared


@pytest.fixture(scope="module")
def classifier():
    return vidcls.load_classifier("a0", top_k=5)


@pytest.fixture(scope="module")
def http_videos():
    """The shared clips over HTTP from Python's own server (no range requests)."""
    handler = partial(SimpleHTTPRequestHandler, directory=str(VIDEOS))
    handler.log_message = lambda *a: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_unknown_codec_is_a_clean_error(tmp_path):
    data = video("carving_ice_rpi.mp4").read_bytes()
    assert data.count(b"avc1") == 1
    bad = tmp_path / "zzzz.mp4"
    bad.write_bytes(data.replace(b"avc1", b"zzzz"))
    with pytest.raises(VidclsError, match="unknown or unsupported video codec"):
        VideoFile(bad)
    good = video("carving_ice_rpi.mp4")
    r = run("classify", bad, good, "--format", "json", "--summary-only")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert '"carving ice"' in r.stdout  # the good file still has its result
    assert "zzzz.mp4: unknown or unsupported video codec" in r.stderr


@pytest.mark.parametrize("share", [0.35, 0.5, 0.8, 0.95])
def test_truncated_avi_is_reported(tmp_path, share):
    data = video("eye_makeup.avi").read_bytes()
    cut = tmp_path / f"cut{int(share * 100)}.avi"
    cut.write_bytes(data[: int(len(data) * share)])
    with pytest.raises(VidclsError, match="truncated: only"):
        vidcls.classify_video(cut)


def test_every_shared_clip_is_complete():
    """The truncation rule has no false alarms on the real clips and the basketball set."""
    clips = sorted(VIDEOS.glob("*.*")) + sorted((VIDEOS.parents[1] / "datasets").rglob("*.mp4"))
    assert len(clips) > 100
    for clip in clips:
        with VideoFile(clip) as v:
            assert sum(1 for _ in v.frames()) > 0


def test_fifo_device_and_symlink_loop_are_named(tmp_path, capfd):
    fifo = tmp_path / "clip.mp4"
    os.mkfifo(fifo)
    # Named without being opened: opening a FIFO nobody writes to would never return.
    assert_clean_error(run("classify", fifo, timeout=60), fifo, "is a FIFO, not a regular")
    assert_clean_error(run("classify", "/dev/zero"), "/dev/zero", "device")
    loop = tmp_path / "loop.mp4"
    loop.symlink_to(loop)
    assert_clean_error(run_here(capfd, "classify", loop), loop, "symbolic link loop")
    assert_clean_error(run("classify", "--model", fifo, video("carving_ice_rpi.mp4")), "FIFO")
    assert_clean_error(run("classify", "--labels", "/dev/zero", video("carving_ice_rpi.mp4")))


def test_newline_in_a_file_name_stays_on_one_error_line(tmp_path):
    odd = tmp_path / "two\nlines.mp4"
    odd.write_bytes(b"not a video at all")
    line = assert_clean_error(run("classify", odd))
    assert "two lines.mp4" in line


def test_video_url_is_fetched_and_classified(http_videos, classifier, capfd):
    url = f"{http_videos}/carving_ice_rpi.mp4"  # its index is at the end: not streamable
    r = vidcls.classify_video(url, classifier=classifier)
    local = vidcls.classify_video(video("carving_ice_rpi.mp4"), classifier=classifier)
    assert r.source == url and r.to_dict() == {**local.to_dict(), "source": url}
    cli = run("classify", url, "--summary-only")
    assert cli.returncode == 0 and "carving ice" in cli.stdout
    assert_clean_error(run("classify", f"{http_videos}/missing.mp4"), "HTTP 404")
    rtsp = run_here(capfd, "classify", "rtsp://127.0.0.1:9/cam")  # refused before any reading
    assert_clean_error(rtsp, "use `vidcls live`")


def test_live_plays_a_file_url_once_and_ends(http_videos):
    """A file's URL is fetched and played as a file (a stream could not be replayed), once:
    every tick of its 4.4 s, then the end."""
    url = f"{http_videos}/carving_ice_rpi.mp4"
    r = run("live", url, "--headless", "--format", "jsonl", "--replay")
    assert r.returncode == 0, r.stderr
    assert "reconnect" not in r.stderr.replace("0 reconnects", "")
    assert r.stdout.count('"top"') == 23


def test_rotated_phone_clip_is_classified_and_annotated_upright(tmp_path, classifier):
    src = video("carving_ice_rpi.mp4")
    turned = rotated_copy(src, tmp_path / "phone.mp4", 90)
    with av.open(str(turned)) as c:
        assert next(c.decode(video=0)).rotation == 90  # stored sideways, with the flag
    upright = vidcls.classify_video(src, classifier=classifier)
    phone = vidcls.classify_video(turned, classifier=classifier)
    assert phone.summary[0].label == upright.summary[0].label == "carving ice"
    assert abs(phone.summary[0].score - upright.summary[0].score) < 0.05
    a, b = read_frames(src)[70].astype(int), read_frames(turned)[70].astype(int)
    assert a.shape == b.shape and np.abs(a - b).mean() < 8  # upright, not sideways
    assert np.abs(a - np.rot90(b, 1)).mean() > 3 * np.abs(a - b).mean()
    out = tmp_path / "annotated.mp4"
    r = run("classify", turned, "--annotate", out)
    assert r.returncode == 0, r.stderr
    with av.open(str(out)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert frames[0].shape[:2] == (360, 360)
    shot = frames[70][180:].astype(int)  # below the text: the picture itself, enlarged
    ref = np.asarray(
        av.VideoFrame.from_ndarray(read_frames(src)[70], format="rgb24")
        .reformat(width=360, height=360)
        .to_ndarray(format="rgb24")
    )[180:].astype(int)
    assert np.abs(shot - ref).mean() < 12


def test_disk_full_is_a_clean_error_and_the_old_output_stays(tmp_path):
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    if os.system(f"mount -t tmpfs -o size=64k tmpfs {tiny} 2>/dev/null") != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        out = tiny / "out.json"
        out.write_text("old")
        clip = video("carving_ice_android.mp4")
        r = run("classify", clip, "--fps", "native", "--format", "json", "-o", out)
        assert_clean_error(r, out, "No space left on device")
        assert out.read_text() == "old" and sorted(p.name for p in tiny.iterdir()) == ["out.json"]
        r = run("live", video("carving_ice_rpi.mp4"), "--headless", "-o", "/dev/full")
        assert_clean_error(r, "/dev/full", "No space left on device")
    finally:
        os.system(f"umount {tiny}")


def test_closed_pipe_ends_quietly():
    import subprocess
    import sys

    cmd = f"{sys.executable} -m vidcls.cli classify {video('carving_ice_android.mp4')} | true"
    r = subprocess.run(
        ["bash", "-c", f"{cmd}; echo rc=${{PIPESTATUS[0]}}"],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )
    assert "rc=141" in r.stdout and "Traceback" not in r.stderr, r.stderr
