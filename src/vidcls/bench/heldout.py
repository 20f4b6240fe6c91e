"""``vidcls bench --heldout DIR``: what ``vidcls train`` gives on clips it never saw.

Each class's clips (in natural order, since neighbours come from the same footage) are cut into
``folds`` contiguous blocks. For each block, a model is trained as ``vidcls train`` trains it
(with the options given) on the other blocks, and classifies the block's clips
as ``vidcls evaluate`` does: so every clip is unseen exactly once, and the figure is the
accuracy a user would see on new clips of the same kind. The trainings share the feature
cache, so variants of the options cost only the features they change. With ``flip``, each
unseen clip is also classified mirrored, and the two predictions averaged (test-time
augmentation: twice the model runs).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import VidclsError
from ..media import read_clip
from ..pipeline import load_classifier
from ..training.dataset import scan_classes
from ..training.options import TrainOptions


@dataclass
class Fold:
    """One block held out: its clips' true and predicted classes, the training's
    cross-validated estimate, and seconds spent training and classifying."""

    true: list[int] = field(default_factory=list)
    plain: list[int] = field(default_factory=list)
    flipped: list[int] = field(default_factory=list)  # predictions averaged with the mirror
    cv_accuracy: float | None = None
    train_seconds: float = 0.0
    classify_seconds: float = 0.0
    flip_seconds: float = 0.0


@dataclass
class HeldOut:
    """The folds of one run and the totals over every clip."""

    classes: list[str]
    folds: list[Fold]

    def accuracy(self, which: str = "plain") -> float:
        true = [t for f in self.folds for t in f.true]
        got = [p for f in self.folds for p in getattr(f, which)]
        return float(np.mean(np.equal(true, got))) if got else float("nan")

    def table(self) -> str:
        """One line per fold and the total, for people."""
        flip = bool(self.folds and self.folds[0].flipped)
        head = f"{'fold':<6}{'clips':>6}{'unseen top-1':>14}{'cv estimate':>13}"
        head += f"{'with flip':>11}" if flip else ""
        lines = [head + f"{'train s':>9}"]
        for n, f in enumerate(self.folds, 1):
            acc = float(np.mean(np.equal(f.true, f.plain)))
            cv = "" if f.cv_accuracy is None else f"{f.cv_accuracy:.1%}"
            row = f"{n:<6}{len(f.true):>6}{acc:>14.1%}{cv:>13}"
            row += f"{np.mean(np.equal(f.true, f.flipped)):>11.1%}" if flip else ""
            lines.append(row + f"{f.train_seconds:>9.1f}")
        total = f"{'all':<6}{sum(len(f.true) for f in self.folds):>6}{self.accuracy():>14.1%}"
        total += f"{'':>13}" + (f"{self.accuracy('flipped'):>11.1%}" if flip else "")
        lines.append(total)
        if flip:
            plain = sum(f.classify_seconds for f in self.folds)
            mirrored = sum(f.flip_seconds for f in self.folds)
            lines.append(f"flip costs {mirrored / plain:.2f}x the plain classification's time")
        return "\n".join(lines) + "\n"


def blocks(paths: list[Path], folds: int) -> list[list[Path]]:
    """``paths`` cut into ``folds`` contiguous blocks, sizes differing by at most one."""
    n = len(paths)
    return [paths[n * f // folds : n * (f + 1) // folds] for f in range(folds)]


def heldout(
    data_dir: str | os.PathLike,
    options: TrainOptions | None = None,
    folds: int = 3,
    flip: bool = False,
) -> HeldOut:
    """Train ``folds`` times, each time without one contiguous block of every class, and
    classify that block with the model trained (see the module's description)."""
    if folds < 2:
        raise VidclsError(f"need at least 2 folds, not {folds}")
    from ..training import train

    found = scan_classes(data_dir)
    classes = sorted(found)
    small = [c for c in classes if len(found[c]) < folds]
    if small:
        raise VidclsError(f"classes with fewer clips than folds: {', '.join(small)}", data_dir)
    options = options or TrainOptions()
    cut = {c: blocks(found[c], folds) for c in classes}
    result = HeldOut(classes, [])
    for f in range(folds):
        fold = Fold()
        with tempfile.TemporaryDirectory(prefix="vidcls-heldout-") as tmp:
            root = Path(tmp) / "data"
            for c in classes:
                (root / c).mkdir(parents=True)
                for b, block in enumerate(cut[c]):
                    for p in block if b != f else []:
                        (root / c / p.name).symlink_to(p.resolve())
            t0 = time.monotonic()
            trained = train(root, Path(tmp) / "model.tflite", options, progress=False)
            fold.train_seconds, fold.cv_accuracy = time.monotonic() - t0, trained.cv_accuracy
            unseen = [(p, classes.index(c)) for c in classes for p in cut[c][f]]
            _classify(trained.model_path, unseen, flip, fold)
        result.folds.append(fold)
        acc = np.mean(np.equal(fold.true, fold.plain))
        print(f"fold {f + 1}/{folds}: {len(fold.true)} unseen, top-1 {acc:.1%}", file=sys.stderr)
    return result


def _classify(model: Path, unseen: list[tuple[Path, int]], flip: bool, fold: Fold) -> None:
    """Each unseen clip classified from a zero state at the model's rate, as ``evaluate``
    classifies it (and mirrored, with ``flip``)."""
    clf = load_classifier(model, top_k=0)
    for path, label in unseen:
        frames, _ = read_clip(path, clf.fps)
        t0 = time.monotonic()
        plain = _final(clf, frames)
        t1 = time.monotonic()
        fold.true.append(label)
        fold.plain.append(int(plain.argmax()))
        fold.classify_seconds += t1 - t0
        if flip:
            mirrored = _final(clf, [np.ascontiguousarray(f[:, ::-1]) for f in frames])
            fold.flip_seconds += time.monotonic() - t1
            fold.flipped.append(int((plain + mirrored).argmax()))


def _final(clf, frames: list[np.ndarray]) -> np.ndarray:
    """The probabilities after the last of ``frames``, from a zero state."""
    clf.reset()
    for frame in frames:
        clf.classify(frame)
    return clf.probabilities.copy()
