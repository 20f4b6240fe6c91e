"""The result model: what every front end produces and serializes.

``Category`` (one class and its probability), ``FrameResult`` (after one fed frame),
``Segment`` and ``SegmentEvent`` (actions over time), ``VideoInfo`` and ``VideoResult`` (a whole
video). ``to_dict()`` gives the JSON shape every output uses (CLI, server, batch, live); the
server's pydantic schema is derived from these classes (:mod:`vidcls.serve.schema`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from time import time as _wall_clock
from typing import TYPE_CHECKING

from .ids import new_id

if TYPE_CHECKING:  # numpy only where it is needed: the command line starts without it
    import numpy as np


@dataclass(frozen=True)
class Category:
    """One class and its probability."""

    label: str
    index: int
    score: float

    def to_dict(self) -> dict:
        return {"label": self.label, "index": self.index, "score": round(self.score, 6)}


@dataclass
class Segment:
    """One action from ``start`` to ``end`` seconds, with its highest smoothed probability."""

    label: str
    index: int
    start: float
    end: float
    peak: float

    def to_dict(self) -> dict:
        return {
            "label": self.label,
            "index": self.index,
            "start": round(self.start, 4),
            "end": round(self.end, 4),
            "peak": round(self.peak, 6),
        }


@dataclass(frozen=True)
class SegmentEvent:
    """``kind`` is ``"start"`` (once the segment has lasted ``min_duration``) or ``"end"``.

    ``time`` is when it was decided on the source's clock, ``wall_time`` on the wall clock
    (seconds since the epoch; default: when made). ``id`` (default: a new
    :func:`~vidcls.ids.new_id` of ``wall_time``) is made once, where the event is decided,
    and every output of the event carries it; an end carries its start's id in ``start_id``,
    and ``interrupted`` when its segment closed because the source was lost, not because the
    action stopped. Its JSON is :func:`vidcls.events.event_doc`'s.
    """

    kind: str
    time: float
    segment: Segment
    clip: str | None = None  # the end's event clip (written within post_roll seconds)
    snapshot: str | None = None  # the end's snapshot, a JPEG
    id: str = ""
    start_id: str | None = None
    interrupted: bool = False
    wall_time: float | None = None

    def __post_init__(self) -> None:
        if self.wall_time is None:
            object.__setattr__(self, "wall_time", _wall_clock())
        if not self.id:
            object.__setattr__(self, "id", new_id(self.wall_time))


@dataclass
class FrameResult:
    """The prediction after feeding the frame presented at ``time`` seconds.

    ``probabilities`` (every class) is kept only when asked for. The timings are filled by
    the front ends that measure them: ``infer_ms`` (preprocess + model + postprocess),
    ``decode_ms`` (a browser's JPEG), ``latency_ms`` (capture to result) and ``input_fps``
    (rate frames arrive from a live source). ``events`` are the segment starts and ends this
    frame caused.
    """

    time: float
    top: list[Category]
    probabilities: np.ndarray | None = field(default=None, repr=False)
    infer_ms: float | None = None
    decode_ms: float | None = None
    latency_ms: float | None = None
    input_fps: float | None = None
    events: list[SegmentEvent] = field(default_factory=list)

    def to_dict(self) -> dict:
        doc = {"time": round(self.time, 4), "top": [c.to_dict() for c in self.top]}
        for name, digits in _TIMINGS:
            value = getattr(self, name)
            if value is not None:
                doc[name] = round(value, digits)
        return doc


_TIMINGS = (("infer_ms", 2), ("decode_ms", 2), ("latency_ms", 1), ("input_fps", 1))


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about its first video stream."""

    path: str
    codec: str
    width: int
    height: int
    fps: float | None
    duration: float | None
    frames: int | None


@dataclass
class VideoResult:
    """A whole video: per-frame results, the summary (the prediction after the last frame
    fed), and the action segments when asked for. ``fps`` is the rate fed, None for every
    decoded frame."""

    source: str
    model: str
    fps: float | None
    frames: list[FrameResult] = field(default_factory=list)
    summary: list[Category] = field(default_factory=list)
    window: float | None = None
    segments: list[Segment] | None = None
    info: VideoInfo | None = field(default=None, repr=False)
    labels: list[str] = field(default_factory=list, repr=False)

    def to_dict(self, frames: bool = True) -> dict:
        doc = {
            "source": self.source,
            "model": self.model,
            "fps": self.fps,
            "frames": [f.to_dict() for f in self.frames] if frames else [],
            "summary": {"top": [c.to_dict() for c in self.summary]},
        }
        if self.window is not None:
            doc["window"] = self.window
        if self.segments is not None:
            doc["segments"] = [s.to_dict() for s in self.segments]
        return doc

    @property
    def times(self) -> np.ndarray:
        """Each fed frame's time, seconds."""
        import numpy as np

        return np.array([f.time for f in self.frames], np.float64)

    @property
    def probabilities(self) -> np.ndarray | None:
        """``[frames, classes]`` when every frame kept its probabilities, else None."""
        if not self.frames or any(f.probabilities is None for f in self.frames):
            return None
        import numpy as np

        return np.stack([f.probabilities for f in self.frames])


def named(source: str) -> dict:
    """``{"source": ...}``, and ``"zone"`` for a view of a source that has zones (its name a
    :class:`~vidcls.live.sources.FeedName`; the zone None for the whole frame)."""
    if hasattr(source, "zone"):
        return {"source": source.source, "zone": source.zone}
    return {"source": source}
