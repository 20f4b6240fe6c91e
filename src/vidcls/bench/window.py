"""The decayed window (one invoke per frame) against the two-stream window (two invokes) and
against no window, on the shared clips at the model's 5 fps.

    vidcls bench --window-modes [--model a0]
    python -m vidcls.bench.window [--window 4] [--extra-decay 4:0.5] [--model PATH]

Prints five tables:
- following content: clip A looped to --a-seconds, then clip B looped to --b-seconds; seconds
  after the cut until top-1 first leaves A's label, leaves it for good, B's label first
  overtakes A's, and A's label stays under 0.1. Labels are each mode's own: its commonest top-1
  over the second before the cut (A) and over the last second (B).
- agreement, after the first window: top-1 equal to a reference window (a fresh stream over
  exactly the last W frames, every --every frames), for each mode; and decay against two on
  every frame (top-1 equal, mean total-variation distance of the probabilities).
- whole short clips: top-1 at the end of each clip for each mode, and whether the decayed
  window's logits equal the plain stream's bit for bit before its first decay.
- what is left of A: pool-sum channels still non-zero after A then B that B alone never lights.
- cost: ms per frame of each mode, measured in the same run, modes alternating by rounds.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from .. import media, zoo
from ..classifier import softmax
from ..labels import resolve_labels
from ..layout import pool_pairs
from ..model import StreamModel
from ..preprocess import Preprocessor
from ..window import KEEP, DecayedStream, WindowedStreams
from .clips import shared_folder

FPS = 5.0
CARVING_A, CARVING_B = "carving_ice_android.mp4", "carving_ice_rpi.mp4"
EXAMPLE, EYE = "example_video01.mp4", "eye_makeup.avi"
PAIRS = [  # (A, B): every ordered pair of different actions
    (CARVING_A, EXAMPLE),
    (CARVING_A, EYE),
    (EXAMPLE, CARVING_B),
    (EXAMPLE, EYE),
    (EYE, CARVING_B),
    (EYE, EXAMPLE),
]


def clip_images(model: StreamModel, name: str) -> list[np.ndarray]:
    pre = Preprocessor(model.layout.height, model.layout.width)
    return [pre.from_array(f).copy() for f in media.read_frames(shared_folder() / name, FPS)]


def looped(images: list[np.ndarray], seconds: float) -> list[np.ndarray]:
    n = round(seconds * FPS)
    return [images[i % len(images)] for i in range(n)]


def probabilities(stream, images: list[np.ndarray]) -> np.ndarray:
    """Softmax per frame, ``[frames, classes]``, from a fresh ``stream``."""
    stream.reset()
    out = np.empty((len(images), stream.logits.size), np.float32)
    for i, image in enumerate(images):
        softmax(stream.step(image), out=out[i])
    return out


def first(mask: np.ndarray) -> float | None:
    hits = np.flatnonzero(mask)
    return None if hits.size == 0 else hits[0] / FPS


def for_good(mask: np.ndarray) -> float | None:
    """Seconds until ``mask`` holds on every later frame."""
    if not mask[-1]:
        return None
    misses = np.flatnonzero(~mask)
    return 0.0 if misses.size == 0 else (misses[-1] + 1) / FPS


def most_common(top: np.ndarray) -> int:
    return int(np.bincount(top).argmax())


def switch_times(p: np.ndarray, cut: int) -> tuple:
    """Seconds after ``cut`` until: top-1 leaves A's label (first time, for good), B's label
    overtakes A's, and A's label stays under 0.1. A's label: the mode's commonest top-1 over
    the second before the cut; B's: over the last second."""
    top = p.argmax(1)
    a = most_common(top[cut - round(FPS) : cut])
    b = most_common(top[-round(FPS) :])
    after, top = p[cut:], top[cut:]
    return (
        a,
        b,
        first(top != a),
        for_good(top != a),
        first(after[:, b] > after[:, a]) if a != b else None,
        for_good(after[:, a] < 0.1),
    )


def sec(t: float | None) -> str:
    return "-" if t is None else f"{t:.1f}"


COLUMNS = ("left A", "A gone", "B > A", "P(A) < .1")


def following(modes: dict, clips: dict, labels: list[str], args) -> None:
    print(
        f"\n## following content: A looped to {args.a_seconds:g} s, then B looped to "
        f"{args.b_seconds:g} s; seconds after the cut until top-1 first leaves A's label, "
        "leaves it for good, B's label first overtakes A's, A's stays under 0.1 "
        "('-': not within B's part)"
    )
    print(
        f"{'A -> B':36s} {'mode':10s} {'labels (A -> B, by this mode)':44s} "
        + " ".join(f"{c:>10s}" for c in COLUMNS)
    )
    totals: dict[str, list] = {m: [] for m in modes}
    cut = round(args.a_seconds * FPS)
    for an, bn in PAIRS:
        seq = looped(clips[an], args.a_seconds) + looped(clips[bn], args.b_seconds)
        pair = f"{an[:-4]} -> {bn[:-4]}"
        for m, stream in modes.items():
            a, b, *times = switch_times(probabilities(stream, seq), cut)
            totals[m].append(times)
            named = f"{labels[a]} -> {labels[b]}"
            print(
                f"{pair:36s} {m:10s} {named[:44]:44s} " + " ".join(f"{sec(t):>10s}" for t in times)
            )
            pair = ""
    print(f"mean over pairs ('-' counted as {args.b_seconds:g} s; (n-): how many)")
    for m, rows in totals.items():
        cols = []
        for k in range(len(COLUMNS)):
            vals = [r[k] if r[k] is not None else args.b_seconds for r in rows]
            never = sum(r[k] is None for r in rows)
            cols.append(f"{np.mean(vals):.2f}" + (f"({never}-)" if never else ""))
        print(f"{'':36s} {m:10s} {'':44s} " + " ".join(f"{c:>10s}" for c in cols))


def sliding(model: StreamModel, images: list[np.ndarray], w: int, at: range) -> np.ndarray:
    """The reference window: a fresh stream over exactly the ``w`` frames up to each of ``at``."""
    stream = model.new_stream()
    out = np.empty((len(at), model.layout.num_classes), np.float32)
    for k, t in enumerate(at):
        stream.reset()
        for image in images[max(0, t - w + 1) : t + 1]:
            logits = stream.step(image)
        softmax(logits, out=out[k])
    return out


def agreement(model: StreamModel, modes: dict, clips: dict, args) -> None:
    w = round(args.window * FPS)
    print(
        f"\n## agreement after the first window ({w} frames): top-1 equal to the reference (a "
        f"fresh stream over exactly the last {w} frames, every {args.every}th frame), and decay "
        "against two on every frame: top-1 equal, mean total-variation distance of the "
        "probabilities (half the L1 distance)"
    )
    ref_modes = [m for m in modes if m != "cumulative"] + ["cumulative"]
    print(
        f"{'sequence':44s} {'frames':>6s} "
        + " ".join(f"{m + '=ref':>13s}" for m in ref_modes)
        + f" {'decay=two':>10s} {'TV':>6s}"
    )
    seqs = [
        (f"{n[:-4]} looped {args.loop_seconds:g} s", looped(clips[n], args.loop_seconds))
        for n in sorted(clips)
    ]
    seqs += [
        (
            f"{an[:-4]} {args.a_seconds:g} s + {bn[:-4]} {args.b_seconds:g} s",
            looped(clips[an], args.a_seconds) + looped(clips[bn], args.b_seconds),
        )
        for an, bn in PAIRS
    ]
    hits: dict[str, list] = {m: [] for m in [*ref_modes, "decay=two", "TV"]}
    for name, seq in seqs:
        at = range(w, len(seq), args.every)
        ref = sliding(model, seq, w, at).argmax(1)
        probs = {m: probabilities(modes[m], seq) for m in ref_modes}
        row = []
        for m in ref_modes:
            eq = probs[m][list(at)].argmax(1) == ref
            hits[m].append(eq)
            row.append(f"{eq.mean():13.1%}")
        p2, pd = probs["two"][w:], probs["decay"][w:]
        eq, tv = p2.argmax(1) == pd.argmax(1), 0.5 * np.abs(p2 - pd).sum(1)
        hits["decay=two"].append(eq)
        hits["TV"].append(tv)
        print(
            f"{name:44s} {len(seq) - w:6d} "
            + " ".join(row)
            + f" {eq.mean():10.1%} {tv.mean():6.3f}"
        )
    total = {m: np.concatenate(v).mean() for m, v in hits.items()}
    print(
        f"{'all':44s} {'':6s} "
        + " ".join(f"{total[m]:13.1%}" for m in ref_modes)
        + f" {total['decay=two']:10.1%} {total['TV']:6.3f}"
    )


def whole_clips(model: StreamModel, modes: dict, clips: dict, labels, args) -> None:
    w = round(args.window * FPS)
    print(
        f"\n## whole short clips at 5 fps: top-1 at the end of each; and whether decay's logits "
        f"equal the plain stream's bit for bit on every frame before its first decay (frame {w})"
    )
    print(
        f"{'clip':24s} {'frames':>6s} "
        + " ".join(f"{m:>24s}" for m in modes)
        + f" {'decay == plain':>16s}"
    )
    for name, images in sorted(clips.items()):
        ends = {m: probabilities(s, images)[-1] for m, s in modes.items()}
        plain, decay = model.new_stream(), DecayedStream(model, w)
        same = all(np.array_equal(plain.step(im), decay.step(im)) for im in images[:w])
        cells = [f"{labels[p.argmax()]} {p.max():.2f}" for p in ends.values()]
        checked = f"{'yes' if same else 'NO'} ({min(w, len(images))} fr)"
        print(
            f"{name:24s} {len(images):6d} "
            + " ".join(f"{c[-24:]:>24s}" for c in cells)
            + f" {checked:>16s}"
        )


def pool_sums(stream) -> np.ndarray:
    """The running pool sums that the next step of ``stream`` (its active stream) reads, of
    the pools the model counts, flat."""
    if isinstance(stream, WindowedStreams):
        stream = stream.streams[stream.active]
    elif isinstance(stream, DecayedStream):
        stream = stream.stream
    pairs = pool_pairs(stream.layout)
    live = [total for total, count in pairs if stream.read_state(count.name)[0] > 0]
    return np.concatenate([stream.read_state(total.name).ravel() for total in live])


def residue(modes: dict, clips: dict, args) -> None:
    w = round(args.window * FPS)
    print(
        "\n## what is left of A: pool-sum channels still non-zero at the end of A then B that "
        "B alone never lights (zero on every frame after the first window), of all channels"
    )
    print(f"{'A -> B':36s} " + " ".join(f"{m:>10s}" for m in modes))
    for an, bn in PAIRS:
        b_alone = looped(clips[bn], args.b_seconds)
        seq = looped(clips[an], args.a_seconds) + b_alone
        row = []
        for stream in modes.values():
            stream.reset()
            lit = None
            for i, image in enumerate(b_alone):
                stream.step(image)
                if i >= w:
                    sums = pool_sums(stream) != 0
                    lit = sums if lit is None else lit | sums
            probabilities(stream, seq)
            left = (pool_sums(stream) != 0) & ~lit
            row.append(f"{left.sum():4d}/{left.size}")
        print(f"{an[:-4] + ' -> ' + bn[:-4]:36s} " + " ".join(f"{c:>10s}" for c in row))


def cost(modes: dict, images: list[np.ndarray], rounds: int) -> None:
    print(f"\n## cost: ms per frame, {rounds} rounds of {len(images)} frames, modes alternating")
    times: dict[str, list[float]] = {m: [] for m in modes}
    names = list(modes)
    for r in range(rounds):
        for m in names[r % len(names) :] + names[: r % len(names)]:
            stream = modes[m]
            stream.reset()
            t0 = time.perf_counter()
            for image in images:
                stream.step(image)
            times[m].append((time.perf_counter() - t0) * 1000 / len(images))
    base = np.median(times["cumulative"])
    for m, t in times.items():
        med = np.median(t)
        print(
            f"{m:12s} median {med:6.2f} ms  p10 {np.percentile(t, 10):6.2f}  "
            f"p90 {np.percentile(t, 90):6.2f}  x{med / base:4.2f} of cumulative"
        )


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m vidcls.bench.window", description=__doc__.splitlines()[0]
    )
    ap.add_argument("--model", default=zoo.DEFAULT_MODEL, help="zoo name or .tflite path [a0]")
    ap.add_argument("--window", type=float, default=4.0, help="seconds [4]")
    ap.add_argument(
        "--extra-decay",
        action="append",
        default=[],
        metavar="SECONDS[:KEEP]",
        help="also a decayed window of SECONDS keeping KEEP at each decay (repeatable)",
    )
    ap.add_argument("--a-seconds", type=float, default=24.0)
    ap.add_argument("--b-seconds", type=float, default=16.0)
    ap.add_argument("--loop-seconds", type=float, default=60.0)
    ap.add_argument("--every", type=int, default=4, help="reference window every Nth frame [4]")
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--backend", default="auto")
    return ap


def run_window_study(args: argparse.Namespace) -> None:
    """Print the five tables for ``args`` (the flags of :func:`parser`)."""
    path = zoo.resolve_model(args.model)
    model = StreamModel(path, num_threads=args.threads, backend=args.backend)
    labels = resolve_labels(None, path, model.layout.num_classes)
    w = round(args.window * FPS)
    modes: dict[str, Callable] = {
        "cumulative": model.new_stream(),
        "two": WindowedStreams(model, w),
        "decay": DecayedStream(model, w),
    }
    for spec in args.extra_decay:
        seconds, _, keep = spec.partition(":")
        keep = float(keep or KEEP)
        modes[f"d{float(seconds):g}s{keep:g}"] = DecayedStream(
            model, round(float(seconds) * FPS), keep
        )
    print(
        f"model {path.name} ({model.backend}, {args.threads} thread); window "
        f"{args.window:g} s = {w} frames at {FPS:g} fps; decay keeps {KEEP:g} of "
        f"{len(modes['decay'].pairs)} pool pairs"
    )
    clips = {n: clip_images(model, n) for n in sorted({n for pair in PAIRS for n in pair})}
    following(modes, clips, labels, args)
    agreement(model, modes, clips, args)
    whole_clips(model, modes, clips, labels, args)
    residue(modes, clips, args)
    cost(modes, looped(clips[CARVING_A], 8.0), args.rounds)


if __name__ == "__main__":
    run_window_study(parser().parse_args())
