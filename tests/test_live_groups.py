"""Camera groups: cameras shared among processes give what one process gives (replayed on a
virtual clock per group, so on any machine), and a group killed with SIGKILL starts again
while the other goes on untouched."""

from __future__ import annotations

import copy
import os
import signal
import threading
import time

import pytest
from conftest import four_cameras, needs_shared

from vidcls.config import load_config
from vidcls.live.build import from_config
from vidcls.live.grouping import shares
from vidcls.live.groups import Groups
from vidcls.live.outputs import Output
from vidcls.live.sources import SourceSpec, Zone
from vidcls.live.watch import Watch

pytestmark = needs_shared


class Collect(Output):
    """Everything a run hands its outputs, in order."""

    def __init__(self, on_result=None) -> None:
        self.items: list[tuple] = []
        self.on_result = on_result

    def result(self, source, result):
        self.items.append(("result", source, result))
        if self.on_result is not None:
            self.on_result(source, result)

    def event(self, source, event):  # as it was then: a start's segment goes on changing
        self.items.append(("event", source, copy.deepcopy(event)))

    def status(self, source, online):
        self.items.append(("status", source, online))

    def of(self, kind, source):
        return [i[2] for i in self.items if i[0] == kind and i[1] == source]


def _run(plan, outputs, **kw):
    engine = plan.engine(plan.load(), outputs)
    engine.run(**kw)
    return engine


def _shape(collect: Collect, view: str):
    results = [
        (r.time, [(c.label, round(c.score, 5)) for c in r.top]) for r in collect.of("result", view)
    ]
    events = [
        (e.kind, e.time, e.segment.label, e.segment.start, e.segment.end)
        for e in collect.of("event", view)
    ]
    return results, events


def test_shares_keep_cameras_whole_and_views_even():
    zones = (Zone("a", (0, 0, 0.5, 1)), Zone("b", (0.5, 0, 1, 1)))
    specs = [SourceSpec("z", "/v.mp4", zones), *(SourceSpec(f"c{i}", "/v.mp4") for i in range(4))]
    assert [[s.name for s in share] for share in shares(specs, 2)] == [
        ["z", "c0"],
        ["c1", "c2", "c3"],
    ]
    assert [len(s) for s in shares(specs[1:], 4)] == [1, 1, 1, 1]
    assert [len(s) for s in shares(specs[1:3], 5)] == [1, 1]  # at most one a camera


def test_two_groups_give_every_camera_what_one_process_gives(tmp_path):
    config = _config(tmp_path)
    one, two = Collect(), Collect()
    single = _run(from_config(config, groups=1), one)
    grouped = _run(from_config(config, groups=2), two)
    assert isinstance(single, Watch) and isinstance(grouped, Groups)
    assert [len(g.views) for g in grouped.groups] == [2, 2]
    views = ["ice", "eye", "android", "zoned/left"]
    for view in views:
        results, events = _shape(two, view)
        assert (results, events) == _shape(one, view), view
        assert len(results) > 20 and events  # something to compare
        assert two.of("status", view) == [True, False]
    assert [s.fed for s in grouped.stats()] == [s.fed for s in single.stats()]
    assert grouped.unopened() == {} and grouped.deaths == 0


def test_a_killed_group_starts_again_and_the_other_misses_nothing(tmp_path):
    """Group 1 (android, zoned) is killed once android's segment has started: its views go
    offline, the open segment ends interrupted, the group starts again and its views come
    back online and play on; group 0 (ice, eye) gives exactly what it gives undisturbed."""
    config = _config(tmp_path, "loop: true")
    quiet = Collect()  # undisturbed: in one process (decoding there too), which gives what
    _run(from_config(config, groups=1, decoders=0), quiet, duration=8)  # groups give (above)
    views = ("ice", "eye", "android", "zoned/left")
    assert all(quiet.of("result", v)[-1].time > 6.7 for v in views)  # each clip looped (<= 6.7 s)
    engine = None
    killed: list[int] = []

    def kill(view, result):
        started = [e for e in out.of("event", "android") if e.kind == "start"]
        if view == "android" and started and not killed:
            killed.append(engine.pids()[1])
            os.kill(killed[0], signal.SIGKILL)

    out = Collect(kill)
    plan = from_config(config, groups=2)
    engine = plan.engine(plan.load(), out)
    engine.run(duration=8)
    assert killed and engine.deaths == 1
    for view in ("ice", "eye"):  # the other group: undisturbed, on its virtual clock
        assert _shape(out, view) == _shape(quiet, view), view
        assert out.of("status", view) == [True, False]
    for view in ("android", "zoned/left"):
        statuses = out.of("status", view)
        assert statuses == [True, False, True, False], (view, statuses)
        lost = [i for i, item in enumerate(out.items) if item[1:] == (view, False)][0]
        after = [i for i in out.items[lost:] if i[0] == "result" and i[1] == view]
        assert len(after) >= len(quiet.of("result", view)) - 1  # it played again
    ends = [e for e in out.of("event", "android") if e.kind == "end"]
    interrupted = [e for e in ends if e.interrupted]
    assert len(interrupted) == 1 and interrupted[0].start_id in {
        e.id for e in out.of("event", "android") if e.kind == "start"
    }
    ids = [i[2].id for i in out.items if i[0] == "event"]
    assert len(ids) == len(set(ids))  # no event given twice
    for view in views:  # every start has its end
        kinds = [e.kind for e in out.of("event", view)]
        assert kinds.count("start") == kinds.count("end"), (view, kinds)


@pytest.mark.parametrize("groups", [1, 2])
def test_a_model_switch_reaches_every_group(tmp_path, groups):
    """Asked from another thread (as serve's deploy does) while the groups run: every view
    goes on with the new model's labels."""
    from conftest import CUSTOM

    if not CUSTOM.is_file():
        pytest.skip(f"{CUSTOM} not found")
    out = Collect()
    plan = from_config(_config(tmp_path, "loop: true"), groups=groups)
    engine = plan.engine(plan.load(), out)
    runner = threading.Thread(target=engine.run, kwargs={"duration": 300})
    runner.start()
    views = ["ice", "eye", "android", "zoned/left"]
    kinetics = {r.top[0].label for r in out.of("result", "ice")}

    def new_labels(view):
        return {r.top[0].label for r in out.of("result", view)[-3:] if r.top} - kinetics

    try:
        _wait(lambda: len(out.items) > 40)
        engine.switch_model(CUSTOM)
        _wait(lambda: all(new_labels(v) for v in views))
    finally:
        engine.request_stop()
        runner.join(120)
    assert not runner.is_alive()
    if groups > 1:
        assert isinstance(engine, Groups) and engine.plan.classifier.model == CUSTOM


def _wait(condition, timeout=120.0):  # a hang guard
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_clip_asked_for_is_recorded_by_its_cameras_group(tmp_path):
    """As the teaching page asks: the view's group records it; an unknown view is refused."""
    clips = tmp_path / "clips"
    out = Collect()
    plan = from_config(_config(tmp_path, f"loop: true\nclips: {{folder: {clips}}}"), groups=2)
    engine = plan.engine(plan.load(), out)
    runner = threading.Thread(target=engine.run, kwargs={"duration": 300})
    runner.start()
    target = tmp_path / "asked.mp4"
    try:
        _wait(lambda: len(out.of("result", "zoned/left")) > 10)
        assert engine.record("zoned/left", 1.0, str(target))
        assert not engine.record("nowhere", 1.0, str(tmp_path / "no.mp4"))
        _wait(lambda: target.is_file())
    finally:
        engine.request_stop()
        runner.join(120)
    assert target.stat().st_size > 1000 and not runner.is_alive()


def _config(tmp_path, extra: str = ""):
    return load_config(four_cameras(tmp_path, extra))
