"""The scheduler's rules on a clock the test moves: the model's rate, a state per source, fair
drops under an overload the test forces, slow sources, pushed frames with slack, ends.

No threads and no sleeps: the scheduler runs on a virtual clock, stepped by hand
(``Scheduler.step``), each model run costing what the test says in clock time
(``VirtualClock.run_cost``), and cameras deliver frames at their clock times. Runs are
deterministic, so counts are exact. The model itself is real.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import needs_shared, video

from vidcls import ClassifierOptions, VidclsError, VideoClassifier
from vidcls.live.capture import FrameSlot
from vidcls.live.clock import VirtualClock
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


def drive(scheduler: Scheduler, clock: VirtualClock, cameras, seconds: float) -> None:
    """Step the scheduler for ``seconds`` of clock time, the cameras delivering their frames
    every 1/240 s at most."""
    end = clock() + seconds
    while clock() < end:
        for cam in cameras:
            cam.deliver(clock())
        delay = scheduler.step()
        if delay is None:
            return
        clock.advance(min(delay, 1 / 240))


def watch(model, cameras, seconds, cost=0.004, **kwargs):
    clock = VirtualClock(100.0, run_cost=cost)
    scheduler = Scheduler(model, workers=1, clock=clock, **kwargs)
    got: dict[int, list] = {i: [] for i in range(len(cameras))}
    feeds = [
        scheduler.add(i, cam.slot, lambda feed, r: got[feed.name].append(r))
        for i, cam in enumerate(cameras)
    ]
    drive(scheduler, clock, cameras, seconds)
    return got, feeds


def test_each_source_fed_at_the_model_rate_with_its_own_state(model, frames):
    got, feeds = watch(model, [Camera(frames) for _ in range(4)], seconds=3.0)
    for results in got.values():
        assert len(results) == 15  # 5 per second for 3 s
        times = np.array([r.time for r in results])
        assert np.all(np.diff(times) >= 0.2 - 1e-6)  # never faster than the model's rate
        # At most a frame old when fed (the freshest), plus its 4 ms run.
        assert max(r.latency_ms for r in results) <= 1e3 / 30 + 4 + 1e-6
    # Same clip, own state each: every source converges to the same prediction.
    assert len({results[-1].top[0].label for results in got.values()}) == 1
    assert all(f.stats.dropped == 0 for f in feeds)
    assert all(f.pipeline.classifier.frames_seen == len(got[f.name]) for f in feeds)


def test_forced_overload_drops_fairly_and_keeps_frames_fresh(model, frames):
    """32 sources at 5 fps need 160 model runs a second; at 25 ms a run the worker has 40:
    every source gets exactly a quarter, its missed ticks are counted, nothing queues."""
    got, feeds = watch(model, [Camera(frames) for _ in range(32)], seconds=4.0, cost=0.025)
    counts = np.array([len(r) for r in got.values()])
    assert counts.sum() == 4.0 * 40  # the worker never idles
    assert np.all(counts == 5), counts  # earliest deadline first: equal shares
    dropped = np.array([f.stats.dropped for f in feeds])
    # Every one of a source's 20 ticks is fed or counted as dropped, but those since its last
    # turn (a turn comes every 32 / 40 s = 4 ticks here), which are counted at its next one.
    ticks = counts + dropped
    assert np.all((ticks > 20 - 4) & (ticks <= 20)), ticks
    latencies = np.array([r.latency_ms for rs in got.values() for r in rs])
    # The freshest frame, never an old one: at most a frame old when fed, plus its 25 ms run.
    assert latencies.min() >= 25 - 1e-6 and latencies.max() <= 1e3 / 30 + 25 + 1e-6


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
    clock = VirtualClock(100.0)
    scheduler = Scheduler(model, workers=1, clock=clock)
    slot, results = FrameSlot(), []
    scheduler.add("browser", slot, lambda feed, r: results.append(r), slack=0.1)
    worker = scheduler.workers[0]
    arrivals = [100.0 + 0.2 * k + (-0.06 if k % 3 == 1 else 0.0) for k in range(20)]
    replaced = 0
    for at in arrivals:
        clock.set(at)
        replaced += slot.put(frames[0], captured_at=at) is not None
        while worker.serve_next() == 0.0:
            pass
    assert replaced == 0 and len(results) == 20
    assert max(r.latency_ms for r in results) == 0.0  # fed the moment it came


@pytest.mark.parametrize("seed", range(6))
def test_a_page_at_the_model_rate_with_timer_jitter_gets_every_frame_classified(
    model, frames, seed
):
    """A browser page as the server's streams see it: a frame every 0.2 s from its own phase,
    each moved up to 40 ms either way by timers and the network, with the server's slack (half
    a period): each one fed, none replaced by the next, the rate kept on average."""
    rng = np.random.default_rng(seed)
    clock = VirtualClock(100.0, run_cost=0.004)
    scheduler = Scheduler(model, workers=1, clock=clock)
    slot, results = FrameSlot(), []
    scheduler.add("page", slot, lambda feed, r: results.append(r), slack=0.1)
    phase = rng.uniform(0, 0.2)
    arrivals = sorted(100.0 + phase + 0.2 * k + rng.uniform(-0.04, 0.04) for k in range(30))
    replaced = 0
    for at in arrivals:
        while clock() < at:  # the server goes on meanwhile
            delay = scheduler.step()
            clock.advance(min(delay if delay else 1 / 240, at - clock()))
        replaced += slot.put(frames[0], captured_at=clock()) is not None
    for _ in range(100):
        clock.advance(scheduler.step() or 0.01)
    assert replaced == 0 and len(results) == 30
    assert max(r.latency_ms for r in results) <= 4 + 1e-6  # fed on arrival: only its run
    times = np.array([r.time for r in results])
    assert times[-1] - times[0] >= 0.2 * 29 - 0.1  # the rate kept: never ahead by more than slack


def test_a_feed_ends_with_its_source_and_its_open_segment_is_closed(model, frames):
    clock = VirtualClock(100.0, run_cost=0.004)
    scheduler = Scheduler(model, workers=1, clock=clock, segments=True)
    cam = Camera(frames)
    results, ended = [], []
    feed = scheduler.add(
        "cam", cam.slot, lambda f, r: results.append(r), lambda f, e: ended.append(e)
    )
    drive(scheduler, clock, [cam], 3.0)
    cam.slot.close()
    drive(scheduler, clock, [], 1.0)
    opened = [e for r in results for e in r.events if e.kind == "start"]
    assert opened and len(ended) == 1 and [e.kind for e in ended[0]] == ["end"]
    assert ended[0][0].start_id == opened[-1].id and not ended[0][0].interrupted  # it ended
    assert feed not in scheduler.feeds and feed in scheduler.ended
    scheduler.remove(feed)  # a second end changes nothing
    assert len(ended) == 1


@pytest.mark.parametrize("how", ["failed", "offline at the stop"])
def test_a_segment_closed_because_its_source_was_lost_is_interrupted(model, frames, how):
    clock = VirtualClock(100.0, run_cost=0.004)
    scheduler = Scheduler(model, workers=1, clock=clock, segments=True)
    cam, results, ended = Camera(frames), [], []
    scheduler.add("cam", cam.slot, lambda f, r: results.append(r), lambda f, e: ended.append(e))
    drive(scheduler, clock, [cam], 3.0)
    if how == "failed":
        cam.slot.error = VidclsError("reading failed (connection reset)", "cam")
        cam.slot.close()
        drive(scheduler, clock, [], 1.0)
    else:  # lost, being retried, when the run stops
        cam.slot.online = False
        scheduler.stop()
    (end,) = ended[0]
    assert end.interrupted and end.start_id == [e for r in results for e in r.events][-1].id


def test_a_run_stopped_while_its_source_is_up_does_not_interrupt_its_segment(model, frames):
    clock = VirtualClock(100.0, run_cost=0.004)
    scheduler = Scheduler(model, workers=1, clock=clock, segments=True)
    cam, ended = Camera(frames), []
    scheduler.add("cam", cam.slot, lambda f, r: None, lambda f, e: ended.append(e))
    drive(scheduler, clock, [cam], 3.0)
    scheduler.stop()  # Ctrl-C, --duration: the watching stopped, not the source
    assert [(e.kind, e.interrupted) for e in ended[0]] == [("end", False)]


def test_a_reset_forgets_the_state_before_the_next_frame(model, frames):
    clock = VirtualClock(100.0, run_cost=0.004)
    scheduler = Scheduler(model, workers=1, clock=clock)
    cam, results = Camera(frames), []
    feed = scheduler.add("cam", cam.slot, lambda f, r: results.append(r))
    drive(scheduler, clock, [cam], 2.0)
    assert feed.pipeline.classifier.frames_seen == len(results) >= 10
    scheduler.reset(feed)
    drive(scheduler, clock, [cam], 0.3)
    assert 1 <= feed.pipeline.classifier.frames_seen <= 2  # counting again from the reset
    assert feed.stats.resets == 0  # a reset asked for is not a reconnect
