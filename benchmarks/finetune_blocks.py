"""Fine-tune the last K blocks on a dataset and measure the exported int8 file in LiteRT.

    PYTHONPATH=src python benchmarks/finetune_blocks.py ../shared/datasets/basketball --k 1 2

Prints per K: chosen epochs, cross-validation accuracy by epoch (0: head only), validation
top-1 of the written file in LiteRT, its max |logit| difference to the int8 replica, times.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from vidcls import media
from vidcls.model import StreamModel
from vidcls.preprocess import Preprocessor
from vidcls.training.dataset import load_dataset
from vidcls.training.finetune import Settings, fine_tune, steps
from vidcls.training.progress import Progress
from vidcls.training.replica import Graph, StreamReplica

BASE = (
    Path(__file__).resolve().parents[1].parent
    / "shared/assets/models/movinet_a0_stream_int8.tflite"
)


def evaluate(path: Path, clips, fps, replica_clips: int = 3) -> tuple[float, float]:
    """LiteRT validation top-1 of ``path``, and max |logit diff| to its replica on a few clips."""
    model = StreamModel(path, 1)
    stream, pre = model.new_stream(), Preprocessor(model.layout.height, model.layout.width)
    replica = StreamReplica(Graph(path.read_bytes(), str(path)))
    right, diff = 0, 0.0
    for i, clip in enumerate(clips):
        images = [pre.from_array(f).copy() for f in media.read_frames(clip.path, fps)]
        stream.reset()
        lite = np.array([stream.step(im).copy() for im in images])
        right += int(lite[-1].argmax() == clip.index)
        if i < replica_clips:
            diff = max(diff, float(np.abs(replica.run(images) - lite).max()))
    return right / len(clips), diff


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset", type=Path)
    ap.add_argument("--k", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--views", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--base", type=Path, default=BASE)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ds = load_dataset(args.dataset, 0.3)
    for k in args.k:
        t0 = time.monotonic()
        st = Settings(epochs=args.epochs, lr=args.lr)
        total = steps(ds, args.views, st)
        with Progress(bars=True).phase(f"blocks {k}", "", "done", total) as phase:
            data, figs = fine_tune(args.base, ds, k, views=args.views, phase=phase, settings=st)
        train_s = time.monotonic() - t0
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / f"blocks{k}.tflite"
            out.write_bytes(data)
            acc, diff = evaluate(out, ds.val, None)
            keep = Path(f"/tmp/vidcls_blocks{k}.tflite")
            keep.write_bytes(data)
        cv = " ".join(f"{a:.3f}" for a in figs.cv_by_epoch)
        print(
            f"K={k}: epochs {figs.epochs} (l2 {figs.l2:g}); CV by epoch [{cv}]; "
            f"val top-1 (LiteRT, written file) {acc:.1%}; file vs replica max|diff| {diff:.3f}; "
            f"train {train_s:.0f} s { ({n: round(v) for n, v in figs.seconds.items()}) }; "
            f"saved {keep}",
            flush=True,
        )


if __name__ == "__main__":
    main()
