"""Sources decoded in child processes, handed over at the model's size."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest
from conftest import needs_shared, video

from vidcls.decoders import DecoderPool
from vidcls.errors import VidclsError
from vidcls.preprocess import Preprocessor
from vidcls.sources import SourceSpec

pytestmark = needs_shared


def test_frames_arrive_at_model_size_from_each_process():
    clip = str(video("carving_ice_android.mp4"))
    specs = [SourceSpec("a", clip), SourceSpec("b", clip), SourceSpec("c", clip)]
    pool = DecoderPool(specs, 172, 172, processes=2, loop=True)
    try:
        procs = {slot.process for slot in pool.slots.values()}
        assert procs == {0, 1}
        time.sleep(1.0)
        for slot in pool.slots.values():
            got = slot.latest(-1)
            assert got is not None, slot.status
            assert got.frame.shape == (172, 172, 3) and got.frame.dtype == np.uint8
            assert got.frame.std() > 5  # a real picture, not the empty shared memory
            assert 0 <= time.monotonic() - got.captured_at < 0.5  # one clock across processes
            time.sleep(0.1)
            newer = slot.latest(got.index)
            assert newer is not None and newer.index > got.index
            assert slot.online and slot.captured > 10 and slot.input_fps > 20
        assert pool.cpu_seconds() > 0
    finally:
        pool.close()
    assert all(not p.is_alive() for p in pool._procs) if pool._procs else True


def test_pixels_are_the_preprocessors():
    """What a process hands over is Preprocessor.pixels of that frame: the same first frame
    of a file, scaled in the child, equals the one scaled here."""
    import av

    clip = str(video("carving_ice_android.mp4"))
    pool = DecoderPool([SourceSpec("a", clip)], 172, 172, processes=1)
    try:
        deadline = time.monotonic() + 5
        got = None
        while got is None and time.monotonic() < deadline:
            got = pool.slots["a"].latest(-1)
        assert got is not None
        index, pixels = got.index, got.frame.copy()
    finally:
        pool.close()
    with av.open(clip) as c:
        frame = next(itertools.islice(c.decode(video=0), index, None))
    assert np.array_equal(pixels, Preprocessor(172, 172).pixels(frame))


def test_a_bad_source_is_one_error_and_leaves_nothing_running():
    with pytest.raises(VidclsError, match="no such file"):
        DecoderPool([SourceSpec("x", "/no/such/clip.mp4")], 172, 172, processes=1)
