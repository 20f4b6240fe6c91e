"""Accuracy of a model on a folder of labelled clips: top-1, top-5, per class, confusion.

Each clip is classified by :func:`vidcls.pipeline.classify_video`, exactly as ``vidcls
classify`` does; its prediction is the result's summary (the categories after the last frame).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..classifier import VideoClassifier
from ..errors import VidclsError
from ..pipeline import classify_video, load_classifier
from ..plot import save_figure
from ..results import Category, VideoResult
from .dataset import Clip, labelled_clips, split_folders
from .options import check_fps
from .progress import Progress, count
from .seen import trained_on

log = logging.getLogger("vidcls")
OTHER = "(other)"
TOP = 5  # categories kept per clip
ASSUMED_FRACTION = 0.3  # --split val for a model that records nothing: train's old default


@dataclass
class Prediction:
    """One clip: its true label and the model's leading categories after its last frame."""

    path: str
    label: str
    top: list[Category]
    seen: bool | None = None  # whether the model was fitted on this clip (None: not recorded)

    @property
    def predicted(self) -> str:
        """The leading category's label."""
        return self.top[0].label

    @property
    def top5(self) -> list[str]:
        """The labels of the five leading categories."""
        return [c.label for c in self.top[:TOP]]

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "label": self.label,
            "predicted": self.predicted,
            "top5": self.top5,
            "top": [c.to_dict() for c in self.top[:TOP]],
            "seen_in_training": self.seen,
        }


@dataclass
class Evaluation:
    """Predictions per clip and the metrics over them."""

    model: str
    classes: list[str]  # the dataset's classes (folder names), all among the model's labels
    clips: list[Prediction] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    labels: int = 0  # how many labels the model has (0: not known)
    left_out: int = 0  # clips left out because the model was fitted on them (split "val")

    @property
    def top1(self) -> float:
        return float(np.mean([c.predicted == c.label for c in self.clips]))

    @property
    def top5(self) -> float | None:
        """Top-5 accuracy; None for a model of at most five labels, where it is 1 by
        construction."""
        if 0 < self.labels <= TOP:
            return None
        return float(np.mean([c.label in c.top5 for c in self.clips]))

    @property
    def seen(self) -> int | None:
        """How many of the clips the model was fitted on; None when it records nothing."""
        if not self.clips or any(c.seen is None for c in self.clips):
            return None
        return sum(bool(c.seen) for c in self.clips)

    def confusion(self) -> tuple[list[str], np.ndarray]:
        """``m[true, predicted]`` over the dataset's classes, plus a column for any other label."""
        others = any(c.predicted not in self.classes for c in self.clips)
        cols = [*self.classes, OTHER] if others else list(self.classes)
        m = np.zeros((len(self.classes), len(cols)), int)
        for c in self.clips:
            p = c.predicted if c.predicted in self.classes else OTHER
            m[self.classes.index(c.label), cols.index(p)] += 1
        return cols, m

    def per_class(self) -> dict[str, dict[str, float]]:
        """Precision, recall and clip count of each class."""
        cols, m = self.confusion()
        out = {}
        for i, name in enumerate(self.classes):
            tp, support, predicted = m[i, i], m[i].sum(), m[:, i].sum()
            out[name] = {
                "precision": float(tp / predicted) if predicted else 0.0,
                "recall": float(tp / support) if support else 0.0,
                "support": int(support),
            }
        return out

    def to_dict(self) -> dict:
        cols, m = self.confusion()
        return {
            "model": self.model,
            "clips": len(self.clips),
            "top1": round(self.top1, 4),
            "top5": None if self.top5 is None else round(self.top5, 4),
            "per_class": self.per_class(),
            "confusion": {"labels": cols, "matrix": m.tolist()},
            "seen_in_training": self.seen,
            "seen_left_out": self.left_out,
            "skipped": self.skipped,
            "predictions": [c.to_dict() for c in self.clips],
        }

    def table(self) -> str:
        """The metrics and the confusion matrix, for people."""
        cols, m = self.confusion()
        w = max(len(c) for c in [*cols, "precision"]) + 2
        top5 = "" if self.top5 is None else f", top-5 {self.top5:.1%}"
        lines = [
            f"{self.model}: {count(len(self.clips), 'clip')}, top-1 {self.top1:.1%}{top5}"
            + self._seen(),
            "",
            f"{'class':<{w}}{'precision':>10}{'recall':>10}{'clips':>8}",
        ]
        for name, s in self.per_class().items():
            prec, rec = s["precision"], s["recall"]
            lines.append(f"{name:<{w}}{prec:>10.1%}{rec:>10.1%}{s['support']:>8}")
        lines += ["", "confusion (rows: true, columns: predicted)"]
        lines.append(" " * w + "".join(f"{c[:9]:>10}" for c in cols))
        for name, row in zip(self.classes, m, strict=True):
            lines.append(f"{name:<{w}}" + "".join(f"{v:>10}" for v in row))
        return "\n".join(lines) + "\n"

    def _seen(self) -> str:
        """What the model saw of the clips, for the table's first line."""
        if self.seen is None:
            return ""
        if self.left_out:
            return f" (held out: {count(self.left_out, 'clip')} seen in training left out)"
        return f" ({self.seen} of them seen in training)"


def classify_clip(
    classifier: VideoClassifier, clip: Clip, fps: float | None = None
) -> tuple[Prediction, VideoResult]:
    """Classify one clip as ``vidcls classify`` does (``fps``: None, the model's rate; 0,
    every frame); its prediction is the summary's leading categories."""
    result = classify_video(clip.path, classifier=classifier, fps=fps)
    return Prediction(str(clip.path), clip.label, result.summary[:TOP]), result


def evaluate(
    data_dir: str | os.PathLike,
    model: str | os.PathLike,
    *,
    labels: str | os.PathLike | None = None,
    fps: float | None = None,
    split: str = "all",
    val_fraction: float | None = None,
    threads: int = 2,
    progress: bool | None = None,
) -> Evaluation:
    """Classify every clip (``split="val"``: only the clips the model was not fitted on).

    A model vidcls trained records its training clips by content (:mod:`.seen`): ``"val"``
    leaves those out, wherever the clips are now, and is a VidclsError when it was fitted on
    every one; each prediction says whether the model saw its clip. For a model that records
    nothing, ``"val"`` is the part ``train`` holds out: ``val/`` with ``train/`` and ``val/``
    folders, else the last ``val_fraction`` of each class (None: 0.3, train's old default,
    said in a warning).

    Class folders are named after the model's labels. Clips are fed as ``vidcls classify``
    feeds them: at the model's own rate (5 fps for MoViNet, a trained model's rate) unless
    ``fps`` says otherwise (0: every decoded frame). ``progress``: a bar on stderr (None: when
    stderr is a terminal); without it, the start and end are logged on ``vidcls.progress``.
    """
    if fps is not None:
        check_fps(fps)
    clf = load_classifier(model, labels=labels, top_k=TOP, threads=threads)
    result = Evaluation(str(model), [], labels=len(clf.labels))
    names, clips, seen = pick_clips(data_dir, model, split, val_fraction, result)
    unknown = [c for c in names if c not in clf.labels]
    if unknown:
        raise VidclsError(
            f"class folders that are not labels of the model: {', '.join(unknown)}", data_dir
        )
    result.classes = names
    detail = f"{count(len(clips), 'clip')} of {count(len(names), 'class', 'classes')}"
    with Progress(progress).phase("evaluating", detail, "evaluated", len(clips), "clip") as phase:
        for clip in clips:
            try:
                prediction = classify_clip(clf, clip, fps)[0]
                prediction.seen = seen.get(clip.path)
                result.clips.append(prediction)
            except VidclsError as e:
                result.skipped.append(str(e))
                log.warning("skipping %s", e)
            phase.advance()
        if result.clips:
            phase.note = f"top-1 {result.top1:.1%}"
    if not result.clips:
        raise VidclsError("no readable clips to evaluate", data_dir)
    return result


def pick_clips(
    data_dir: str | os.PathLike,
    model: str | os.PathLike,
    split: str,
    val_fraction: float | None,
    result: Evaluation,
) -> tuple[list[str], list[Clip], dict[Path, bool]]:
    """The classes, the clips to evaluate (see :func:`evaluate`) and, when the model records
    its training clips, whether it saw each; sets ``result.left_out`` and adds what scanning
    skipped to ``result.skipped``."""
    record = trained_on(model)
    if record is None:
        if split == "val" and val_fraction is None and not split_folders(data_dir):
            log.warning(
                "note: %s does not record the clips it was trained on: --split val assumed "
                "the last %g %% of each class was held out (--val-fraction %g; pass the one "
                "it was trained with)",
                model,
                ASSUMED_FRACTION * 100,
                ASSUMED_FRACTION,
            )
        fraction = ASSUMED_FRACTION if val_fraction is None else val_fraction
        names, clips = labelled_clips(data_dir, split, fraction, result.skipped)
        return names, clips, {}
    names, clips = labelled_clips(data_dir, "all", skipped=result.skipped)
    seen = {c.path: record.saw(c.path) for c in clips}
    if split != "val":
        return names, clips, seen
    if val_fraction is not None:
        log.warning("note: --val-fraction ignored: %s records the clips it was trained on", model)
    held_out = [c for c in clips if not seen[c.path]]
    result.left_out = len(clips) - len(held_out)
    if not held_out:
        raise VidclsError(
            f"{Path(model).name} was trained on all {count(len(clips), 'clip')} here: none is "
            "held out for --split val (evaluate other clips, or train with --val-fraction 0.3)",
            data_dir,
        )
    if not result.left_out:
        log.warning("note: %s was trained on none of these clips: all are held out", model)
    return names, held_out, seen


def plot_confusion(evaluation: Evaluation, out: str | os.PathLike, title: str = "") -> Path:
    """The confusion matrix as a PNG (needs matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise VidclsError("plots need matplotlib: pip install 'vidcls[plot]'") from None
    cols, m = evaluation.confusion()
    size = 1.2 + 0.7 * len(cols)
    fig, ax = plt.subplots(figsize=(size + 1.5, size), dpi=120, layout="constrained")
    ax.imshow(m, cmap="Blues")
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            color = "white" if m[i, j] > m.max() / 2 else "black"
            ax.text(j, i, str(m[i, j]), ha="center", va="center", color=color, fontsize=9)
    ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right")
    ax.set_yticks(range(len(evaluation.classes)), evaluation.classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(
        title or f"top-1 {evaluation.top1:.1%} on {len(evaluation.clips)} clips", fontsize=10
    )
    return save_figure(fig, out)
