"""Windowed classification: predictions that follow the content of a long video.

A stream model's pooling is cumulative since its last reset, so ten minutes in, a new action
is drowned by everything before it. Two ways to forget, both quacking like a
:class:`~vidcls.model.Stream`:

- :class:`WindowedStreams`: two streams share one loaded model; each is reset every ``W``
  frames, the second half a window after the first, and the prediction comes from whichever
  has seen more frames: always between ``W/2`` and ``W`` frames of recent video (after the
  first ``W/2``). It costs a second invoke per frame.
- :class:`DecayedStream`: one stream whose running pool sums (``<p>_pool_buffer``; the model
  divides each, plus the current frame's, by its ``<p>_pool_frame_count`` plus one) are cut to
  :data:`KEEP` of themselves with their counts whenever the counts reach ``W``: a running mean
  with geometric weights (the newest ``~W/2`` frames at full weight, the ``~W/2`` before at
  0.45, then 0.2, ...). One invoke per frame; it needs a model whose cumulative state is all in
  such pairs (:func:`~vidcls.layout.pool_pairs`).
"""

from __future__ import annotations

import numpy as np

from .layout import pool_pairs
from .model import Stream, StreamModel
from .options import WINDOW_MODES

# What a decay keeps of each pool count (the sum is scaled by exactly new count / old count, so
# the mean is unchanged). A little under half: int8 models store each sum quantized, with an
# output step 2-5 % coarser than the input step (both shared models), so a sum of one step
# halved exactly rounds back up to one step and would never fade; at 0.45 it rounds to zero.
KEEP = 0.45


class WindowedStreams:
    """Two staggered streams reset in turn; quacks like a :class:`~vidcls.model.Stream`."""

    def __init__(self, model: StreamModel, window_frames: int) -> None:
        if window_frames < 2:
            raise ValueError(f"a window needs at least 2 frames, not {window_frames}")
        self.model = model
        self.window = int(window_frames)
        self.offsets = (0, self.window // 2)
        self.streams: tuple[Stream, Stream] = (model.new_stream(), model.new_stream())
        self.frames = 0
        self.logits = self.streams[0].logits
        self.active = 0  # which stream the latest logits came from

    def step(self, image: np.ndarray) -> np.ndarray:
        """Feed one frame to both streams; the logits of the one that has seen more."""
        n = self.frames
        for stream, offset in zip(self.streams, self.offsets, strict=True):
            if n >= offset and (n - offset) % self.window == 0 and stream.frames:
                stream.reset()
            if n >= offset:
                stream.step(image)
        self.frames += 1
        self.active = 0 if self.streams[0].frames >= self.streams[1].frames else 1
        self.logits = self.streams[self.active].logits
        return self.logits

    def reset(self) -> None:
        for stream in self.streams:
            stream.reset()
        self.frames = 0
        self.active = 0
        self.logits = self.streams[0].logits


class DecayedStream:
    """One stream whose pool frame counts drop to ``keep`` of themselves, and their sums with
    them, each time the counts reach the window; quacks like a :class:`~vidcls.model.Stream`.
    ValueError for a model without pool pairs (see :func:`~vidcls.layout.pool_pairs`)."""

    def __init__(self, model: StreamModel, window_frames: int, keep: float = KEEP) -> None:
        if window_frames < 2:
            raise ValueError(f"a window needs at least 2 frames, not {window_frames}")
        if not 0 < keep < 1:
            raise ValueError(f"a decay keeps a fraction from 0 to 1, not {keep}")
        self.keep = keep
        self.pairs = pool_pairs(model.layout)
        if not self.pairs:
            raise ValueError(f"{model.path.name} has no running pool sums with frame counts")
        self.model = model
        self.window = int(window_frames)
        self.stream = model.new_stream()
        self._sums = [np.empty(total.shape, total.dtype) for total, _ in self.pairs]
        self._counts = [np.empty(count.shape, count.dtype) for _, count in self.pairs]
        self.logits = self.stream.logits
        self.frames = 0  # fed since the last reset
        self.count = 0  # frames summed in the pools, as the last decay left them
        self.decays = 0

    def step(self, image: np.ndarray) -> np.ndarray:
        """Feed one frame; the logits for it (then decay the pools if the window is full)."""
        logits = self.stream.step(image)
        self.frames += 1
        self.count += 1
        if self.count >= self.window:
            self.decay()
        return logits

    def decay(self) -> None:
        """Cut every pool's frame count to ``keep`` of it and scale its sum by exactly new/old
        count: each mean is unchanged and every frame seen so far weighs less by that much."""
        stream = self.stream
        for (total, count), s, c in zip(self.pairs, self._sums, self._counts, strict=True):
            old = int(stream.read_state(count.name, c).flat[0])
            if old < 2:  # a pool the model never counts (an unused state): nothing to decay
                continue
            new = max(1, int(old * self.keep))
            stream.read_state(total.name, s)
            s *= np.float32(new / old)
            c.flat[0] = new
            stream.write_state(total.name, s)
            stream.write_state(count.name, c)
        self.count = max(1, int(self.count * self.keep))
        self.decays += 1

    def reset(self) -> None:
        self.stream.reset()
        self.frames = self.count = self.decays = 0


def windowed_stream(
    model: StreamModel, window_frames: int, mode: str = "two"
) -> WindowedStreams | DecayedStream:
    """A window of ``window_frames`` on ``model``: ``mode`` "two" (:class:`WindowedStreams`) or
    "decay" (:class:`DecayedStream`; "two" for a model without pool pairs)."""
    if mode not in WINDOW_MODES:
        raise ValueError(f"unknown window mode {mode!r} (choose from {', '.join(WINDOW_MODES)})")
    if mode == "decay" and pool_pairs(model.layout):
        return DecayedStream(model, window_frames)
    return WindowedStreams(model, window_frames)
