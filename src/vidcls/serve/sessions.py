"""The models a server offers, and one live stream's state: JPEG frames in, results out.

Nothing here knows about HTTP: :class:`ModelPool` loads each (model, threads) once, hands out
classifiers with their own state on it (file jobs) and runs one
:class:`~vidcls.live.scheduler.Scheduler` for all the live streams on it; :class:`LiveSession` is
one WebSocket connection's stream there, answering with JSON-ready dicts (the protocol is in
:mod:`vidcls.serve.stream`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import time
from collections import deque
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import zoo
from ..classifier import ClassifierOptions, VideoClassifier
from ..errors import VidclsError
from ..live.capture import FrameSlot
from ..live.scheduler import Feed, Scheduler
from ..media import decode_jpeg
from ..results import FrameResult

SKIPPED = "a newer frame arrived before this one was due"
# A page paces its frames at the model's rate, but its timer and the network move each by
# tens of ms: a frame up to half a period early is still fed at once (the rate is kept on
# average), so a page at 5 fps gets 5 results a second with no wait for the next tick.
SLACK = 0.5


class MessageError(ValueError):
    """A request the server does not allow (unknown model, bad threads, bad message): answered
    with an error, the stream goes on."""


@dataclass(frozen=True)
class ModelEntry:
    """One model a server offers: ``id`` is what clients name (never a server path)."""

    id: str
    spec: str  # zoo name or .tflite path
    kind: str  # "zoo" or "file"


class ModelPool:
    """The models offered; each (model, threads) is loaded on first use and then shared.

    Offered: ``models`` (zoo names or paths; the first is the default) and every zoo model
    that is in the cache when asked. Clients choose by id, so they cannot load arbitrary files.
    ``top_k`` and ``window`` are the loaded classifiers' options (what live streams use).
    """

    def __init__(
        self,
        models: list[str],
        *,
        top_k: int = 3,
        window: float | None = None,
        max_threads: int = 1,
    ) -> None:
        if not models:
            raise VidclsError("no model to serve")
        self.top_k, self.window, self.max_threads = top_k, window, max_threads
        self._explicit: dict[str, ModelEntry] = {}
        for spec in models:
            entry = self._entry_for(os.fspath(spec))
            if all(e.spec != entry.spec for e in self._explicit.values()):
                self._explicit[entry.id] = entry
        self.default = next(iter(self._explicit))
        self._loaded: dict[tuple[str, int], VideoClassifier] = {}
        self._schedulers: dict[tuple[str, int], Scheduler] = {}
        self._lock = threading.Lock()
        self.skipped = 0  # live frames answered ``skipped``, all streams (on the event loop)
        self.closed = False

    def _entry_for(self, spec: str) -> ModelEntry:
        if spec.lower() in zoo.MODELS:
            return ModelEntry(spec.lower(), spec.lower(), "zoo")
        path = Path(spec).expanduser()
        name, n = path.name, 1
        while name in self._explicit or name.lower() in zoo.MODELS:
            n += 1
            name = f"{path.stem}-{n}{path.suffix}"
        return ModelEntry(name, str(path.resolve()), "file")

    def offer(self, spec: str) -> str:
        """Offer the model file ``spec`` too, as the default from now on (it is checked when
        first loaded); its id."""
        with self._lock:
            for entry in self._explicit.values():
                if entry.spec == str(Path(spec).resolve()):
                    self.default = entry.id
                    return entry.id
            entry = self._entry_for(os.fspath(spec))
            self._explicit[entry.id] = entry
            self.default = entry.id
            return entry.id

    def entries(self) -> list[ModelEntry]:
        """The models offered now: those given, then the other zoo models in the cache."""
        found = list(self._explicit.values())
        for name, model in zoo.MODELS.items():
            if name not in self._explicit and zoo.is_cached(model):
                found.append(ModelEntry(name, name, "zoo"))
        return found

    def entry(self, model_id: str) -> ModelEntry:
        """The model offered as ``model_id``; MessageError if there is none."""
        for e in self.entries():
            if e.id == model_id:
                return e
        offered = ", ".join(e.id for e in self.entries())
        raise MessageError(f"unknown model '{model_id}' (offered: {offered})")

    def check_threads(self, threads: object) -> int:
        """``threads`` if it is an integer from 1 to ``max_threads``, else MessageError."""
        if isinstance(threads, bool) or not isinstance(threads, int):
            raise MessageError(f"threads must be an integer, not {threads!r}")
        if not 1 <= threads <= self.max_threads:
            raise MessageError(f"threads must be from 1 to {self.max_threads}, not {threads}")
        return threads

    def get(self, model_id: str, threads: int) -> VideoClassifier:
        """The shared classifier for (model, threads), loading it the first time."""
        entry, threads = self.entry(model_id), self.check_threads(threads)
        with self._lock:
            key = (entry.id, threads)
            if key not in self._loaded:
                options = ClassifierOptions(
                    model=entry.spec, top_k=self.top_k, threads=threads, window=self.window
                )
                self._loaded[key] = VideoClassifier.create_from_options(options)
            return self._loaded[key]

    def scheduler(self, model_id: str, threads: int) -> Scheduler:
        """The running scheduler every live stream of (model, threads) shares, started the
        first time: ``cores // threads`` workers (at least one), each a copy of the model."""
        classifier = self.get(model_id, threads)
        key = (self.entry(model_id).id, threads)
        with self._lock:
            if self.closed:
                raise VidclsError("the server is stopping")
            scheduler = self._schedulers.get(key)
            if scheduler is None:
                workers = max(1, (os.cpu_count() or 1) // threads)
                scheduler = self._schedulers[key] = Scheduler(classifier, workers=workers)
                scheduler.start()
        if scheduler.error is not None:
            raise VidclsError(f"live streams on {key[0]} stopped: {scheduler.error}")
        return scheduler

    def close(self) -> None:
        """Stop every scheduler (after the frame each worker is on)."""
        with self._lock:
            self.closed = True
            schedulers = list(self._schedulers.values())
        for scheduler in schedulers:
            scheduler.stop()

    def new_stream(self, model_id: str, threads: int, **changes) -> VideoClassifier:
        """A classifier with its own state on the shared model; ``changes`` to its options
        (see :meth:`VideoClassifier.new_stream`)."""
        return self.get(model_id, threads).new_stream(**changes)

    def describe(self) -> list[dict]:
        """What clients see of each model offered (the ``/v1/models`` entries)."""
        with self._lock:
            all_loaded = dict(self._loaded)
        out = []
        for e in self.entries():
            loaded = sorted(t for (i, t) in all_loaded if i == e.id)
            doc = {"id": e.id, "kind": e.kind, "default": e.id == self.default}
            if loaded:
                c = all_loaded[(e.id, loaded[0])]
                lay = c.model.layout
                doc.update(input=[lay.height, lay.width], fps=c.fps, classes=lay.num_classes)
            elif e.kind == "zoo":  # a zoo model not loaded yet
                z = zoo.MODELS[e.id]
                doc.update(input=[z.input_size, z.input_size], fps=z.fps, classes=600)
            doc["loaded_threads"] = loaded
            out.append(doc)
        return out


@dataclass
class _Waiting:
    """A frame put in its stream's slot and not answered yet."""

    reply: asyncio.Future
    decode_ms: float
    size: list[int]  # [width, height]


class LiveSession:
    """One connection's stream on the shared :class:`~vidcls.live.scheduler.Scheduler` of its
    (model, threads).

    A frame is decoded (:meth:`decode`, any thread) and put in the stream's slot
    (:meth:`offer`); its reply future gets the result once the scheduler fed it, or a
    ``skipped`` reply if a newer frame took its place first. Everything but :meth:`decode`
    and making the session runs on the event loop ``loop``.
    """

    def __init__(
        self,
        pool: ModelPool,
        model_id: str,
        threads: int,
        loop: asyncio.AbstractEventLoop,
        max_frame_bytes: int = 2 << 20,
    ) -> None:
        self.pool, self.loop, self.max_frame_bytes = pool, loop, max_frame_bytes
        self.model_id, self.threads = pool.entry(model_id).id, pool.check_threads(threads)
        self._arrivals: deque[float] = deque(maxlen=11)
        self.waiting: dict[int, _Waiting] = {}  # by frame index in the slot
        self.skipped = 0  # frames answered ``skipped`` on this connection
        self.first_fed: float | None = None  # results' time 0
        self.failed: str | None = None  # the stream ended under us (its worker failed)
        self.closed = False
        self.scheduler = pool.scheduler(self.model_id, self.threads)
        self.feed, self.slot = self._add(self.scheduler)

    @property
    def classifier(self) -> VideoClassifier:
        """The shared classifier the stream runs on (its options, its model)."""
        return self.scheduler.classifier

    def describe(self, kind: str) -> dict:
        """The stream's settings, as the ``ready`` and ``config`` replies carry them."""
        lay = self.classifier.model.layout
        return {
            "type": kind,
            "model": self.model_id,
            "threads": self.threads,
            "fps": self.classifier.fps or 5.0,
            "input": [lay.height, lay.width],
            "classes": lay.num_classes,
            "top_k": self.classifier.options.top_k,
            "window": self.classifier.options.window,
        }

    def arrived(self, when: float) -> None:
        """Note a frame's arrival (for the input frame rate)."""
        self._arrivals.append(when)

    def input_fps(self) -> float | None:
        """Frames per second arriving, over the last ten frames (None before two)."""
        a = self._arrivals
        if len(a) < 2 or a[-1] <= a[0]:
            return None
        return (len(a) - 1) / (a[-1] - a[0])

    # -- frames ----------------------------------------------------------------------------

    def decode(self, data: bytes) -> tuple[np.ndarray, float]:
        """The RGB picture of a JPEG frame and the ms it took; MessageError or VidclsError
        when the frame is unusable."""
        if len(data) > self.max_frame_bytes:
            raise MessageError(
                f"frame of {len(data)} bytes; at most {self.max_frame_bytes} "
                "(downscale before sending)"
            )
        t0 = time.perf_counter()
        rgb = decode_jpeg(data)
        return rgb, 1e3 * (time.perf_counter() - t0)

    def offer(self, rgb: np.ndarray, arrived: float, decode_ms: float, reply: asyncio.Future):
        """Put a decoded frame in the slot; ``reply`` gets its answer (an older frame still
        waiting is answered ``skipped`` now)."""
        if self.failed:
            reply.set_result(error_reply(self.failed, "frame"))
            return
        self.slot.input_fps = self.input_fps() or 0.0  # reported with its result
        size = [int(rgb.shape[1]), int(rgb.shape[0])]
        self.waiting[self.slot.captured] = _Waiting(reply, decode_ms, size)
        dropped = self.slot.put(rgb, arrived)
        if dropped is not None:
            waiting = self.waiting.pop(dropped.index)
            self.skipped += 1
            self.pool.skipped += 1
            doc = {"type": "skipped", "reason": SKIPPED, "skipped": self.skipped}
            waiting.reply.set_result(doc)

    def _add(self, scheduler: Scheduler) -> tuple[Feed, FrameSlot]:
        slot = FrameSlot()
        period = 1.0 / scheduler.rate if scheduler.rate else 0.0
        feed = scheduler.add("browser", slot, self._on_result, self._on_end, SLACK * period)
        return feed, slot

    def _on_result(self, feed: Feed, result: FrameResult) -> None:  # on a worker thread
        frames = feed.pipeline.classifier.frames_seen
        self._call(self._fed, feed, feed.used, feed.last_fed, frames, result)

    def _on_end(self, feed: Feed, events: list) -> None:  # a worker thread, or remove()
        self._call(self._ended, feed)

    def _call(self, fn, *args) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: the server is stopping
            self.loop.call_soon_threadsafe(fn, *args)

    def _fed(self, feed: Feed, index: int, fed_at: float, frames: int, result: FrameResult):
        waiting = self.waiting.pop(index, None) if feed is self.feed else None
        if waiting is None or waiting.reply.done():
            return
        self.first_fed = fed_at if self.first_fed is None else self.first_fed
        result.time = fed_at - self.first_fed
        result.decode_ms, result.input_fps = waiting.decode_ms, result.input_fps or None
        doc = {"type": "result", **result.to_dict(), "frames": frames, "size": waiting.size}
        waiting.reply.set_result(doc)

    def _ended(self, feed: Feed) -> None:
        if feed is not self.feed or self.closed:
            return  # replaced by a reset or config, or the connection closed
        error = self.scheduler.error
        self.failed = f"the stream stopped ({error or 'the server is stopping'}); reconnect"
        for waiting in self.waiting.values():
            if not waiting.reply.done():
                waiting.reply.set_result(error_reply(self.failed, "frame"))
        self.waiting.clear()

    # -- control messages ------------------------------------------------------------------

    async def control(self, text: str, executor: Executor) -> dict:
        """Handle ``{"type": "reset"}`` or ``{"type": "config", "model": ..., "threads": ...}``
        once every earlier frame is answered; a fresh stream either way."""
        try:
            kind, model_id, threads = self._parse(text)
            if self.waiting:  # those frames are fed on the old state (or skipped) first
                await asyncio.wait([w.reply for w in self.waiting.values()])
            run = self.loop.run_in_executor
            scheduler = self.scheduler
            if kind == "config":  # may load a model
                scheduler = await run(executor, self.pool.scheduler, model_id, threads)
            feed, slot = await run(executor, self._add, scheduler)
        except (MessageError, VidclsError) as e:
            return error_reply(str(e), "control")
        self.scheduler.remove(self.feed)
        self.feed, self.slot, self.scheduler = feed, slot, scheduler
        self._arrivals.clear()
        self.first_fed, self.failed = None, None
        if kind == "reset":
            return {"type": "reset", "frames": 0}
        self.model_id, self.threads = model_id, threads
        return self.describe("config")

    def _parse(self, text: str) -> tuple[str, str, int]:
        try:
            message = json.loads(text)
        except ValueError:
            raise MessageError(
                'text messages must be JSON: {"type": "reset"} or {"type": "config", ...}'
            ) from None
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "reset":
            return kind, self.model_id, self.threads
        if kind == "config":
            model = message.get("model", self.model_id)
            threads = message.get("threads", self.threads)
            if not isinstance(model, str):
                raise MessageError(f"model must be a string, not {model!r}")
            return kind, self.pool.entry(model).id, self.pool.check_threads(threads)
        raise MessageError(f"unknown message type {kind!r} (expected 'reset' or 'config')")

    def close(self) -> None:
        """The connection is gone: stop feeding its stream."""
        self.closed = True
        self.scheduler.remove(self.feed)


def error_reply(message: str, reply_to: str, fatal: bool = False) -> dict:
    """An error message; ``reply_to`` is "frame", "control" or "connection"."""
    return {"type": "error", "message": message, "reply_to": reply_to, "fatal": fatal}
