"""The most cameras a machine's cores could hold, from the CPU work one camera costs.

Measured on the camera clip itself, in this process, one thing at a time: decoding a frame
(every frame a camera sends is decoded: a stream with no B-frames has none to skip), turning a
frame into the model's input, and one model step with its window and top-k. CPU time, not wall
time, so a busy machine changes the figure little. A camera sending ``fps`` frames that gets
``rate`` results a second costs ``fps x decode + rate x (prepare + model)`` CPU ms a second;
``cores`` cores hold at most ``cores x 1000`` over that, before any scheduling, transport or
event work: a ceiling, not a promise. ``vidcls bench --streams`` prints it beside the runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ..classifier import VideoClassifier
from ..media import VideoFile

STEPS = 60  # model steps timed (after as many to warm up)


@dataclass(frozen=True)
class Ceiling:
    """CPU ms of one decoded frame, one prepared frame and one model step, and what they
    allow."""

    decode_ms: float
    prepare_ms: float
    model_ms: float
    fps: float  # the camera's frames per second
    rate: float  # results per second per camera
    cores: int

    @property
    def camera_ms(self) -> float:
        """CPU ms one camera costs each second."""
        return self.fps * self.decode_ms + self.rate * (self.prepare_ms + self.model_ms)

    @property
    def cameras(self) -> int:
        """The most cameras ``cores`` cores could hold."""
        return int(self.cores * 1000 / self.camera_ms)

    def line(self) -> str:
        return (
            f"ceiling: one camera costs {self.fps:g} x {self.decode_ms:.2f} ms decoding + "
            f"{self.rate:g} x ({self.prepare_ms:.2f} ms preparing + {self.model_ms:.2f} ms "
            f"model) = {self.camera_ms:.0f} CPU ms/s; {self.cores} cores hold at most "
            f"{self.cameras} cameras (CPU time measured now, before scheduling and transport)"
        )


def measure_ceiling(classifier: VideoClassifier, clip: Path, cores: int) -> Ceiling:
    """The ceiling for cameras sending ``clip`` to ``classifier`` (a fresh stream of it)."""
    with VideoFile(clip) as video:
        video.stream.thread_type = "NONE"  # a live decoder decodes each camera in one thread
        fps = video.info.fps or 30.0
        start = time.process_time()
        frames = [frame for _, frame in video.frames()]
        decode_ms = 1e3 * (time.process_time() - start) / max(1, len(frames))
    pre = classifier.preprocessor
    start = time.process_time()
    for frame in frames:
        pre.from_frame(frame)
    prepare_ms = 1e3 * (time.process_time() - start) / max(1, len(frames))
    stream = classifier.new_stream()
    rate = classifier.fps or 5.0
    stream.set_feed_rate(rate)
    image = pre.from_frame(frames[len(frames) // 2])
    for _ in range(STEPS):
        stream.classify_prepared(image)
    start = time.process_time()
    for _ in range(STEPS):
        stream.classify_prepared(image)
    model_ms = 1e3 * (time.process_time() - start) / STEPS
    return Ceiling(decode_ms, prepare_ms, model_ms, fps, rate, cores)
