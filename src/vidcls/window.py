"""Windowed classification: predictions that follow the content of a long video.

A stream model's pooling is cumulative since its last reset, so ten minutes in, a new action
is drowned by everything before it. Here two streams share one loaded model; each is reset every
``W`` frames, the second half a window after the first, and the prediction comes from whichever
has seen more frames: always between ``W/2`` and ``W`` frames of recent video (after the first
``W/2``). It costs a second invoke per frame.
"""

from __future__ import annotations

import numpy as np

from .model import Stream, StreamModel


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
