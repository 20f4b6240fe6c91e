"""The scheduler: many streams on one model, each at the model's rate, fair under overload."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from conftest import needs_shared, video

from vidcls import ClassifierOptions, VideoClassifier
from vidcls.media import read_frames
from vidcls.scheduler import FrameSlot, Scheduler

pytestmark = needs_shared


@pytest.fixture(scope="module")
def frames():
    """Real RGB frames of a clip, cut small so pushing them costs little."""
    return read_frames(video("carving_ice_android.mp4"), fps=30, short_side=360)[:60]


class Camera(threading.Thread):
    """Pushes a clip's frames into a slot at ``fps`` until stopped."""

    def __init__(self, frames, fps=30.0):
        super().__init__(daemon=True)
        self.slot, self.frames, self.fps = FrameSlot(), frames, fps
        self.stopping = threading.Event()

    def run(self):
        i = 0
        while not self.stopping.wait(1 / self.fps):
            self.slot.put(self.frames[i % len(self.frames)])
            i += 1


def _watch(frames, n, seconds, window=None, workers=1):
    clf = VideoClassifier.create_from_options(ClassifierOptions(window=window, top_k=1))
    cams = [Camera(frames) for _ in range(n)]
    got = {i: [] for i in range(n)}
    lock = threading.Lock()
    counting = threading.Event()  # results count once every stream runs

    def on_result(stream, result):
        if counting.is_set():
            with lock:
                got[stream.name].append(result)

    with Scheduler(clf, workers=workers) as scheduler:
        for i, cam in enumerate(cams):
            cam.start()
            scheduler.add(i, cam.slot, on_result)
        time.sleep(0.5)
        counting.set()
        time.sleep(seconds)
        streams = list(scheduler.streams)
    for cam in cams:
        cam.stopping.set()
    return got, streams


def test_each_stream_fed_at_the_model_rate_with_its_own_state(frames):
    got, streams = _watch(frames, 4, 3.0)
    for results in got.values():
        assert 13 <= len(results) <= 16  # 5 per second for 3 s
        times = np.array([r.time for r in results])
        assert np.all(np.diff(times) > 0.15)  # never faster than the model's rate
        assert max(r.latency_ms for r in results) < 150
    # Same clip, own state each: every stream converges to the same prediction.
    assert len({results[-1].top[0].label for results in got.values()}) == 1
    assert all(s.stats.dropped == 0 for s in streams)


def test_overload_drops_fairly_and_keeps_latency_low(frames):
    """Far more streams than one worker can feed at 5 fps: every stream gets about the same
    share, the missed ticks are counted per stream, and frames stay fresh (no queue)."""
    got, streams = _watch(frames, 32, 4.0, window=4.0)  # 32 x 5 fps x 2 invokes on one worker
    counts = np.array([len(r) for r in got.values()])
    assert counts.min() > 0
    assert counts.max() - counts.min() <= max(3, 0.25 * counts.mean()), counts
    dropped = np.array([s.stats.dropped for s in streams])
    if counts.mean() < 0.9 * 5 * 4.0:  # overloaded here: the drops are reported
        assert dropped.min() > 0, dropped
    latencies = np.array([r.latency_ms for rs in got.values() for r in rs])
    # A result's frame is at most a few source frames old, whatever the load.
    assert np.percentile(latencies, 90) < 250, np.percentile(latencies, 90)


def test_a_stream_ends_with_its_slot_and_its_open_segment_is_closed(frames):
    clf = VideoClassifier.create_from_options(ClassifierOptions(top_k=1))
    ended = threading.Event()
    events = []
    results = []

    def on_end(stream, closing):
        events.extend(closing)
        ended.set()

    with Scheduler(clf, segments=True, workers=1) as scheduler:
        cam = Camera(frames)
        cam.start()
        stream = scheduler.add("cam", cam.slot, lambda s, r: results.append(r), on_end)
        time.sleep(2.5)
        cam.stopping.set()
        cam.slot.close()
        assert ended.wait(2.0)
        assert stream not in scheduler.streams
    opened = [e for r in results for e in r.events if e.kind == "start"]
    assert opened and [e.kind for e in events] == ["end"]
