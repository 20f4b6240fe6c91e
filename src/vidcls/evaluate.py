"""Accuracy of a model on a folder of labelled clips: top-1, top-5, per class, confusion."""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .classifier import ClassifierOptions, VideoClassifier
from .dataset import Clip, load_dataset, scan_classes
from .errors import VidclsError
from .features import View, apply_view, read_clip
from .plot import save_figure

log = logging.getLogger("vidcls")
OTHER = "(other)"


@dataclass
class Evaluation:
    """Predictions per clip and the metrics over them."""

    model: str
    classes: list[str]  # the dataset's classes (folder names), all among the model's labels
    clips: list[dict] = field(default_factory=list)  # path, label, predicted, top5
    skipped: list[str] = field(default_factory=list)

    @property
    def top1(self) -> float:
        return float(np.mean([c["predicted"] == c["label"] for c in self.clips]))

    @property
    def top5(self) -> float:
        return float(np.mean([c["label"] in c["top5"] for c in self.clips]))

    def confusion(self) -> tuple[list[str], np.ndarray]:
        """``m[true, predicted]`` over the dataset's classes, plus a column for any other label."""
        cols = [*self.classes, OTHER] if self._others() else list(self.classes)
        m = np.zeros((len(self.classes), len(cols)), int)
        for c in self.clips:
            p = c["predicted"] if c["predicted"] in self.classes else OTHER
            m[self.classes.index(c["label"]), cols.index(p)] += 1
        return cols, m

    def per_class(self) -> dict[str, dict[str, float]]:
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

    def _others(self) -> bool:
        return any(c["predicted"] not in self.classes for c in self.clips)

    def to_dict(self) -> dict:
        cols, m = self.confusion()
        return {
            "model": self.model,
            "clips": len(self.clips),
            "top1": round(self.top1, 4),
            "top5": round(self.top5, 4),
            "per_class": self.per_class(),
            "confusion": {"labels": cols, "matrix": m.tolist()},
            "skipped": self.skipped,
            "predictions": self.clips,
        }

    def table(self) -> str:
        cols, m = self.confusion()
        w = max(len(c) for c in [*cols, "precision"]) + 2
        lines = [
            f"{self.model}: {len(self.clips)} clips, top-1 {self.top1:.1%}, top-5 {self.top5:.1%}",
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


def evaluate(
    data_dir: str | os.PathLike,
    model: str | os.PathLike,
    *,
    labels: str | os.PathLike | None = None,
    fps: float | str | None = None,
    split: str = "all",
    val_fraction: float = 0.3,
    num_threads: int = 2,
    progress: bool | None = None,
) -> Evaluation:
    """Classify every clip (``split="val"``: only the held-out part, as ``train`` splits it).

    Clips are fed as training fed them: every frame for a model vidcls trained (or the rate
    it was trained at), 5 fps for MoViNet, unless ``fps`` says otherwise; clips under 4
    frames are looped to 4.
    """
    from tqdm import tqdm

    from .classify import parse_fps

    clf = VideoClassifier.create_from_options(
        ClassifierOptions(model=model, labels=labels, max_results=5, num_threads=num_threads)
    )
    rate = clf.fps if fps is None else parse_fps(fps)
    if split not in ("all", "val"):
        raise VidclsError(f"split must be 'all' or 'val', not {split!r}")
    root = Path(data_dir)
    explicit = (root / "train").is_dir() and (root / "val").is_dir()
    if explicit:  # the split is the folders: val, or train and val together
        found: dict[str, list[Path]] = {}
        for part in ["val"] if split == "val" else ["train", "val"]:
            for c, paths in scan_classes(root / part).items():
                found.setdefault(c, []).extend(paths)
    else:
        found = scan_classes(root)
    if not found:
        raise VidclsError("no class folders with clips", data_dir)
    unknown = [c for c in found if c not in clf.labels]
    if unknown:
        raise VidclsError(
            f"class folders that are not labels of the model: {', '.join(unknown)}", data_dir
        )
    names = sorted(found)
    if split == "val" and not explicit:
        clips = load_dataset(root, val_fraction, classes=names).val
    else:
        clips = [Clip(p, c, names.index(c)) for c in names for p in found[c]]
    result = Evaluation(str(model), sorted(found))
    show = sys.stderr.isatty() if progress is None else progress
    for clip in tqdm(clips, desc="evaluate", unit="clip", disable=not show, file=sys.stderr):
        try:
            frames = read_clip(clip.path, rate)
        except VidclsError as e:
            result.skipped.append(str(e))
            log.warning("skipping %s", e)
            continue
        clf.reset()
        for f in apply_view(frames, View()):  # loops clips shorter than 4 frames, as training
            clf.classify(f)
        top = clf.top()
        result.clips.append(
            {
                "path": str(clip.path),
                "label": clip.label,
                "predicted": top[0].label,
                "top5": [c.label for c in top[:5]],
            }
        )
    if not result.clips:
        raise VidclsError("no readable clips to evaluate", data_dir)
    return result


def plot_confusion(evaluation: Evaluation, out: str | os.PathLike, title: str = "") -> Path:
    """The confusion matrix as a PNG (needs matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise VidclsError("plots need matplotlib: pip install 'vidcls[plot]'") from None
    cols, m = evaluation.confusion()
    out = Path(out)
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


def write_json(evaluation: Evaluation, out: str | os.PathLike) -> None:
    from .output import write_atomic

    write_atomic(out, json.dumps(evaluation.to_dict(), indent=2) + "\n")
