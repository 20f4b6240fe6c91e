"""What was done on a server and by whom: :class:`Audit`, one JSON line per sign-in (ok or
failed), sign-out and change (teach uploads, labels, deletes, trainings, deploys, undos, and
any state-changing request) in ``audit.jsonl`` in the data folder, shown to admins on the
teaching page (``GET /api/audit``). No password, token or cookie is ever written here."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import deque
from pathlib import Path

FILE = "audit.jsonl"
TAIL_BYTES = 1 << 20  # the newest entries are read from the last MB of the file
log = logging.getLogger("vidcls.serve")


def _clean(text: object, limit: int = 200) -> str:
    """``text`` on one line, bounded: names typed into the sign-in form are not trusted."""
    return " ".join(str(text).split())[:limit]


class Audit:
    """The audit log of a data folder (``None`` folder: kept in memory only)."""

    def __init__(self, folder: str | os.PathLike | None) -> None:
        self.file = Path(folder) / FILE if folder is not None else None
        self._lock = threading.Lock()
        self._memory: deque[dict] = deque(maxlen=1000)

    def record(self, action: str, user: str | None, address: str | None, **detail) -> None:
        """Add an entry; a disk error is logged, never raised (the request went through)."""
        entry = {
            "time": round(time.time(), 3),
            "action": _clean(action, 80),
            "user": None if user is None else _clean(user, 64),
            "address": address,
            **{
                k: v if isinstance(v, int) else _clean(v)
                for k, v in detail.items()
                if v is not None
            },
        }
        line = json.dumps(entry, ensure_ascii=True) + "\n"
        with self._lock:
            self._memory.append(entry)
            if self.file is None:
                return
            try:
                self.file.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    os.write(fd, line.encode())
                finally:
                    os.close(fd)
            except OSError as e:
                log.error("cannot write the audit log %s (%s)", self.file, e.strerror)

    def recent(self, count: int = 100) -> list[dict]:
        """The newest ``count`` entries, newest first."""
        if self.file is None:
            return list(self._memory)[::-1][:count]
        try:
            with open(self.file, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - TAIL_BYTES))
                lines = f.read().splitlines()
        except FileNotFoundError:
            return []
        except OSError as e:
            log.error("cannot read the audit log %s (%s)", self.file, e.strerror)
            return []
        out = []
        for raw in reversed(lines):
            try:
                entry = json.loads(raw)
            except ValueError:
                continue  # the partial first line of the tail, or a damaged one
            if isinstance(entry, dict):
                out.append(entry)
            if len(out) >= count:
                break
        return out
