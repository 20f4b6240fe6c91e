"""What a batch job runs on every video and how it spreads the work; what it did."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import OptionError
from ..options import ClassifierOptions


@dataclass
class BatchOptions:
    """What to run on every video and how to spread it; checked when made (VidclsError).

    Each field is the ``vidcls batch`` flag of the same name. ``fps``: None feeds the model's
    own rate, 0 every decoded frame. ``workers``: local processes (default one per core, at
    most one per video); ``threads``: inference threads per worker (default cores / workers).
    ``chunk``: videos per committed part. ``ray``: None for the local pool, ``""``/``"auto"``
    for a local Ray, else a cluster address.
    """

    model: str | os.PathLike = "a0"
    labels: str | os.PathLike | None = None
    top_k: int = 5
    threshold: float = 0.0
    allow: list[str] | None = None
    deny: list[str] | None = None
    fps: float | None = None
    window: float | None = None
    window_mode: str = "two"
    segments: bool = False
    per_frame: bool = False
    workers: int | None = None
    threads: int | None = None
    chunk: int = 4
    ray: str | None = None
    skip_nonref: bool = False
    prefetch: int = 4

    def __post_init__(self) -> None:
        if self.fps is not None and not (self.fps >= 0 and math.isfinite(self.fps)):
            raise OptionError("fps", f"must be 0 (every frame) or positive, not {self.fps!r}")
        for name in ("workers", "threads"):
            value = getattr(self, name)
            if value is not None and not _count(value, 1):
                raise OptionError(name, f"must be 1 or more, not {value!r}")
        if not _count(self.chunk, 1):
            raise OptionError("chunk", f"must be 1 or more, not {self.chunk!r}")
        if not _count(self.prefetch, 0):
            raise OptionError("prefetch", f"must be 0 or more, not {self.prefetch!r}")
        if self.ray is not None and not isinstance(self.ray, str):
            raise OptionError("ray", f"must be an address or '' (a local Ray), not {self.ray!r}")
        self.classifier_options(self.threads or 1)  # checks top_k, threshold, window

    def classifier_options(self, threads: int) -> ClassifierOptions:
        """The options each worker loads its classifier with."""
        return ClassifierOptions(
            model=self.model,
            labels=self.labels,
            top_k=self.top_k,
            threshold=self.threshold,
            allow=self.allow,
            deny=self.deny,
            threads=threads,
            window=self.window,
            window_mode=self.window_mode,
        )


def _count(value: object, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


@dataclass
class BatchSummary:
    """What a run did: ``done_before`` inputs were in committed parts or the output already;
    ``video_seconds`` is the video classified by this run."""

    inputs: int
    done_before: int
    processed: int
    failed: int
    seconds: float
    video_seconds: float
    output: Path
    frames_output: Path | None = None
    errors: list[str] = field(default_factory=list)
