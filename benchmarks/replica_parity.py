"""Replica vs LiteRT: logits of the JAX replica and of vidcls.model.StreamModel on the same
preprocessed frames of the shared clips, frame by frame from zero states.

    PYTHONPATH=src python benchmarks/replica_parity.py [--every-frame-max 140]

Prints per clip and rate: frames, max |logit difference|, per-frame top-1 agreement, top-5
sets equal, and top-5 overlap (shared classes / 5).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from vidcls import media
from vidcls.model import StreamModel
from vidcls.preprocess import Preprocessor
from vidcls.training.replica import Graph, StreamReplica

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "assets"


def compare(model: Path, clip: Path, fps: float | None, replica: StreamReplica) -> str:
    stream = StreamModel(model, 1).new_stream()
    lay = stream.layout
    pre = Preprocessor(lay.height, lay.width)
    images = [pre.from_array(f).copy() for f in media.read_frames(clip, fps)]
    lite = np.array([stream.step(im).copy() for im in images])
    t0 = time.perf_counter()
    rep = replica.run(images)
    dt = (time.perf_counter() - t0) / len(images)
    diff = np.abs(lite - rep).max()
    top1 = (lite.argmax(1) == rep.argmax(1)).mean()
    k = min(5, lite.shape[1])
    pairs = [
        (set(np.argsort(-a)[:k]), set(np.argsort(-b)[:k])) for a, b in zip(lite, rep, strict=True)
    ]
    top5 = np.mean([a == b for a, b in pairs])
    overlap = np.mean([len(a & b) / k for a, b in pairs])
    spread = np.abs(lite).max()
    return (
        f"{model.name:34s} {clip.name:24s} {('every' if fps is None else f'{fps:g} fps'):>8s} "
        f"{len(images):4d} frames  max|diff| {diff:6.3f} (|logits| up to {spread:5.1f})  "
        f"top-1 {top1:6.1%}  top-5 set {top5:6.1%} overlap {overlap:6.1%}  "
        f"replica {dt * 1000:5.0f} ms/frame"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--every-frame-max", type=int, default=140, help="every frame when shorter")
    args = ap.parse_args()
    models = [
        SHARED / "models" / "movinet_a0_stream_int8.tflite",
        SHARED / "models" / "custom_7class" / "a0_stream_int8_7class.tflite",
    ]
    clips = sorted((SHARED / "videos").iterdir())
    for model in models:
        replica = StreamReplica(Graph(model.read_bytes(), str(model)))
        for clip in clips:
            print(compare(model, clip, 5.0, replica), flush=True)
            if len(media.read_frames(clip)) <= args.every_frame_max:
                print(compare(model, clip, None, replica), flush=True)


if __name__ == "__main__":
    main()
