"""``vidcls live --clips``: every segment's end event names a clip of the source (its own
packets, not re-encoded) and a snapshot; a folder that cannot be written costs the files, not
the events; a process killed midway leaves only whole clips; retention deletes the oldest."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import av
import cv2
import pytest
from cli_run import CLI, run
from conftest import needs_shared, video

from vidcls.live.clips import ClipOptions, prune

CLIP = "carving_ice_android.mp4"  # 360x360 H.264, 6.6 s: one "carving ice" segment


def events(stdout: str) -> list[dict]:
    return [e for e in map(json.loads, stdout.splitlines()) if "event" in e]


def decoded(path: Path) -> tuple[int, str, int, int]:
    """Frames decoded (every one, or an error), codec, width, height."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        return sum(1 for _ in c.decode(v)), v.codec_context.name, v.width, v.height


@needs_shared
def test_the_end_event_names_a_clip_and_a_snapshot(tmp_path):
    """From a decoding process (a source read in this process: the Python test below)."""
    decoders = "1"
    folder = tmp_path / "clips"
    r = run(
        "live", f"ice={video(CLIP)}", "--clips", folder, "--post-roll", "1",
        "--format", "jsonl", "--decoders", decoders, "--replay", timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    start, end = events(r.stdout)
    assert (start["event"], end["event"]) == ("start", "end")
    assert "clip" not in start and "snapshot" not in start
    clip, snapshot = Path(end["clip"]), Path(end["snapshot"])
    assert clip.parent == snapshot.parent == folder / "ice"
    assert clip.name.endswith("_carving-ice.mp4") and snapshot.stem == clip.stem
    # The whole segment and pre-roll (the file starts 1 s before it, and the segment lasts
    # to the file's end): the source's codec and size, all 200 frames, each decodable.
    frames, codec, width, height = decoded(clip)
    assert (codec, width, height, frames) == ("h264", 360, 360, 200)
    with av.open(str(video(CLIP))) as src:
        ours = [bytes(p) for p in src.demux(video=0) if p.size]
    with av.open(str(clip)) as c:
        theirs = [bytes(p) for p in c.demux(video=0) if p.size]
    assert theirs == ours  # stream copy: the same packets, not re-encoded
    picture = cv2.imread(str(snapshot))
    assert picture.shape == (360, 360, 3)  # full size, not the model's 172x172
    assert sorted(p.name for p in (folder / "ice").iterdir()) == sorted([clip.name, snapshot.name])


@needs_shared
def test_a_folder_that_cannot_be_written_costs_the_files_not_the_events(tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    (folder / "ice").write_text("a file where the source's folder would go")
    short = video("carving_ice_rpi.mp4")
    r = run("live", f"ice={short}", "--clips", folder, "--format", "jsonl", "--replay")
    assert r.returncode == 0, r.stderr
    assert [e["event"] for e in events(r.stdout)] == ["start", "end"]
    assert "snapshot" not in events(r.stdout)[1]  # not written: not named
    warnings = [line for line in r.stderr.splitlines() if "cannot write" in line]
    assert len(warnings) == 2, r.stderr  # the snapshot and the clip, a line each
    assert "Traceback" not in r.stderr
    assert "results (" in r.stderr.splitlines()[-1]  # the source ran to its end


@needs_shared
def test_sigkill_leaves_only_whole_clips(tmp_path):
    """Two actions joined and looped give a segment, and a clip, every few seconds; killed
    with SIGKILL while it goes on, every file under a final name plays to its last frame."""
    from media import join_clips

    joined = tmp_path / "joined.mp4"
    join_clips([video(CLIP), video("example_video01.mp4")], joined, size=192, fps=15)
    folder = tmp_path / "clips"
    proc = subprocess.Popen(
        [*CLI, "live", f"ice={joined}", "--loop", "--clips", folder, "--format", "jsonl",
         "--pre-roll", "2", "--post-roll", "1", "--window", "2", "--replay"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while len(list(folder.glob("ice/*.mp4"))) < 2:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    clips = sorted(folder.glob("ice/*.mp4"))
    assert len(clips) >= 2
    for clip in clips:
        frames, codec, *_ = decoded(clip)
        assert codec == "h264" and frames > 30
    assert all(p.suffix in (".mp4", ".jpg", ".part") for p in folder.glob("ice/*"))


def test_options_are_checked(tmp_path):
    with pytest.raises(ValueError, match="post_roll"):
        ClipOptions(tmp_path, post_roll=-1)
    with pytest.raises(ValueError, match="keep_gb"):
        ClipOptions(tmp_path, keep_gb=0)


@needs_shared
def test_bad_clip_flags_are_one_line(tmp_path):
    from cli_run import assert_clean_error

    assert_clean_error(
        run("live", video(CLIP), "--clips", tmp_path, "--pre-roll", "-2"), "--pre-roll"
    )
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert_clean_error(run("live", video(CLIP), "--clips", blocker / "sub"), "clips folder")


def test_prune_deletes_the_oldest_past_the_age_or_size(tmp_path):
    now = time.time()
    made = []
    for i, age_days in enumerate([10, 5, 2, 0.1]):
        for suffix, size in ((".mp4", 3000), (".jpg", 1000)):
            path = tmp_path / "cam" / f"{i}_x{suffix}"
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(b"\0" * size)
            t = now - age_days * 86400
            os.utime(path, (t, t))
            made.append(path)
    (tmp_path / "cam" / ".9_x.mp4.part").write_bytes(b"\0" * 99999)  # being written: not ours
    assert sorted(p.name for p in prune(tmp_path, 7, None)) == ["0_x.jpg", "0_x.mp4"]
    # 3 pairs of 4 kB left; at most 8 kB: the oldest pair goes, then the next file.
    gone = prune(tmp_path, None, 8000 / 1e9)
    assert sorted(p.name for p in gone) == ["1_x.jpg", "1_x.mp4"]
    left = sorted(p.name for p in (tmp_path / "cam").iterdir())
    assert left == [".9_x.mp4.part", "2_x.jpg", "2_x.mp4", "3_x.jpg", "3_x.mp4"]


def test_prune_counts_a_clips_browser_copy_and_deletes_it_with_the_clip(tmp_path):
    now = time.time()
    cam = tmp_path / "cam"
    cam.mkdir()
    for i, age_days in enumerate([3, 2, 1]):
        clip = cam / f"{i}_x.mp4"
        clip.write_bytes(b"\0" * 1000)
        os.utime(clip, (now - age_days * 86400,) * 2)
    (cam / ".0_x.web.mp4").write_bytes(b"\0" * 5000)  # the server's copies of 0 and 1
    (cam / ".1_x.web.mp4").write_bytes(b"\0" * 500)
    (cam / ".7_x.web.mp4").write_bytes(b"\0" * 500)  # its clip was deleted by hand
    (cam / ".2_x.web.mp4.part").write_bytes(b"\0" * 9999)  # being made: not touched
    # 8.5 kB in all; at most 2 kB: clip 0 goes with its 5 kB copy, then clip 1 with its copy.
    assert [p.name for p in prune(tmp_path, None, 2000 / 1e9)] == ["0_x.mp4", "1_x.mp4"]
    assert sorted(p.name for p in cam.iterdir()) == [".2_x.web.mp4.part", "2_x.mp4"]


@needs_shared
def test_python_watch_with_zones_and_clips(tmp_path):
    from vidcls import watch
    from vidcls.live import SourceSpec, Zone

    zones = (Zone("left", (0, 0, 0.5, 1)),)
    events = []
    watch(
        [SourceSpec("cam", str(video("carving_ice_rpi.mp4")), zones)],
        on_event=lambda name, e: events.append((name, e)),
        clips=ClipOptions(tmp_path, post_roll=1),
        replay=True,
    )
    ends = [(name, e) for name, e in events if e.kind == "end"]
    assert ends and all((name.source, name.zone) == ("cam", "left") for name, _ in ends)
    name, end = ends[-1]
    assert Path(end.clip).parent == tmp_path / "cam" and "_left_" in Path(end.clip).name
    assert decoded(Path(end.clip))[1:] == ("h264", 172, 172)  # the camera's, not the zone's
    assert cv2.imread(end.snapshot).shape == (172, 172, 3)
