"""The inside of a Ray group actor (see :mod:`.ray_groups`): one group's share of the cameras,
run exactly as a group process runs it (:func:`.group_child.serve_group`), on whichever node
Ray placed it.

The actor works in a temporary folder of its own on its node: the model bundle is written
there (:mod:`.ray_files`) and the clips and snapshots are recorded there. Its messages wait
in an :class:`Outbox` until the driver takes them (``take``, one call outstanding at a
time), in the order they were made; none waits for a file. An event names the files'
places in the driver's clips folder. Its snapshot (written before the event is made) goes
just ahead of it, as ``("f", ("clip", relative path), bytes)``, so a sink that reads it
(MQTT) finds it; its clip (complete ``post_roll`` seconds after the segment's end) goes
when it is written, as on one box, where the event goes out while the clip is being
written. A clip not written within :data:`FILE_WAIT` seconds past that is given up
(logged), as one box gives up a clip it cannot write. Times ``sent`` travel as wall-clock
times (the nodes' monotonic clocks differ).
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import queue
import shutil
import tempfile
import threading
import time
from pathlib import Path

from .ray_files import local_options, relative, unpack_model

log = logging.getLogger("vidcls")
FILE_WAIT = 30.0  # seconds past its clip's post-roll a file may take to be written
MOST = 20_000  # messages waiting for the driver at most; then the group waits
STEP = 0.05  # seconds between looks for files being written


class Outbox:
    """Messages from the group's shipper (``send``) to the driver (``take``); see the
    module's docstring. ``local``: the clips folder here; ``folder``: the driver's."""

    def __init__(self, local: Path | None, folder: str | None, post_roll: float) -> None:
        self.local, self.folder, self.wait_for = local, folder, post_roll + FILE_WAIT
        self._cond = threading.Condition()
        self._ready: list[tuple] = []
        self._files: dict[str, str | None] = {}  # local path: driver path, None if dropped
        self._clips: dict[str, tuple[tuple, float]] = {}  # being written: (target, deadline)
        self._done: tuple | None = None
        self.finished = False  # "done" went out: nothing more comes

    def send(self, batch: list[tuple]) -> None:
        """Take the shipper's ``batch`` (waits while the driver lags far behind)."""
        with self._cond:
            for item in batch:
                self._route(item)
            self._release()
            self._cond.notify_all()
            while len(self._ready) >= MOST:
                self._cond.wait(0.1)

    def take(self, timeout: float) -> tuple[list[tuple], bool]:
        """What is ready within ``timeout`` seconds, and whether it is the last of it."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                self._release()
                left = deadline - time.monotonic()
                if self._ready or self.finished or left <= 0:
                    break
                self._cond.wait(min(STEP, left))
            out, self._ready = self._ready, []
            self._cond.notify_all()
            return out, self.finished and not self._ready

    def expect(self, local: str, path: str, seconds: float) -> None:
        """A clip asked for is being recorded at ``local``, to go to ``path``."""
        with self._cond:
            deadline = time.monotonic() + seconds + self.wait_for
            self._clips[local] = (("record", path), deadline)

    def close(self) -> None:
        """The group has ended: the clips written go now, the others are given up (a group
        that failed without saying ``done`` says it here)."""
        with self._cond:
            if self._done is None and not self.finished:
                self._done = ("done", [], {})
            self._release(flush=True)
            self._cond.notify_all()

    # -- with the lock held ----------------------------------------------------------------

    def _route(self, item: tuple) -> None:
        kind = item[0]
        if kind == "done":
            self._done = item
        elif kind == "e":
            self._ready.append(_wall((kind, item[1], self._rename(item[2]), item[3])))
        elif kind == "r":
            if item[2].events:
                item[2].events = [self._rename(e) for e in item[2].events]
            self._ready.append(_wall(item))
        elif kind == "s":
            self._ready.append(_wall(item))
        else:
            self._ready.append(item)

    def _rename(self, event):
        """``event`` naming its files' places on the driver (None: not sent); its snapshot
        is sent now, its clip once written."""
        if self.local is None or (event.clip is None and event.snapshot is None):
            return event
        for local, clip in ((event.snapshot, False), (event.clip, True)):
            if local is not None and local not in self._files:
                rel = relative(local, self.local)
                self._files[local] = None if rel is None else str(Path(self.folder) / rel)
                if rel is not None and clip:
                    self._clips[local] = (("clip", rel), time.monotonic() + self.wait_for)
                elif rel is not None and not self._ship(local, ("clip", rel)):
                    self._files[local] = None
        clip = None if event.clip is None else self._files[event.clip]
        snapshot = None if event.snapshot is None else self._files[event.snapshot]
        return dataclasses.replace(event, clip=clip, snapshot=snapshot)

    def _release(self, flush: bool = False) -> None:
        now = time.monotonic()
        for local, (target, deadline) in list(self._clips.items()):
            if os.path.exists(local) or now >= deadline or flush:
                del self._clips[local]
                self._ship(local, target)
        if self._done is not None and not self._clips:
            self._ready.append(self._done)
            self._done, self.finished = None, True

    def _ship(self, local: str, target: tuple) -> bool:
        """Send ``local`` (a clip or snapshot recorded here) to the driver's ``target``."""
        try:
            data = Path(local).read_bytes()
        except OSError:
            log.warning("%s was not written in time: it is not sent", local)
            return False
        self._ready.append(("f", target, data))
        Path(local).unlink(missing_ok=True)
        return True


def _wall(item: tuple) -> tuple:
    """``item`` with its ``sent`` (this node's monotonic time) as a wall-clock time."""
    return (*item[:3], time.time() - (time.monotonic() - item[3]))


class Orders:
    """The driver's commands, for :func:`.group_child.serve_group` to ``recv``."""

    def __init__(self) -> None:
        self._queue: queue.Queue = queue.Queue()

    def put(self, command: tuple | None) -> None:
        self._queue.put(command)

    def recv(self) -> tuple:
        command = self._queue.get()
        if command is None:
            raise EOFError
        return command


class GroupActor:
    """One group of cameras in a Ray actor (made a remote class by :mod:`.ray_groups`):
    ``plan`` (the share, as the driver has it), ``phase``, ``duration``, ``bundle`` (the
    model's files, :func:`.ray_files.model_files`)."""

    def __init__(self, plan, phase: int, duration: float | None, bundle: dict) -> None:
        import ray

        self.where = (ray.get_runtime_context().get_node_id(), os.getpid())
        self.home = Path(tempfile.mkdtemp(prefix="vidcls-group-"))
        self._models = itertools.count(1)
        local, folder, post_roll = None, None, 0.0
        options = local_options(plan.classifier, bundle, self.home / "model-0")
        plan = dataclasses.replace(plan, classifier=options)
        if plan.clips is not None:
            local, folder = self.home / "clips", str(plan.clips.folder)
            post_roll = plan.clips.post_roll
            plan = dataclasses.replace(plan, clips=dataclasses.replace(plan.clips, folder=local))
        self.outbox = Outbox(local, folder, post_roll)
        self.orders = Orders()
        self._thread = threading.Thread(
            target=self._run, args=(plan, phase, duration), name="vidcls-group", daemon=True
        )
        self._thread.start()

    def _run(self, plan, phase: int, duration: float | None) -> None:
        from .group_child import serve_group

        try:
            serve_group(plan, phase, duration, self.outbox, self.orders)
        except Exception as e:  # reported as a group that could not start or run
            log.exception("the group failed")
            self.outbox.send([("error", str(e) or type(e).__name__)])
        finally:
            self.outbox.close()

    def take(self, timeout: float) -> tuple[list[tuple], bool, tuple[str, int]]:
        """The next messages (see :class:`Outbox`), whether they are the last, and where
        the actor runs (node id, process id)."""
        items, last = self.outbox.take(timeout)
        if last:
            shutil.rmtree(self.home, ignore_errors=True)
        return items, last, self.where

    def tell(self, command: tuple, bundle: dict | None = None) -> None:
        """A command of :mod:`.group_child`; a switch comes with the model's ``bundle``, a
        record with the driver's path (recorded here, then sent)."""
        kind = command[0]
        if kind == "switch":
            folder = self.home / f"model-{next(self._models)}"
            try:
                command = ("switch", command[1], str(unpack_model(bundle, folder)))
            except OSError as e:
                self.outbox.send([("reply", command[1], f"cannot write the model here ({e})")])
                return
        elif kind == "record":
            _, ask, view, seconds, path = command
            local = self.home / "asked" / f"{next(self._models)}{Path(path).suffix}"
            local.parent.mkdir(parents=True, exist_ok=True)
            self.outbox.expect(str(local), path, seconds)
            command = ("record", ask, view, seconds, str(local))
        self.orders.put(command)
