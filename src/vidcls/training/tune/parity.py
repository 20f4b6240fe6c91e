"""The replica against LiteRT: logits of the JAX replica and of
:class:`~vidcls.model.StreamModel` on the same preprocessed frames, frame by frame from zero
states (``python -m vidcls.training.tune parity``)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ... import media
from ...model import StreamModel
from ...preprocess import Preprocessor
from .replica import StreamReplica, stream_replica


def shared_assets() -> Path:
    """The shared models and clips: ``$VIDCLS_SHARED/assets`` (default ``../shared`` beside
    the checkout)."""
    here = Path(__file__).resolve().parents[4]
    return Path(os.environ.get("VIDCLS_SHARED", here.parent / "shared")) / "assets"


@dataclass
class Parity:
    """One model on one clip at one rate: how far the replica is from LiteRT."""

    model: Path
    clip: Path
    fps: float | None  # None: every frame
    frames: int
    max_diff: float  # max |logit difference| over every frame
    spread: float  # largest |logit| in LiteRT, for scale
    top1: float  # share of frames with the same top-1 class
    top5: float  # share of frames with the same top-5 set
    overlap: float  # mean share of the top-5 classes in common
    replica_ms: float  # the replica's time per frame

    def line(self) -> str:
        """One line for people."""
        rate = "every" if self.fps is None else f"{self.fps:g} fps"
        return (
            f"{self.model.name:34s} {self.clip.name:24s} {rate:>8s} "
            f"{self.frames:4d} frames  max|diff| {self.max_diff:6.3f} (|logits| up to "
            f"{self.spread:5.1f})  top-1 {self.top1:6.1%}  top-5 set {self.top5:6.1%} "
            f"overlap {self.overlap:6.1%}  replica {self.replica_ms:5.0f} ms/frame"
        )


def compare(model: Path, clip: Path, fps: float | None, replica: StreamReplica) -> Parity:
    """``model`` in LiteRT and ``replica`` on ``clip`` fed at ``fps`` (None: every frame)."""
    stream = StreamModel(model, 1).new_stream()
    pre = Preprocessor(stream.layout.height, stream.layout.width)
    images = [pre.from_array(f).copy() for f in media.read_frames(clip, fps)]
    lite = np.array([stream.step(im).copy() for im in images])
    t0 = time.perf_counter()
    rep = replica.run(images)
    dt = (time.perf_counter() - t0) / len(images)
    k = min(5, lite.shape[1])
    pairs = [
        (set(np.argsort(-a)[:k]), set(np.argsort(-b)[:k])) for a, b in zip(lite, rep, strict=True)
    ]
    return Parity(
        model,
        clip,
        fps,
        len(images),
        float(np.abs(lite - rep).max()),
        float(np.abs(lite).max()),
        float((lite.argmax(1) == rep.argmax(1)).mean()),
        float(np.mean([a == b for a, b in pairs])),
        float(np.mean([len(a & b) / k for a, b in pairs])),
        dt * 1000,
    )


def run_parity(
    models: list[Path], clips: list[Path], every_frame_max: int = 140, on_result=print
) -> list[Parity]:
    """Every model on every clip at 5 fps, and at every frame when the clip has at most
    ``every_frame_max`` frames; ``on_result(line)`` as each comparison ends."""
    out = []
    for model in models:
        replica = stream_replica(model.read_bytes(), str(model))
        for clip in clips:
            rates = [5.0]
            if len(media.read_frames(clip)) <= every_frame_max:
                rates.append(None)
            for fps in rates:
                out.append(compare(model, clip, fps, replica))
                on_result(out[-1].line())
    return out
