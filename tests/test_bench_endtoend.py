"""The end-to-end benchmark's timing of a command and its note on a busy machine."""

import sys

from vidcls.bench.endtoend import BUSY, busy_note, timed


def test_timed_counts_the_lines_and_the_time_to_the_first():
    command = [sys.executable, "-c", "import time; print(1, flush=True); time.sleep(0.2); print(2)"]
    first, total, lines, others = timed(command)
    assert lines == 2
    assert 0 < first <= total
    assert total >= 0.2
    assert others >= 0


def test_a_busy_machine_is_named_a_quiet_one_is_not():
    assert busy_note([0.0, 0.1, BUSY], 2) is None
    assert busy_note([], 2) is None
    note = busy_note([0.1, 1.3, 0.2], 2)
    assert "busy" in note and "1.3 of 2 cores" in note
