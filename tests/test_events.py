"""The JSON shapes of live runs, exactly: a start, an end (a zone's, with its files), a source's
status, a frame result, a finished event as the API lists it; events that pickle and keep
their id through every copy; every text output writes the same document."""

from __future__ import annotations

import dataclasses
import json
import pickle

from vidcls.events import event_doc, frame_doc, listed_doc, segment_span, status_doc
from vidcls.ids import id_time
from vidcls.live.sources import FeedName
from vidcls.results import Category, FrameResult, Segment, SegmentEvent
from vidcls.writers import get_writer

WALL = 1_748_801_071.512  # 2025-06-01T18:04:31.512Z


def pair() -> tuple[SegmentEvent, SegmentEvent]:
    start = SegmentEvent("start", 13.4, Segment("dancing", 112, 12.4, 13.4, 0.81), wall_time=WALL)
    segment = Segment("dancing", 112, 12.4, 19.0, 0.9312345)
    end = SegmentEvent(
        "end",
        19.0,
        segment,
        clip="/clips/yard/a.mp4",
        snapshot="/clips/yard/a.jpg",
        start_id=start.id,
        wall_time=WALL + 5.6,
    )
    return start, end


def test_a_start_event():
    start, _ = pair()
    assert event_doc("yard", start) == {
        "source": "yard",
        "event": "start",
        "event_id": start.id,
        "time": 13.4,
        "wall_time": "2025-06-01T18:04:31.512Z",
        "segment": {"label": "dancing", "index": 112, "start": 12.4, "end": 13.4, "peak": 0.81},
    }
    assert id_time(start.id) == WALL  # made once, where and when it was decided


def test_an_end_event_of_a_zone_names_its_start_and_its_files():
    start, end = pair()
    assert event_doc(FeedName("yard", "pool"), end) == {
        "source": "yard",
        "zone": "pool",
        "event": "end",
        "event_id": end.id,
        "time": 19.0,
        "wall_time": "2025-06-01T18:04:37.112Z",
        "segment": {"label": "dancing", "index": 112, "start": 12.4, "end": 19.0, "peak": 0.931234},
        "clip": "/clips/yard/a.mp4",
        "snapshot": "/clips/yard/a.jpg",
        "start_id": start.id,
        "interrupted": False,
    }
    lost = dataclasses.replace(end, clip=None, snapshot=None, interrupted=True)
    doc = event_doc(FeedName("yard", None), lost)  # a zoned camera's whole frame
    assert (doc["zone"], doc["interrupted"], "clip" in doc) == (None, True, False)


def test_an_event_keeps_its_id_through_copies_and_pickles():
    _, end = pair()
    assert dataclasses.replace(end, clip="/b.mp4").id == end.id  # the clips' copy
    again = pickle.loads(pickle.dumps(end))  # to another process
    assert again == end and event_doc("yard", again) == event_doc("yard", end)
    other = SegmentEvent("end", 19.0, end.segment, wall_time=end.wall_time)
    assert other.id != end.id  # the same moment, another event


def test_a_status_change_is_shaped_like_an_event():
    doc = status_doc(FeedName("yard", "pool"), False, WALL)
    assert doc == {
        "source": "yard",
        "zone": "pool",
        "event": "offline",
        "event_id": doc["event_id"],
        "wall_time": "2025-06-01T18:04:31.512Z",
    }
    assert id_time(doc["event_id"]) == WALL
    assert status_doc("yard", True)["event"] == "online"


def test_a_frame_result():
    f = FrameResult(13.4, [Category("dancing", 112, 0.8123456)], infer_ms=20.123, input_fps=15)
    assert frame_doc(FeedName("yard", "pool"), f) == {
        "source": "yard",
        "zone": "pool",
        "time": 13.4,
        "top": [{"label": "dancing", "index": 112, "score": 0.812346}],
        "infer_ms": 20.12,
        "input_fps": 15.0,
    }


def test_the_api_lists_a_finished_event_as_its_document_and_the_lists_fields():
    _, end = pair()
    doc = event_doc("yard", end)
    start, stop = segment_span(end)
    assert (start, stop) == (WALL + 5.6 - 6.6, WALL + 5.6)
    assert listed_doc(7, doc, start, stop) == {
        **doc,
        "zone": None,  # always in the list, a camera's whole frame here
        "id": 7,
        "label": "dancing",
        "start": "2025-06-01T18:04:30.512+00:00",
        "end": "2025-06-01T18:04:37.112+00:00",
        "duration": 6.6,
        "peak": 0.931234,
    }


def test_stdout_and_files_write_the_same_documents():
    start, end = pair()
    jsonl = get_writer("jsonl")
    for source in ("yard", FeedName("yard", "pool")):
        for e in (start, end):
            assert json.loads(jsonl.event(e, source)) == event_doc(source, e)
    f = FrameResult(1.0, [Category("dancing", 112, 0.5)])
    assert json.loads(jsonl.frame(f, "yard")) == frame_doc("yard", f)
