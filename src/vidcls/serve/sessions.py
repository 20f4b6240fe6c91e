"""The models a server offers, and one live stream's state: JPEG frames in, results out.

Nothing here knows about HTTP: :class:`ModelPool` loads each (model, threads) once and hands
out classifiers with their own state on it; :class:`LiveSession` is what one WebSocket
connection drives, one message at a time, answering with JSON-ready dicts (the protocol is in
:mod:`vidcls.serve.stream`).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from .. import zoo
from ..classifier import ClassifierOptions, VideoClassifier
from ..errors import VidclsError
from ..media import decode_jpeg
from ..pipeline import Pipeline


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
        self._lock = threading.Lock()

    def _entry_for(self, spec: str) -> ModelEntry:
        if spec.lower() in zoo.MODELS:
            return ModelEntry(spec.lower(), spec.lower(), "zoo")
        path = Path(spec).expanduser()
        name, n = path.name, 1
        while name in self._explicit or name.lower() in zoo.MODELS:
            n += 1
            name = f"{path.stem}-{n}{path.suffix}"
        return ModelEntry(name, str(path.resolve()), "file")

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


class LiveSession:
    """One connection's stream on a shared model. Not thread-safe: feed it in order.

    ``frame(jpeg)`` and ``control(text)`` return the reply to send; errors in a message become
    ``{"type": "error", ...}`` replies and leave the stream as it was.
    """

    def __init__(
        self, pool: ModelPool, model_id: str, threads: int, max_frame_bytes: int = 2 << 20
    ) -> None:
        self.pool = pool
        self.max_frame_bytes = max_frame_bytes
        self._arrivals: deque[float] = deque(maxlen=11)
        self.pipeline = Pipeline(pool.new_stream(model_id, threads), timed=True)
        self.model_id, self.threads = pool.entry(model_id).id, threads
        self.started: float | None = None  # the first frame's arrival: results' time 0

    @property
    def classifier(self) -> VideoClassifier:
        """The stream's classifier."""
        return self.pipeline.classifier

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

    def arrived(self, when: float | None = None) -> None:
        """Note a frame's arrival (for the input frame rate)."""
        self._arrivals.append(time.monotonic() if when is None else when)

    def input_fps(self) -> float | None:
        """Frames per second arriving, over the last ten frames (None before two)."""
        a = self._arrivals
        if len(a) < 2 or a[-1] <= a[0]:
            return None
        return (len(a) - 1) / (a[-1] - a[0])

    def frame(self, data: bytes) -> dict:
        """Classify one JPEG frame; the reply is ``{"type": "result", ...}`` or an error."""
        try:
            if len(data) > self.max_frame_bytes:
                raise MessageError(
                    f"frame of {len(data)} bytes; at most {self.max_frame_bytes} "
                    "(downscale before sending)"
                )
            t0 = time.perf_counter()
            rgb = decode_jpeg(data)
            decode_ms = 1e3 * (time.perf_counter() - t0)
            now = time.monotonic()
            self.started = now if self.started is None else self.started
            result = self.pipeline.feed(now - self.started, rgb)
        except (MessageError, VidclsError) as e:
            return error_reply(str(e), "frame")
        result.decode_ms, result.input_fps = decode_ms, self.input_fps()
        return {
            "type": "result",
            **result.to_dict(),
            "frames": self.classifier.frames_seen,
            "size": [int(rgb.shape[1]), int(rgb.shape[0])],
        }

    def control(self, text: str) -> dict:
        """Handle ``{"type": "reset"}`` or ``{"type": "config", "model": ..., "threads": ...}``."""
        try:
            return self._control(text)
        except (MessageError, VidclsError) as e:
            return error_reply(str(e), "control")

    def _control(self, text: str) -> dict:
        try:
            message = json.loads(text)
        except ValueError:
            raise MessageError(
                'text messages must be JSON: {"type": "reset"} or {"type": "config", ...}'
            ) from None
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "reset":
            self.pipeline.reset()
            self._restart()
            return {"type": "reset", "frames": 0}
        if kind == "config":
            model = message.get("model", self.model_id)
            threads = message.get("threads", self.threads)
            if not isinstance(model, str):
                raise MessageError(f"model must be a string, not {model!r}")
            classifier = self.pool.new_stream(model, self.pool.check_threads(threads))
            self.pipeline = Pipeline(classifier, timed=True)
            self.model_id, self.threads = self.pool.entry(model).id, threads
            self._restart()
            return self.describe("config")
        raise MessageError(f"unknown message type {kind!r} (expected 'reset' or 'config')")

    def _restart(self) -> None:
        self._arrivals.clear()
        self.started = None


def error_reply(message: str, reply_to: str, fatal: bool = False) -> dict:
    """An error message; ``reply_to`` is "frame", "control" or "connection"."""
    return {"type": "error", "message": message, "reply_to": reply_to, "fatal": fatal}
