"""``python -m vidcls.training.tune``: fine-tune the last K blocks and measure the written file;
``python -m vidcls.training.tune parity``: the replica against LiteRT on the shared clips.

    python -m vidcls.training.tune ../shared/datasets/basketball --k 1 2
    python -m vidcls.training.tune parity [--every-frame-max 140]

Fine-tuning prints per K: chosen epochs, cross-validation accuracy by epoch (0: the classifier
alone), validation top-1 of the written file in LiteRT, its max |logit| difference to the int8
replica, times, and where the file was saved. Parity prints per model, clip and rate: frames,
max |logit difference|, per-frame top-1 agreement, top-5 sets equal, and top-5 overlap.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

from ... import zoo
from ...errors import VidclsError
from ..dataset import load_dataset
from ..progress import Progress, count
from .finetune import fine_tune, phase_steps, run_written
from .parity import run_parity, shared_assets
from .tuner import Settings

PROG = "python -m vidcls.training.tune"


def tune_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        PROG,
        description="Fine-tune the last K blocks and the head of a stream model (JAX) and "
        f"measure the written int8 file in LiteRT. '{PROG} parity -h': the replica vs LiteRT.",
    )
    ap.add_argument("dataset", type=Path, help="a folder of class folders of clips")
    ap.add_argument("--k", type=int, nargs="+", default=[1, 2], help="blocks to tune [1 2]")
    ap.add_argument("--views", type=int, default=4, help="views per training clip [4]")
    ap.add_argument("--epochs", type=int, default=12, help="epochs at most [12]")
    ap.add_argument("--lr", type=float, default=3e-4, help="Adam step size [3e-4]")
    ap.add_argument("--base", default=zoo.DEFAULT_MODEL, help="zoo name or .tflite [a0]")
    ap.add_argument(
        "--save", type=Path, default=Path(tempfile.gettempdir()), help="folder for the files"
    )
    return ap


def parity_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        f"{PROG} parity", description="The JAX replica vs LiteRT, frame by frame."
    )
    assets = shared_assets()
    ap.add_argument(
        "--every-frame-max", type=int, default=140, help="every frame too when shorter [140]"
    )
    ap.add_argument(
        "--models",
        type=Path,
        nargs="+",
        default=[
            assets / "models" / "movinet_a0_stream_int8.tflite",
            assets / "models" / "custom_7class" / "a0_stream_int8_7class.tflite",
        ],
        help="the .tflite files [the shared A0 and 7-class models]",
    )
    ap.add_argument("--clips", type=Path, nargs="+", help="clips [the shared clips]")
    return ap


def tune(args: argparse.Namespace) -> None:
    """Fine-tune for each K, then run the written file on the validation clips."""
    ds = load_dataset(args.dataset, 0.3)
    base = zoo.resolve_model(args.base)
    progress = Progress()
    for k in args.k:
        t0 = time.monotonic()
        st = Settings(epochs=args.epochs, lr=args.lr)
        total = phase_steps(ds, args.views, st)
        detail = f"{count(len(ds.train), 'clip')} x {count(args.views, 'view')}, "
        detail += f"{count(st.epochs, 'epoch')} at most"
        with progress.phase(f"blocks {k}", detail, "tuned", total) as phase:
            data, figs = fine_tune(base, ds, k, views=args.views, phase=phase, settings=st)
        train_s = time.monotonic() - t0
        detail = f"the written file on {count(len(ds.val), 'validation clip')}"
        with progress.phase("checking", detail, "checked", len(ds.val), "clip") as phase:
            logits, diff = run_written(data, ds.val, None, str(base), 3, phase)
        acc = float((logits.argmax(1) == [c.index for c in ds.val]).mean()) if ds.val else 0.0
        keep = args.save / f"vidcls_blocks{k}.tflite"
        keep.write_bytes(data)
        cv = " ".join(f"{a:.3f}" for a in figs.cv_by_epoch)
        print(
            f"K={k}: epochs {figs.epochs} (l2 {figs.l2:g}); CV by epoch [{cv}]; "
            f"val top-1 (LiteRT, written file) {acc:.1%}; file vs replica max|diff| {diff:.3f}; "
            f"train {train_s:.0f} s { ({n: round(v) for n, v in figs.seconds.items()}) }; "
            f"saved {keep}",
            flush=True,
        )


def parity(args: argparse.Namespace) -> None:
    """The replica vs LiteRT, one line per model, clip and rate as each ends."""
    clips = args.clips or sorted((shared_assets() / "videos").iterdir())
    run_parity(args.models, clips, args.every_frame_max, lambda line: print(line, flush=True))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.WARNING, format="vidcls: %(message)s")
    logging.getLogger("vidcls").setLevel(logging.INFO)  # phases and the fits' choices
    try:
        if argv[:1] == ["parity"]:
            parity(parity_parser().parse_args(argv[1:]))
        else:
            tune(tune_parser().parse_args(argv))
    except VidclsError as e:
        print(f"vidcls: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vidcls: error: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
