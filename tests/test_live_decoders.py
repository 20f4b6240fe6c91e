"""Sources decoded in child processes, handed over at the model's size."""

from __future__ import annotations

import itertools
import os
import signal
import time

import numpy as np
import pytest
from conftest import needs_shared, video

from vidcls.errors import VidclsError
from vidcls.live.decoders import DecoderPool
from vidcls.live.sources import SourceSpec
from vidcls.preprocess import Preprocessor

pytestmark = needs_shared


def wait_for(get, timeout: float = 120.0):  # a hang guard
    """``get()`` once it is not None (polled; the deadline is only reached on a failure)."""
    deadline = time.monotonic() + timeout
    while (got := get()) is None:
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
    return got


def test_frames_arrive_at_model_size_from_each_process():
    clip = str(video("carving_ice_android.mp4"))
    specs = [SourceSpec("a", clip), SourceSpec("b", clip), SourceSpec("c", clip)]
    before = time.monotonic()
    pool = DecoderPool(specs, 172, 172, processes=2, loop=True)
    try:
        procs = {source.process for source in pool.sources.values()}
        assert procs == {0, 1}
        for source in pool.sources.values():
            got = wait_for(lambda s=source: s.latest(45))  # past the clip's dark first second
            assert got.frame.shape == (172, 172, 3) and got.frame.dtype == np.uint8
            assert got.frame.std() > 5  # a real picture, not the empty shared memory
            assert before <= got.captured_at <= time.monotonic()  # one clock across processes
            newer = wait_for(lambda s=source, g=got: s.latest(g.index))
            assert newer.index > got.index
            assert source.online and source.captured > 10 and source.input_fps > 0
            picture = source.picture((64, 36))  # converted in its process, at any size
            assert picture.shape == (36, 64, 3) and picture.std() > 5
            assert source.picture().shape == (360, 360, 3)
        assert pool.cpu_seconds() > 0
    finally:
        pool.close()
    assert not any(os.path.exists(f"/proc/{pid}") for pid in pool.pids())


def test_pixels_are_the_preprocessors():
    """What a process hands over is Preprocessor.pixels of that frame: the same first frame
    of a file, scaled in the child, equals the one scaled here."""
    import av

    clip = str(video("carving_ice_android.mp4"))
    pool = DecoderPool([SourceSpec("a", clip)], 172, 172, processes=1)
    try:
        got = wait_for(lambda: pool.sources["a"].latest(-1))
        index, pixels = got.index, got.frame.copy()
    finally:
        pool.close()
    with av.open(clip) as c:
        frame = next(itertools.islice(c.decode(video=0), index, None))
    assert np.array_equal(pixels, Preprocessor(172, 172).pixels(frame))


def test_on_a_virtual_clock_a_process_hands_over_what_a_replay_here_would():
    """Each ask carries the clock's time: the process replays the file on a copy of that
    clock, so the frames (and their times) are those of a replay in this process."""
    from vidcls.live.clock import VirtualClock
    from vidcls.live.replay import ReplayedFile
    from vidcls.media import open_source

    clip = str(video("carving_ice_rpi.mp4"))
    clock = VirtualClock(7.0)
    pool = DecoderPool([SourceSpec("a", clip)], 172, 172, processes=1, clock=clock)
    here = ReplayedFile(open_source(clip), clock)
    here.start()
    there, pre = pool.sources["a"], Preprocessor(172, 172)
    seen = []
    try:
        while not there.ended:
            a, b = there.latest(seen[-1] if seen else -1), here.latest(seen[-1] if seen else -1)
            assert (a is None) == (b is None)
            if a is not None:
                assert (a.index, a.captured_at) == (b.index, b.captured_at)
                assert np.array_equal(a.frame, pre.pixels(b.frame))
                seen.append(a.index)
            clock.advance(0.25)
    finally:
        pool.close()
    # A new frame at each quarter second from 0 to 4.5 s (the file lasts 4.4 s).
    assert here.ended and len(seen) == 19 and there.captured == here.captured == 131


def test_a_bad_source_is_one_error_and_leaves_nothing_running():
    with pytest.raises(VidclsError, match="no such file"):
        DecoderPool([SourceSpec("x", "/no/such/clip.mp4")], 172, 172, processes=1)


def test_a_decoding_process_that_dies_is_started_again_the_other_goes_on():
    clip = str(video("carving_ice_android.mp4"))
    specs = [SourceSpec("a", clip), SourceSpec("b", clip)]
    pool = DecoderPool(specs, 172, 172, processes=2, loop=True)
    a, b = pool.sources["a"], pool.sources["b"]
    try:
        first_a, first_b = wait_for(lambda: a.latest(-1)), wait_for(lambda: b.latest(-1))
        os.kill(pool.pids()[a.process], signal.SIGKILL)
        deadline, seen = time.monotonic() + 120, []  # a hang guard
        while time.monotonic() < deadline:
            got = a.latest(first_a.index)
            if got is not None and got.generation != first_a.generation:
                break
            newer_b = b.latest(first_b.index)
            seen.append(newer_b is not None)
            time.sleep(0.05)
        else:
            raise AssertionError("the killed process's source never came back")
        assert got.index > first_a.index  # newer than anything before the crash
        assert a.reconnects >= 1 and a.captured > first_a.index
        assert any(seen)  # b was served meanwhile from its own process
    finally:
        pool.close()


@needs_shared
def test_a_script_without_the_main_guard_is_told_to_add_it(tmp_path):
    """Decoding processes start the spawn way and import the calling script again; without
    the guard they cannot start, and the error says what to do."""
    import subprocess
    import sys

    script = tmp_path / "cams.py"
    script.write_text(
        "import vidcls\n"
        f"vidcls.watch([{str(video('carving_ice_rpi.mp4'))!r}], decoders=1, duration=1)\n"
    )
    r = subprocess.run([sys.executable, script], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("vidcls.errors.VidclsError: ") and str(script) in last, r.stderr
    assert 'if __name__ == "__main__":' in last
