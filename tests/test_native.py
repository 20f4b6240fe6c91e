"""Silencing the native runtime's stderr: safe when several threads load models at once."""

from __future__ import annotations

import os
import random
import threading
import time

from vidcls._native import quiet_stderr


def _target() -> tuple[int, int]:
    st = os.fstat(2)
    return st.st_dev, st.st_ino


def test_threads_silencing_at_once_leave_stderr_where_it_was(monkeypatch):
    monkeypatch.delenv("VIDCLS_VERBOSE", raising=False)
    before = _target()
    start = threading.Barrier(8)

    def load():
        start.wait()
        for _ in range(20):
            with quiet_stderr():
                assert _target() != before  # silenced inside
                time.sleep(random.random() / 1000)

    threads = [threading.Thread(target=load) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert _target() == before  # each saving and restoring on its own left /dev/null here
