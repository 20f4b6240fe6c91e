"""Action segments: hysteresis, minimum duration, smoothing, events, SRT; then real clips and CLI.

Synthetic probabilities are fed at 5 fps (times ``k / 5``) over four classes ``a b c d``.
"""

from __future__ import annotations

import csv
import io
import json
import re

import numpy as np
import pytest
from cli_here import run_here
from cli_run import assert_clean_error, run
from conftest import needs_shared, video
from media import join_clips

from vidcls import VidclsError, classify_video
from vidcls.results import Segment
from vidcls.segments import Segmenter, SegmentOptions, find_segments
from vidcls.writers import to_srt

LABELS = ["a", "b", "c", "d"]
CARVING = "carving ice"


def rows(a: list[float], b: list[float] | None = None) -> np.ndarray:
    """Probabilities with class a (and b) as given; the rest shared equally by the others."""
    b = [None] * len(a) if b is None else b
    out = []
    for pa, pb in zip(a, b, strict=True):
        if pb is None:
            rest = (1 - pa) / 3
            out.append([pa, rest, rest, rest])
        else:
            rest = (1 - pa - pb) / 2
            out.append([pa, pb, rest, rest])
    return np.array(out, np.float32)


def times(n: int) -> np.ndarray:
    return np.arange(n) / 5


def segments(probs: np.ndarray, **options) -> list[tuple[str, float, float]]:
    found = find_segments(times(len(probs)), probs, LABELS, SegmentOptions(**options))
    return [(s.label, round(s.start, 6), round(s.end, 6)) for s in found]


def feed(seg: Segmenter, probs: np.ndarray, t0: float = 0.0) -> list[tuple[str, float, str]]:
    events = []
    for t, p in zip(t0 + times(len(probs)), probs, strict=True):
        events += [(e.kind, round(e.time, 6), e.segment.label) for e in seg.update(float(t), p)]
    return events


# -- hysteresis, minimum duration, smoothing, takeover ---------------------------------------

HOVER = [0.05, 0.6, 0.3, 0.2, 0.45, 0.2, 0.1, 0.05, 0.05]


@pytest.mark.parametrize(
    ("exit", "expected_end"),
    [
        (0.15, 1.2),  # hovers between exit and enter from 0.4 to 1.0; 0.1 at 1.2 closes it
        (0.25, 0.6),  # 0.2 at 0.6 is below this exit
        (0.5, 0.4),  # no hysteresis: the first dip below enter closes it
    ],
)
def test_hysteresis(exit, expected_end):
    found = find_segments(
        times(len(HOVER)),
        rows(HOVER),
        LABELS,
        SegmentOptions(enter=0.5, exit=exit, min_duration=0, smoothing=0),
    )
    assert [(s.label, s.index, s.start) for s in found] == [("a", 0, 0.2)]
    assert found[0].end == pytest.approx(expected_end)
    assert found[0].peak == pytest.approx(0.6)


def test_min_duration_drops_short_blips():
    a = [0.05, 0.9, 0.9, 0.05, 0.05, *[0.9] * 8, 0.05, 0.05]  # 0.4 s blip, then 1.6 s
    long_only = segments(rows(a), enter=0.5, exit=0.15, min_duration=1.0, smoothing=0)
    assert long_only == [("a", 1.0, 2.6)]
    both = segments(rows(a), enter=0.5, exit=0.15, min_duration=0.3, smoothing=0)
    assert both == [("a", 0.2, 0.6), ("a", 1.0, 2.6)]
    # Online, the dropped blip causes no events at all.
    seg = Segmenter(LABELS, SegmentOptions(enter=0.5, exit=0.15, min_duration=1.0, smoothing=0))
    assert feed(seg, rows(a)) == [("start", 2.0, "a"), ("end", 2.6, "a")]


def test_smoothing_delays_entry_and_exit():
    a = [0.0] * 5 + [0.9] * 10 + [0.0] * 10  # a from 1.0 s to 3.0 s; b, c, d share the rest
    assert segments(rows(a), enter=0.5, exit=0.15, min_duration=0, smoothing=0) == [("a", 1.0, 3.0)]
    # tau = 0.5 s, steps of 0.2 s: after m frames of 0.9 the average is 0.9 (1 - e^(-0.4 m)):
    # 0.297, 0.496, 0.629 -> enters at m = 3 (1.4 s). It then decays from 0.9 (1 - e^-4) =
    # 0.8835 as 0.8835 e^(-0.4 m): 0.178 at m = 4, 0.120 at m = 5 -> exits at 2.8 + 1.0 s.
    assert segments(rows(a), enter=0.5, exit=0.15, min_duration=0, smoothing=0.5) == [
        ("a", 1.4, 3.8)
    ]


def test_stronger_class_that_reaches_enter_takes_over():
    a = [0.7] * 4 + [0.45] * 4 + [0.25] * 4
    b = [0.1] * 4 + [0.4] * 4 + [0.6] * 4
    # b reaches enter (0.3) from 0.8 s but only overtakes a at 1.6 s; a never drops below exit.
    assert segments(rows(a, b), enter=0.3, exit=0.15, min_duration=0, smoothing=0) == [
        ("a", 0.0, 1.6),
        ("b", 1.6, 2.4),
    ]


def test_stronger_class_below_enter_does_not_take_over():
    a = [0.7] * 4 + [0.2] * 6
    b = [0.1] * 4 + [0.45] * 6  # stronger than a, below enter; a stays above exit
    assert segments(rows(a, b), enter=0.5, exit=0.15, min_duration=0, smoothing=0) == [
        ("a", 0.0, 2.0)
    ]


def test_nothing_reaches_enter():
    assert segments(rows([0.2] * 10), enter=0.5, smoothing=0) == []


# -- online: events, finish, reset -------------------------------------------------------------


def test_events_start_after_min_duration_and_end_on_close():
    seg = Segmenter(LABELS, SegmentOptions(enter=0.5, exit=0.15, min_duration=1.0, smoothing=0))
    probs = rows([0.9] * 10 + [0.05] * 3)
    seen = []
    for t, p in zip(times(len(probs)), probs, strict=True):
        events = seg.update(float(t), p)
        seen += [(e.kind, round(e.time, 6), e.segment.label, e.segment.start) for e in events]
        if t < 1.0:
            assert seg.active is None, t  # open but not yet announced
        elif t < 2.0:
            assert seg.active is not None and seg.active.label == "a"
    assert seen == [("start", 1.0, "a", 0.0), ("end", 2.0, "a", 0.0)]
    assert seg.active is None
    assert seg.finish() == []
    assert [(s.label, s.start, s.end) for s in seg.segments] == [("a", 0.0, 2.0)]


def test_a_segment_long_enough_only_as_it_closes_starts_and_ends_when_decided():
    """Above enter for exactly min_duration, then gone: both events are decided at the closing
    frame, so both carry its time (never a time before the frames that came after)."""
    seg = Segmenter(LABELS, SegmentOptions(enter=0.5, exit=0.15, min_duration=1.0, smoothing=0))
    events = []
    for t, p in zip(times(9), rows([0.9] * 5 + [0.05] * 4), strict=True):
        events += seg.update(float(t), p)
    assert [(e.kind, round(e.time, 6)) for e in events] == [("start", 1.0), ("end", 1.0)]
    assert (events[0].segment.start, events[0].segment.end) == (0.0, 1.0)
    assert events[1].start_id == events[0].id != events[1].id  # the end names its start


def test_finish_closes_at_last_time_plus_one_frame():
    seg = Segmenter(LABELS, SegmentOptions(enter=0.5, exit=0.15, min_duration=1.0, smoothing=0))
    assert seg.finish() == []  # nothing fed yet
    assert feed(seg, rows([0.05] + [0.9] * 7)) == [("start", 1.2, "a")]
    events = seg.finish()
    assert [(e.kind, e.segment.label) for e in events] == [("end", "a")]
    assert events[0].time == pytest.approx(1.6)  # last frame at 1.4 s, frames 0.2 s apart
    assert len(seg.segments) == 1
    assert seg.segments[0].start == pytest.approx(0.2)
    assert seg.segments[0].end == pytest.approx(1.6)
    assert seg.finish() == []  # closed already


def test_reset_closes_the_segment_and_forgets_the_smoothing():
    options = SegmentOptions(enter=0.5, exit=0.15, min_duration=0, smoothing=2.0)
    b_then_a = rows([0.0] * 10, [0.9] * 10), rows([0.9] * 10, [0.0] * 10)

    # Without a reset the slow average takes several frames to let a overtake b.
    slow = Segmenter(LABELS, options)
    feed(slow, b_then_a[0])
    late = feed(slow, b_then_a[1], t0=2.0)
    assert [k for k, _, _ in late] == ["end", "start"], late
    assert late[1][1] >= 2.6

    seg = Segmenter(LABELS, options)
    assert feed(seg, b_then_a[0]) == [("start", 0.0, "b")]
    closed = seg.reset()
    assert [(e.kind, round(e.time, 6), e.segment.label) for e in closed] == [("end", 2.0, "b")]
    assert not closed[0].interrupted  # a reset asked for: the action may go on
    assert seg.reset() == []  # nothing open, nothing remembered
    assert feed(seg, b_then_a[1], t0=2.0) == [("start", 2.0, "a")]  # a at once: fresh average
    seg.finish()
    assert [(s.label, round(s.start, 6), round(s.end, 6)) for s in seg.segments] == [
        ("b", 0.0, 2.0),
        ("a", 2.0, 4.0),
    ]


def test_an_end_names_its_start_and_says_whether_its_source_was_lost():
    seg = Segmenter(LABELS, SegmentOptions(enter=0.5, exit=0.15, min_duration=1.0, smoothing=0))
    events = []
    for t, p in zip(times(10), rows([0.9] * 10), strict=True):
        events += seg.update(float(t), p)
    (start,) = events
    (end,) = seg.reset(interrupted=True)  # the source was lost, the action had not stopped
    assert (end.kind, end.start_id, end.interrupted, start.start_id) == (
        "end",
        start.id,
        True,
        None,
    )
    again = []
    for t, p in zip(times(10) + 5.0, rows([0.9] * 10), strict=True):
        again += seg.update(float(t), p)
    (end2,) = seg.finish()  # the end of input
    assert (end2.start_id, end2.interrupted) == (again[0].id, False)
    assert len({start.id, end.id, again[0].id, end2.id}) == 4


def test_random_probabilities_give_consistent_segments_and_events():
    rng = np.random.default_rng(3)
    # Slowly drifting logits, so classes come and go.
    logits = np.cumsum(rng.normal(0, 0.6, (300, 4)), axis=0)
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs = (probs / probs.sum(axis=1, keepdims=True)).astype(np.float32)
    options = SegmentOptions(enter=0.6, exit=0.3, min_duration=1.0, smoothing=0.4)
    seg = Segmenter(LABELS, options)
    events = []
    for t, p in zip(times(len(probs)), probs, strict=True):
        events += seg.update(float(t), p)
    events += seg.finish()

    found = seg.segments
    assert len(found) >= 3
    offline = find_segments(times(len(probs)), probs, LABELS, options)
    assert [s.to_dict() for s in offline] == [s.to_dict() for s in found]
    for s in found:
        assert s.end - s.start >= options.min_duration
        assert options.enter <= s.peak <= 1
        assert LABELS[s.index] == s.label
    for before, after in zip(found, found[1:], strict=False):
        assert before.end <= after.start
    assert [e.time for e in events] == sorted(e.time for e in events)
    assert [e.kind for e in events] == ["start", "end"] * len(found)
    for (start, end), s in zip(zip(events[::2], events[1::2], strict=True), found, strict=True):
        assert start.segment is s and end.segment is s
        assert end.time == s.end


def test_segment_of_exactly_min_duration_is_kept_wherever_it_starts():
    options = dict(enter=0.5, exit=0.15, min_duration=1.0, smoothing=0)
    for lead in (1, 2, 3):  # a above enter for 5 frames (1.0 s) starting at 0.2, 0.4, 0.6 s
        a = [0.05] * lead + [0.9] * 5 + [0.05] * 3
        start = lead / 5
        assert segments(rows(a), **options) == [("a", start, round(start + 1.0, 6))], lead


# -- options and SRT ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        dict(enter=0.1, exit=0.5),
        dict(enter=1.5),
        dict(exit=-0.1),
        dict(min_duration=-1),
        dict(smoothing=-0.1),
    ],
)
def test_bad_options_raise_value_error(bad):
    with pytest.raises(VidclsError):
        SegmentOptions(**bad)


def test_good_options():
    assert SegmentOptions() == SegmentOptions(enter=0.3, exit=0.15, min_duration=1.0, smoothing=0.5)
    SegmentOptions(enter=0.4, exit=0.4, min_duration=0, smoothing=0)  # exit may equal enter


def test_srt_exact():
    found = [
        Segment("carving ice", 72, 0.0, 2.5, 0.91234),
        Segment("situp", 462, 59.9996, 3661.5, 0.5),
        Segment("stretching arm", 498, 3661.5, 3725.04, 0.999),
    ]
    assert to_srt(found) == (
        "1\n00:00:00,000 --> 00:00:02,500\ncarving ice (0.91)\n"
        "\n"
        "2\n00:01:00,000 --> 01:01:01,500\nsitup (0.50)\n"
        "\n"
        "3\n01:01:01,500 --> 01:02:05,040\nstretching arm (1.00)\n"
    )
    assert to_srt([]) == ""


# -- real clips --------------------------------------------------------------------------------

SRT_TIME = r"(\d\d):(\d\d):(\d\d),(\d\d\d)"


def parse_srt(text: str) -> list[tuple[float, float, str]]:
    """Blocks of a SubRip file as (start, end, text); fails on anything malformed."""

    def seconds(h, m, s, ms) -> float:
        return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000

    blocks = [b for b in text.strip("\n").split("\n\n") if b]
    out = []
    for i, block in enumerate(blocks, 1):
        lines = block.split("\n")
        assert len(lines) >= 3 and lines[0] == str(i), block
        m = re.fullmatch(f"{SRT_TIME} --> {SRT_TIME}", lines[1])
        assert m, lines[1]
        start, end = seconds(*m.groups()[:4]), seconds(*m.groups()[4:])
        assert start <= end, lines[1]
        out.append((start, end, "\n".join(lines[2:])))
    return out


@pytest.fixture(scope="module")
def carving_then_other(tmp_path_factory):
    """carving_ice_android.mp4 then example_video01.mp4 (256², 25 fps, no audio), and the cut."""
    out = tmp_path_factory.mktemp("joined") / "carving_then_other.mp4"
    starts = join_clips([video("carving_ice_android.mp4"), video("example_video01.mp4")], out)
    return out, starts[1]


def check_order(found) -> None:
    for s in found:
        assert s.start < s.end, s
    for before, after in zip(found, found[1:], strict=False):
        assert before.end <= after.start, (before, after)


@needs_shared
def test_segments_of_a_joined_clip(carving_then_other):
    joined, cut = carving_then_other
    result = classify_video(joined, window=4.0, segments=True)
    found = result.segments
    summary = ", ".join(f"{s.label} {s.start:.1f}-{s.end:.1f}" for s in found)
    print(f"\nsegments (cut {cut:.2f} s): {summary}")
    assert found, summary
    first = found[0]
    assert first.label == CARVING, summary
    assert first.start <= 2.0, summary
    assert cut - 0.5 <= first.end <= cut + 3.0, summary
    check_order(found)
    assert all(s.end - s.start >= 1.0 for s in found), summary  # the default min_duration
    assert found[-1].end <= result.frames[-1].time + 0.2 + 1e-6


@needs_shared
def test_cli_segments_json_and_srt(carving_then_other, tmp_path):
    joined, _ = carving_then_other
    srt = tmp_path / "out.srt"
    r = run(
        "classify", joined, "--window", 4, "--segments", "--format", "json", "--summary-only",
        "--srt", srt,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    found = doc["segments"]
    assert found and found[0]["label"] == CARVING
    for s in found:
        assert set(s) == {"label", "index", "start", "end", "peak"}
        assert isinstance(s["index"], int) and 0.3 <= s["peak"] <= 1
        assert s["start"] < s["end"]
    blocks = parse_srt(srt.read_text(encoding="utf-8"))
    assert len(blocks) == len(found)
    for (start, end, text), s in zip(blocks, found, strict=True):
        assert start == pytest.approx(s["start"], abs=5e-4)
        assert end == pytest.approx(s["end"], abs=5e-4)
        assert text == f"{s['label']} ({s['peak']:.2f})"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.srt"]


@needs_shared
def test_cli_segments_csv(carving_then_other, capfd):
    joined, _ = carving_then_other  # (the same command and flags, JSON: a real run above)
    flags = ["--window", 4, "--segments", "--format", "csv", "--summary-only"]
    r = run_here(capfd, "classify", joined, *flags)
    assert r.returncode == 0, r.stderr
    table = list(csv.DictReader(io.StringIO(r.stdout)))
    assert "end" in table[0]
    found = [row for row in table if row["kind"] == "segment"]
    assert found and found[0]["label"] == CARVING
    for row in found:
        assert float(row["end"]) > float(row["time"])
        assert row["rank"] == ""
    assert all(row["end"] == "" for row in table if row["kind"] != "segment")
    assert any(row["kind"] == "summary" for row in table)


@needs_shared
def test_cli_exit_above_enter_is_a_clean_error(capfd):
    clip = video("carving_ice_rpi.mp4")
    r = run_here(capfd, "classify", clip, "--segments", "--enter", 0.1, "--exit", 0.5)
    assert_clean_error(r, "exit")


@needs_shared
def test_cli_srt_with_two_inputs_is_a_clean_error(tmp_path, capfd):
    clip = video("carving_ice_rpi.mp4")
    r = run_here(capfd, "classify", clip, clip, "--srt", tmp_path / "out.srt")
    assert_clean_error(r, "--srt")
    assert list(tmp_path.iterdir()) == []
