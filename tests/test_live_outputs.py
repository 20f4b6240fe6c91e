"""Live outputs: printed lines, the appended JSON Lines file, callbacks, and closing."""

from __future__ import annotations

import io
import json
import threading

import pytest

from vidcls.errors import VidclsError
from vidcls.live.outputs import Callbacks, JsonLinesFile, Output, Outputs, Printer, as_output
from vidcls.results import Category, FrameResult, Segment, SegmentEvent

SEGMENT = Segment("carving ice", 72, 1.2, 2.4, 0.86)
START = SegmentEvent("start", 2.4, SEGMENT)


def result(t: float = 2.4) -> FrameResult:
    r = FrameResult(t, [Category("carving ice", 72, 0.968)], infer_ms=4.1, latency_ms=32.0)
    r.input_fps = 30.0
    return r


def test_one_source_prints_every_result_as_a_table_line():
    out = io.StringIO()
    printer = Printer("table", stream=out)
    printer.result("ice", result())
    printer.event("ice", START)
    lines = out.getvalue().splitlines()
    assert lines[0].split() == [
        "0:02.40",
        "carving",
        "ice",
        "0.968",
        "[4.1",
        "ms,",
        "30.0",
        "fps",
        "in,",
        "32",
        "ms",
        "late]",
    ]
    assert lines[1].split() == ["0:02.40", "--", "start", "carving", "ice"]


def test_several_sources_print_events_as_json_lines_or_prefixed_tables():
    out = io.StringIO()
    printer = Printer("jsonl", results=False, prefix=True, stream=out)
    printer.result("ice", result())  # not printed: events only
    printer.event("ice", START)
    doc = json.loads(out.getvalue())
    assert doc["source"] == "ice" and doc["event"] == "start" and doc["time"] == 2.4
    assert doc["segment"]["label"] == "carving ice"
    table = io.StringIO()
    Printer("table", prefix=True, stream=table).event("door", START)
    assert table.getvalue().startswith("[door]   0:02.40  -- start")


def test_the_file_gets_every_result_and_event_appended_line_by_line(tmp_path):
    path = tmp_path / "live.jsonl"
    path.write_text('{"earlier": true}\n')
    log = JsonLinesFile(path)
    log.result("ice", result())
    log.event("ice", START)
    log.close()
    log.close()  # twice is fine
    docs = [json.loads(line) for line in path.read_text().splitlines()]
    assert docs[0] == {"earlier": True}  # appended, not replaced
    assert docs[1]["top"][0]["label"] == "carving ice" and docs[1]["source"] == "ice"
    assert docs[2]["event"] == "start"


def test_a_file_that_cannot_be_written_is_one_error_naming_it(tmp_path):
    with pytest.raises(VidclsError, match="cannot write") as e:
        JsonLinesFile(tmp_path / "no" / "such" / "live.jsonl")
    assert "live.jsonl" in str(e.value)
    if not __import__("os").path.exists("/dev/full"):
        return
    full = JsonLinesFile("/dev/full")
    with pytest.raises(VidclsError, match="No space left"):
        full.event("ice", START)


def test_outputs_fan_out_in_order_and_callables_are_outputs():
    calls = []
    outputs = Outputs(
        [
            Callbacks(on_result=lambda s, r: calls.append(("a", s)), on_event=None),
            as_output(lambda s, r: calls.append(("b", s))),
        ]
    )
    outputs.result("ice", result())
    outputs.event("ice", START)  # b has no on_event: fine
    outputs.status("ice", True)
    assert calls == [("a", "ice"), ("b", "ice")]
    with pytest.raises(VidclsError):
        as_output(42)


class Slow(Output):
    """An output whose close waits on delivery, and proves it runs alongside the others."""

    waits = True

    def __init__(self, barrier: threading.Barrier) -> None:
        self.barrier, self.closed = barrier, False

    def close(self, timeout=5.0):
        self.barrier.wait(timeout=60)  # both must be closing at once to get past this
        self.closed = True


class Broken(Output):
    def close(self, timeout=5.0):
        raise OSError("gone")


def test_outputs_that_wait_close_together_and_a_failing_close_stops_nothing():
    barrier = threading.Barrier(2)
    slow = [Slow(barrier), Slow(barrier)]
    out = io.StringIO()
    printer = Printer("table", stream=out)
    Outputs([Broken(), *slow, printer]).close(timeout=5)
    assert all(s.closed for s in slow)
