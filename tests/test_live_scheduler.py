"""The scheduler's rules on a clock the test moves: the model's rate, a state per source, fair
drops under an overload the test forces, slow sources, pushed frames with slack, ends.

No threads and no sleeps: a worker's loop is stepped by hand (``Worker.serve_next``), each
model run costs what the test says in clock time, and cameras deliver frames at their clock
times. The model itself is real.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import needs_shared, video

from vidcls import ClassifierOptions, VideoClassifier
from vidcls.live.capture import FrameSlot
from vidcls.live.scheduler import Scheduler
from vidcls.media import read_frames

pytestmark = needs_shared


@pytest.fixture(scope="module")
def frames():
    """Real RGB frames of a clip at the model's size (pushing them costs nothing)."""
    return read_frames(video("carving_ice_android.mp4"), fps=30, short_side=172)[:60]


@pytest.fixture(scope="module")
def model():
    return VideoClassifier.create_from_options(ClassifierOptions(top_k=1))


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


class Camera:
    """A source delivering frame k of a clip at clock time ``start + k / fps``."""

    def __init__(self, frames, fps: float = 30.0, start: float = 100.0, jitter=None) -> None:
        self.slot, self.frames, self.fps, self.start = FrameSlot(), frames, fps, start
        self.sent = -1
        self.jitter = jitter  # per-frame delays (seconds), for irregular arrivals

    def deliver(self, now: float) -> None:
        k = int((now - self.start) * self.fps + 1e-9)
        while self.sent < k:
            self.sent += 1
            at = self.start + self.sent / self.fps
            if self.jitter is not None:
                at += self.jitter[self.sent % len(self.jitter)]
            if at > now:
                self.sent -= 1
                return
            self.slot.input_fps = self.fps
            self.slot.put(self.frames[self.sent % len(self.frames)], captured_at=at)


def drive(scheduler: Scheduler, clock: Clock, cameras, seconds: float, cost: float) -> None:
    """Step worker 0 for ``seconds`` of clock time, each model run costing ``cost``."""
    worker = scheduler.workers[0]
    end = clock.t + seconds
    while clock.t < end:
        for cam in cameras:
            cam.deliver(clock.t)
        delay = worker.serve_next()
        if delay is None:
            return
        clock.t += min(delay, 1 / 240) if delay > 0 else cost


def watch(model, cameras, seconds, cost=0.004, **kwargs):
    clock = Clock()
    scheduler = Scheduler(model, workers=1, clock=clock, **kwargs)
    got: dict[int, list] = {i: [] for i in range(len(cameras))}
    feeds = [
        scheduler.add(i, cam.slot, lambda feed, r: got[feed.name].append(r))
        for i, cam in enumerate(cameras)
    ]
    drive(scheduler, clock, cameras, seconds, cost)
    return got, feeds


def test_each_source_fed_at_the_model_rate_with_its_own_state(model, frames):
    got, feeds = watch(model, [Camera(frames) for _ in range(4)], seconds=3.0)
    for results in got.values():
        assert len(results) in (15, 16)  # 5 per second for 3 s
        times = np.array([r.time for r in results])
        assert np.all(np.diff(times) >= 0.2 - 1e-6)  # never faster than the model's rate
        assert max(r.latency_ms for r in results) <= 1e3 / 30 + 1  # at most a frame old
    # Same clip, own state each: every source converges to the same prediction.
    assert len({results[-1].top[0].label for results in got.values()}) == 1
    assert all(f.stats.dropped == 0 for f in feeds)
    assert all(f.pipeline.classifier.frames_seen == len(got[f.name]) for f in feeds)


def test_forced_overload_drops_fairly_and_keeps_frames_fresh(model, frames):
    """32 sources at 5 fps need 160 model runs a second; at 25 ms a run the worker has 40:
    every source gets about a quarter, its missed ticks are counted, nothing queues."""
    got, feeds = watch(model, [Camera(frames) for _ in range(32)], seconds=4.0, cost=0.025)
    counts = np.array([len(r) for r in got.values()])
    assert 4.0 * 40 * 0.9 <= counts.sum() <= 4.0 * 40 + 1  # the worker never idles
    assert counts.max() - counts.min() <= 2, counts  # earliest deadline first: fair shares
    dropped = np.array([f.stats.dropped for f in feeds])
    assert dropped.min() > 0 and dropped.max() - dropped.min() <= 2, dropped
    # Every tick is fed or counted as dropped, but those since a source's last turn (a turn
    # comes every 32 / 40 s = 4 ticks here), which are counted at its next one.
    ticks = counts + dropped
    assert np.all((ticks >= 5 * 4.0 - 5) & (ticks <= 5 * 4.0 + 1)), ticks
    latencies = np.array([r.latency_ms for rs in got.values() for r in rs])
    assert latencies.max() <= 1e3 / 30 + 1  # the freshest frame, never an old one


def test_a_slow_source_is_fed_as_its_frames_come(model, frames):
    """A 5 fps camera on a 5 fps model: fed as each frame arrives, not up to a tick later."""
    jitter = [0.0, 0.03, 0.01, 0.045, 0.02]
    got, feeds = watch(model, [Camera(frames, fps=5.0, jitter=jitter)], seconds=6.0)
    latencies = np.array([r.latency_ms for r in got[0]])
    assert len(latencies) >= 28
    assert np.median(latencies[5:]) < 30, latencies  # locked on to the arrivals
    assert feeds[0].stats.dropped <= 1


def test_pushed_frames_within_slack_are_fed_at_once(model, frames):
    """A client pacing itself at the model's rate, a little early at times: with slack every
    frame is fed on arrival, and the rate is kept on average."""
    clock = Clock()
    scheduler = Scheduler(model, workers=1, clock=clock)
    slot, results = FrameSlot(), []
    scheduler.add("browser", slot, lambda feed, r: results.append(r), slack=0.1)
    worker = scheduler.workers[0]
    arrivals = [100.0 + 0.2 * k + (-0.06 if k % 3 == 1 else 0.0) for k in range(20)]
    replaced = 0
    for at in arrivals:
        clock.t = at
        replaced += slot.put(frames[0], captured_at=at) is not None
        while worker.serve_next() == 0.0:
            pass
    assert replaced == 0 and len(results) == 20
    assert max(r.latency_ms for r in results) == 0.0  # fed the moment it came


def test_a_feed_ends_with_its_source_and_its_open_segment_is_closed(model, frames):
    clock = Clock()
    scheduler = Scheduler(model, workers=1, clock=clock, segments=True)
    cam = Camera(frames)
    results, ended = [], []
    feed = scheduler.add(
        "cam", cam.slot, lambda f, r: results.append(r), lambda f, e: ended.append(e)
    )
    drive(scheduler, clock, [cam], 3.0, 0.004)
    cam.slot.close()
    drive(scheduler, clock, [], 1.0, 0.004)
    opened = [e for r in results for e in r.events if e.kind == "start"]
    assert opened and len(ended) == 1 and [e.kind for e in ended[0]] == ["end"]
    assert feed not in scheduler.feeds and feed in scheduler.ended
    scheduler.remove(feed)  # a second end changes nothing
    assert len(ended) == 1


def test_a_reset_forgets_the_state_before_the_next_frame(model, frames):
    clock = Clock()
    scheduler = Scheduler(model, workers=1, clock=clock)
    cam, results = Camera(frames), []
    feed = scheduler.add("cam", cam.slot, lambda f, r: results.append(r))
    drive(scheduler, clock, [cam], 2.0, 0.004)
    assert feed.pipeline.classifier.frames_seen == len(results) >= 10
    scheduler.reset(feed)
    drive(scheduler, clock, [cam], 0.3, 0.004)
    assert 1 <= feed.pipeline.classifier.frames_seen <= 2  # counting again from the reset
    assert feed.stats.resets == 0  # a reset asked for is not a reconnect
