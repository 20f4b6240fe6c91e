"""Watching live sources from Python: iter_live and watch on real files played at their real
speed; closing events however a run ends; status, stats and windows; decoding processes."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import A0, needs_shared, video

import vidcls
from vidcls.live import Output, VirtualClock, Watch
from vidcls.live.sources import SourceSpec
from vidcls.training.export import export_model
from vidcls.training.fit import SoftmaxClassifier

pytestmark = needs_shared


@pytest.fixture(scope="module")
def classifier():
    return vidcls.load_classifier("a0", top_k=3, window=4.0)


class Collect(Output):
    """Everything a run hands its outputs, in order."""

    def __init__(self) -> None:
        self.items: list[tuple] = []
        self.closed = False

    def result(self, source, result):
        self.items.append(("result", source, result))

    def event(self, source, event):
        self.items.append(("event", source, event))

    def status(self, source, online):
        self.items.append(("status", source, online))

    def close(self, timeout=5.0):
        self.closed = True

    def kinds(self, source):
        return [i[2].kind for i in self.items if i[0] == "event" and i[1] == source]


def test_iter_live_plays_a_file_and_closes_its_segment(classifier):
    """Replayed on a virtual clock: a result at each tick of the model's rate, none dropped."""
    sink, events = Collect(), []
    results = list(
        vidcls.iter_live(
            str(video("carving_ice_rpi.mp4")),
            classifier=classifier,
            segments=True,
            on_event=lambda name, e: events.append((name, e)),
            sinks=[sink],
            replay=True,
        )
    )
    times = np.array([r.time for r in results])
    assert np.allclose(times, 0.2 * np.arange(23))  # the 4.4 s file at 5 fps: every tick
    assert results[-1].top[0].label == "carving ice"
    assert all(r.latency_ms is not None and r.infer_ms is not None for r in results)
    # Every event once through on_event: the start at a frame, the end when the file ended.
    assert [e.kind for _, e in events] == ["start", "end"]
    assert {name for name, _ in events} == {"carving_ice_rpi"}
    assert [e for r in results for e in r.events] == [events[0][1]]  # decided at a frame
    assert sink.kinds("carving_ice_rpi") == ["start", "end"] and sink.closed
    statuses = [i[2] for i in sink.items if i[0] == "status"]
    assert statuses == [True, False]


def test_break_stops_the_source_and_still_closes_the_open_segment(classifier):
    events = []
    live = vidcls.iter_live(
        str(video("carving_ice_android.mp4")),
        classifier=classifier,
        segments=vidcls.SegmentOptions(min_duration=0.4),
        on_event=lambda name, e: events.append(e.kind),
        replay=True,
    )
    labels = []
    for result in live:
        labels.append(result.top[0].label)
        if "start" in events:
            break
    live.close()  # what a for loop's break leaves to the garbage collector
    assert events == ["start", "end"]
    assert labels[-1] == "carving ice"


def test_a_missing_file_is_an_error_and_an_unreachable_stream_just_ends(classifier):
    with pytest.raises(vidcls.VidclsError, match="no such file"):
        next(vidcls.iter_live("/no/such/clip.mp4", classifier=classifier))
    assert list(vidcls.iter_live("http://127.0.0.1:9/none.ts", duration=1.0)) == []


def test_watch_runs_sources_side_by_side_each_with_its_own_events(classifier):
    sink, seen = Collect(), []
    stats = vidcls.watch(
        [f"ice={video('carving_ice_rpi.mp4')}", str(video("eye_makeup.avi"))],
        lambda name, r: seen.append(name),
        sinks=[sink],
        classifier=classifier,
        segments=vidcls.SegmentOptions(min_duration=0.4),
        replay=True,
    )
    assert {s.name for s in stats} == {"ice", "eye_makeup"} == set(seen)
    # Replayed: every frame read, every tick of 5 fps fed (4.4 s and 6.6 s), none dropped.
    assert {s.name: (s.captured, s.fed, s.dropped) for s in stats} == {
        "ice": (131, 23, 0),
        "eye_makeup": (164, 33, 0),
    }
    for s in stats:
        assert s.error is None and s.reconnects == 0
        assert f"{s.name}: {s.fed} results" in s.line()
        kinds = sink.kinds(s.name)
        assert kinds and kinds.count("start") == kinds.count("end")  # every one closed
    assert sink.closed


class Window(Output):
    """A display that looks at every source's picture, then closes itself."""

    period = 0.05

    def __init__(self, shows: int) -> None:
        self.shows, self.pictures = shows, []

    def show(self, sources) -> bool:
        self.pictures += [s.picture((64, 36)) for s in sources.values()]
        self.shows -= 1
        return self.shows > 0


@pytest.mark.parametrize("decoders", [0, 1])
def test_a_window_sees_full_pictures_with_or_without_decoding_processes(classifier, decoders):
    clip = str(video("carving_ice_android.mp4"))
    specs = [SourceSpec("a", clip), SourceSpec("b", clip)]
    watch = Watch(classifier, specs, decoders=decoders, loop=True, clock=VirtualClock())
    window = Window(shows=40)
    stats = watch.run(duration=60, display=window)  # ends when the window closes
    assert window.shows == 0 and all(s.fed > 0 for s in stats)
    shown = [p for p in window.pictures if p is not None]
    assert shown and all(p.shape == (36, 64, 3) for p in shown)
    assert max(p.std() for p in shown) > 5  # real pictures


def test_a_reset_asked_for_by_name_is_not_a_reconnect(classifier):
    clip = str(video("carving_ice_rpi.mp4"))
    watch = Watch(classifier, [SourceSpec("a", clip)], clock=VirtualClock())
    results = watch.results()
    for n, _ in enumerate(results):
        if n == 5:
            watch.reset("a")  # before the 7th result's frame
        if n == 8:
            break
    results.close()
    feed = watch.feeds["a"]
    assert feed.stats.resets == 0 and feed.pipeline.classifier.frames_seen == 3


@pytest.mark.parametrize("decoders", [0, 1])
def test_a_model_switch_loses_no_source_and_no_event(classifier, decoders, tmp_path):
    """Four sources live; the model switches midway to a 2-class model that letterboxes: each
    source goes on with the new labels, nothing reconnects, and every segment that opened
    (before or after) has its end event."""
    new = tmp_path / "two.tflite"
    rng = np.random.default_rng(3)
    head = SoftmaxClassifier(rng.normal(0, 0.05, (2, 2048)), np.zeros(2))
    export_model(
        A0, head, ["left", "right"], 5.0, rng.uniform(0, 6, (10, 2048)), new, 0, "letterbox"
    )
    clip = str(video("carving_ice_android.mp4"))
    sink = Collect()
    watch = Watch(
        classifier,
        [SourceSpec(n, clip) for n in "abcd"],
        decoders=decoders,
        loop=True,
        clock=VirtualClock(),
        outputs=sink,
        segments=vidcls.SegmentOptions(enter=0.3, exit=0.1, min_duration=0.2, smoothing=0),
    )
    before, after = dict.fromkeys("abcd", 0), dict.fromkeys("abcd", 0)
    switched = False
    for result in watch.results(duration=120):
        name = [i[1] for i in sink.items if i[0] == "result"][-1]
        if not switched:
            before[name] += 1
            if min(before.values()) >= 6:
                watch.switch_model(new)
                switched = True
        elif result.top and result.top[0].label in ("left", "right"):
            after[name] += 1
            if min(after.values()) >= 6:
                break
    watch.stop()
    assert min(after.values()) >= 6, after
    assert watch.scheduler.classifier.options.fit == "letterbox"  # the new model's own
    if decoders:  # the decoding processes fit pictures the new model's way
        assert watch.pool._shape[3] == "letterbox"
    for s in watch.stats():
        assert s.reconnects == 0 and s.error is None
    for name in "abcd":
        events = [i[2] for i in sink.items if i[0] == "event" and i[1] == name]
        starts = [e for e in events if e.kind == "start"]
        assert starts and len(starts) == sum(e.kind == "end" for e in events), events
        # The old model's segment, ended by the switch.
        assert any(e.segment.label == "carving ice" for e in starts)


@pytest.mark.parametrize("decoders", [0, 1])
def test_an_engine_made_slower_than_its_sources_drops_exact_fair_shares(classifier, decoders):
    """Four files replayed at the model's 5 fps need 20 runs a second; each run taking 1/8 s
    of the virtual clock gives 8: every source is fed 2 ticks in 5, exactly, and the ticks it
    missed are counted as dropped (but those due after its last turn)."""
    clip = str(video("carving_ice_android.mp4"))
    clock = VirtualClock(run_cost=0.125)
    watch = Watch(classifier, [SourceSpec(n, clip) for n in "abcd"], clock=clock, decoders=decoders)
    results = list(watch.results(duration=4.0))
    assert clock.runs == len(results) == 32  # 4 s of runs back to back: never idle
    for s in watch.stats():
        assert s.fed == 8 and s.reconnects == 0 and s.error is None
        assert 20 - 2 <= s.fed + s.dropped <= 20
    # The freshest frame when fed (at most a frame old), after at most a turn of the others.
    assert max(r.latency_ms for r in results) <= 1e3 / 30 + 4 * 125 + 1e-6
