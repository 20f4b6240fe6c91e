"""Decode and preprocess in a background thread, a few frames ahead of inference.

FFmpeg's decoder and LiteRT's invoke both release the GIL, so a video's decoding overlaps
with the model running on the frames before. Prepared frames rotate through a small ring of
preallocated buffers: nothing is allocated per frame.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterable, Iterator

import numpy as np

from .preprocess import Preprocessor

_DONE = object()


def prefetched(
    frames: Iterable[tuple[float, object]], preprocessor: Preprocessor, depth: int = 4
) -> Iterator[tuple[float, np.ndarray]]:
    """``(time, prepared image)`` for each ``(time, av frame)``, prepared ``depth`` ahead.

    An image is valid until the next one is taken. Errors in decoding are raised here.
    """
    if depth <= 0:
        for t, frame in frames:
            yield t, preprocessor.from_frame(frame)
        return
    p = preprocessor
    ring = [Preprocessor(p.height, p.width, p.resize, p.fit_mode) for _ in range(depth + 2)]
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for i, (t, frame) in enumerate(frames):
                item = (t, ring[i % len(ring)].from_frame(frame))
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_DONE)
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            q.put(e)

    thread = threading.Thread(target=produce, name="vidcls-decode", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            with contextlib.suppress(queue.Empty):
                q.get(timeout=0.05)
        thread.join()
