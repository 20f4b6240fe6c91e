"""Progress through a run's phases: a bar per phase on a terminal, a start and an end line
elsewhere."""

from __future__ import annotations

import logging

import pytest

from vidcls.training.progress import Progress, count, log, show_phase_lines


def test_count():
    assert count(1, "clip") == "1 clip" and count(0, "clip") == "0 clips"
    assert count(2, "class", "classes") == "2 classes"


def test_without_bars_a_phase_is_a_start_line_and_an_end_line_with_its_time(caplog):
    caplog.set_level(logging.INFO, "vidcls.progress")
    with Progress(False).phase("fitting", "5 fits", "fitted", 5, "fit") as phase:
        phase.advance(5)  # no bar: nothing to move
        phase.note = "L2 0.01"
    start, end = caplog.records
    assert start.getMessage() == "fitting: 5 fits ..."
    assert end.getMessage().startswith("fitted in ") and end.getMessage().endswith(" s (L2 0.01)")
    assert end.phase == "fitting" and end.seconds >= 0  # for vidcls bench --train


def test_a_failed_phase_has_no_end_line(caplog):
    caplog.set_level(logging.INFO, "vidcls.progress")
    with pytest.raises(RuntimeError), Progress(False).phase("writing", "a file", "written"):
        raise RuntimeError("disk full")
    assert [r.getMessage() for r in caplog.records] == ["writing: a file ..."]


def test_with_bars_a_phase_is_a_bar_on_stderr(capsys, caplog):
    caplog.set_level(logging.INFO, "vidcls.progress")
    with Progress(True).phase("features", "3 views", "features ready", 3, "view") as phase:
        for _ in range(3):
            phase.advance()
    err = capsys.readouterr().err
    assert "features: 100%" in err and "3/3" in err
    assert not caplog.records  # no lines beside the bar


def test_bars_only_on_a_terminal(capsys):
    assert Progress().bars is False  # stderr captured: not a terminal


def test_show_phase_lines_lets_them_through():
    before = log.level
    try:
        log.setLevel(logging.WARNING)
        show_phase_lines()
        assert log.getEffectiveLevel() == logging.INFO
    finally:
        log.setLevel(before)
