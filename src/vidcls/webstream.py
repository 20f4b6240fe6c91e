"""The models a server offers, and one live stream's state: JPEG frames in, results out.

Nothing here knows about HTTP: :class:`ModelPool` loads each (model, threads) once and hands
out classifiers with their own state on it; :class:`LiveSession` is what one WebSocket
connection drives, one message at a time, and answers with JSON-ready dicts.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from . import zoo
from .classifier import ClassifierOptions, VideoClassifier
from .errors import VidclsError

MAX_FRAME_SIDE = 4096


class MessageError(ValueError):
    """A message the protocol does not allow; answered with an error, the stream goes on."""


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
        for e in self.entries():
            if e.id == model_id:
                return e
        offered = ", ".join(e.id for e in self.entries())
        raise MessageError(f"unknown model '{model_id}' (offered: {offered})")

    def check_threads(self, threads: object) -> int:
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
                    model=entry.spec,
                    max_results=self.top_k,
                    num_threads=threads,
                    window=self.window,
                )
                self._loaded[key] = VideoClassifier.create_from_options(options)
            return self._loaded[key]

    def new_stream(self, model_id: str, threads: int, **changes) -> VideoClassifier:
        """A classifier with its own state on the shared model; ``changes`` to its options."""
        base = self.get(model_id, threads)
        options = replace(base.options, **changes) if changes else base.options
        with base.model._lock:  # new LiteRT buffers are not made while another stream runs
            return VideoClassifier(base.model, base.labels, options)

    def describe(self) -> list[dict]:
        """What clients see of each model offered."""
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
            elif e.kind == "zoo":  # a cached zoo model not loaded yet
                z = zoo.MODELS[e.id]
                doc.update(input=[z.input_size, z.input_size], fps=z.fps, classes=600)
            doc["loaded_threads"] = loaded
            out.append(doc)
        return out


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's frame header, or None if ``data`` is not a JPEG."""
    if data[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 9 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF or marker == 0x01 or 0xD0 <= marker <= 0xD8:
            i += 1 if marker == 0xFF else 2  # fill byte or a marker without a length
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # start of frame
            height = int.from_bytes(data[i + 5 : i + 7], "big")
            width = int.from_bytes(data[i + 7 : i + 9], "big")
            return width, height
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return None


def decode_jpeg(data: bytes) -> np.ndarray:
    """RGB uint8 ``[h, w, 3]`` from JPEG bytes; MessageError when they are not a usable JPEG.

    The size is read from the header first, so a forged header cannot make the decoder
    allocate gigabytes.
    """
    size = jpeg_size(data)
    if size is None:
        raise MessageError("frame is not a JPEG image (send canvas.toBlob(..., 'image/jpeg'))")
    if not (0 < size[0] <= MAX_FRAME_SIDE and 0 < size[1] <= MAX_FRAME_SIDE):
        raise MessageError(f"frame is {size[0]}x{size[1]}; at most {MAX_FRAME_SIDE} px a side")
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise MessageError("frame is a corrupt JPEG that cannot be decoded")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


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
        self.classifier = pool.new_stream(model_id, threads)
        self.model_id, self.threads = pool.entry(model_id).id, threads

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
            "top_k": self.classifier.options.max_results,
            "window": self.classifier.options.window,
        }

    def arrived(self, when: float | None = None) -> None:
        """Note a frame's arrival (for the input frame rate)."""
        self._arrivals.append(time.monotonic() if when is None else when)

    def input_fps(self) -> float | None:
        a = self._arrivals
        if len(a) < 2 or a[-1] <= a[0]:
            return None
        return (len(a) - 1) / (a[-1] - a[0])

    def frame(self, data: bytes) -> dict:
        """Classify one JPEG frame."""
        try:
            if len(data) > self.max_frame_bytes:
                raise MessageError(
                    f"frame of {len(data)} bytes; at most {self.max_frame_bytes} "
                    "(downscale before sending)"
                )
            t0 = time.perf_counter()
            rgb = decode_jpeg(data)
            t1 = time.perf_counter()
            top = self.classifier.classify(rgb)
            t2 = time.perf_counter()
        except (MessageError, VidclsError) as e:
            return error_reply(str(e), "frame")
        fps = self.input_fps()
        return {
            "type": "result",
            "top": [c.to_dict() for c in top],
            "infer_ms": round((t2 - t1) * 1000, 2),
            "decode_ms": round((t1 - t0) * 1000, 2),
            "frames": self.classifier.frames_seen,
            "fps": None if fps is None else round(fps, 2),
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
            self.classifier.reset()
            self._arrivals.clear()
            return {"type": "reset", "frames": 0}
        if kind == "config":
            model = message.get("model", self.model_id)
            threads = message.get("threads", self.threads)
            if not isinstance(model, str):
                raise MessageError(f"model must be a string, not {model!r}")
            classifier = self.pool.new_stream(model, self.pool.check_threads(threads))
            self.classifier, self.model_id, self.threads = classifier, model, threads
            self._arrivals.clear()
            return self.describe("config")
        raise MessageError(f"unknown message type {kind!r} (expected 'reset' or 'config')")


def error_reply(message: str, reply_to: str, fatal: bool = False) -> dict:
    """An error message; ``reply_to`` is "frame", "control" or "connection"."""
    return {"type": "error", "message": message, "reply_to": reply_to, "fatal": fatal}
