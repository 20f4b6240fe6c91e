"""A view's own rules: the options its feed gets, and which events are published."""

from __future__ import annotations

from vidcls.config import ViewSettings
from vidcls.live.rules import Rules
from vidcls.options import SegmentOptions
from vidcls.results import Segment, SegmentEvent


def pair(label: str, start: float, end: float) -> list[SegmentEvent]:
    segment = Segment(label, 0, start, end, 0.9)
    return [SegmentEvent("start", start + 1, segment), SegmentEvent("end", end, segment)]


def published(rules: Rules, name: str, events: list[SegmentEvent]) -> list[tuple]:
    return [(e.kind, e.segment.label, e.segment.start) for e in events if not rules.quiet(name, e)]


def test_cooldown_mutes_a_label_that_comes_back_too_soon_start_and_end():
    rules = Rules({"door": ViewSettings(cooldown=30)}, True)
    events = pair("running", 0, 10) + pair("running", 25, 30) + pair("walking", 26, 28)
    events += pair("running", 41, 45)  # 31 s after the last published end (10 s)
    assert published(rules, "door", events) == [
        ("start", "running", 0), ("end", "running", 0),
        ("start", "walking", 26), ("end", "walking", 26),
        ("start", "running", 41), ("end", "running", 41),
    ]  # fmt: skip
    assert published(rules, "yard", pair("running", 42, 43)) == [  # no rules: all
        ("start", "running", 42),
        ("end", "running", 42),
    ]


def test_allow_and_deny_decide_which_labels_make_events():
    rules = Rules(
        {
            "gate": ViewSettings(changes={"allow": ["opening door"]}),
            "pool": ViewSettings(changes={"deny": ["situp"]}),
        },
        True,
    )
    assert published(rules, "gate", pair("situp", 0, 2) + pair("opening door", 3, 5)) == [
        ("start", "opening door", 3),
        ("end", "opening door", 3),
    ]
    assert published(rules, "pool", pair("situp", 0, 2)) == []


def test_a_views_options_over_the_runs():
    base = SegmentOptions(enter=0.5, exit=0.3, min_duration=1.0)
    rules = Rules(
        {"till": ViewSettings(changes={"threshold": 0.4}, segments={"enter": 0.7}, fps=3)}, base
    )
    changes = rules.changes("till")
    assert changes["threshold"] == 0.4 and changes["fps"] == 3
    assert changes["segments"] == SegmentOptions(enter=0.7, exit=0.3, min_duration=1.0)
    assert rules.changes("other") == {}
    assert "segments" not in Rules({"till": ViewSettings(segments={"enter": 0.7})}, None).changes(
        "till"
    )  # no segments in this run: none for the view either
