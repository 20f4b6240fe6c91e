"""Transfer learning: a new head on a frozen stream model, exported as an int8 .tflite.

The backbone stays as it is; the clips' head features (pooled and hidden, after the last
frame) are extracted for each clip and for augmented views of it. A new classifier (softmax
regression, L2 chosen by contiguous cross-validation on the training clips) is fitted with
numpy, and with ``method="head"`` both head convs are then trained from it (:mod:`.methods`).
They are written into a copy of the model in place of the original head (with the hashes of
the clips it was fitted on, :mod:`.seen`), so the result is a streaming .tflite with the
original's inputs, states, signature and ops, and ``logits`` of the new class count. That file
is then run on the validation clips as ``vidcls classify`` runs it and compared with the float
head in numpy (:mod:`.guard`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from .. import media, zoo
from ..errors import VidclsError
from .dataset import Clip, Dataset, load_dataset
from .evaluation import Evaluation
from .export import check_target, export_model
from .features import FeatureCache, FeatureExtractor, Features
from .guard import Int8Check, check_clips, verify
from .methods import fit, validation
from .options import AUTO, TrainOptions
from .pool import FeatureRun
from .progress import Progress, count
from .seen import TrainedOn

RATE_SAMPLE = 64  # clips whose durations decide --fps auto


@dataclass
class TrainResult:
    """What training produced and measured."""

    model_path: Path
    labels_path: Path
    classes: list[str]
    counts: dict
    train_accuracy: float
    val_accuracy: float | None
    val_accuracy_exported: float | None
    baseline_val_accuracy: float | None  # logistic regression on pooled features, no augmentation
    max_probability_difference: float | None  # exported model vs the float head, check clips
    l2: float
    seconds: float
    method: str = "classifier"
    cv_accuracy: float | None = None  # of the chosen head, cross-validated on training clips
    head_steps: int = 0  # head training steps kept (0: the classifier alone)
    skipped: list[str] = field(default_factory=list)
    confusion: list[list[int]] | None = None
    extraction_seconds: float = 0.0
    evaluation: Evaluation | None = field(default=None, repr=False)  # exported, check clips
    int8: Int8Check | None = None  # the exported model against the float head
    cv_confusion: list[list[int]] | None = None  # out-of-fold predictions of the classifier
    fps: float | None = None  # the rate clips were fed at (None: every frame)
    data_dir: str = ""
    options: TrainOptions = field(default_factory=TrainOptions, repr=False)

    def to_dict(self) -> dict:
        """The report's JSON: every field, the options, and the exported model's per-class
        precision and recall."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d.pop("evaluation")
        d["int8"] = None if self.int8 is None else self.int8.to_dict()
        d["model_path"], d["labels_path"] = str(self.model_path), str(self.labels_path)
        d["options"] = self.options.to_dict()
        if self.val_accuracy_exported is not None and self.evaluation is not None:
            d["exported_per_class"] = self.evaluation.per_class()
        return d


def train(
    data_dir: str | os.PathLike,
    out: str | os.PathLike,
    options: TrainOptions | None = None,
    *,
    progress: bool | Progress | None = None,
    **option_fields,
) -> TrainResult:
    """Train a head on the clips in ``data_dir`` and write a streaming .tflite to ``out``
    (labels beside it). Options: a :class:`TrainOptions`, or its fields as keywords.
    ``progress``: a bar per phase on stderr (None: when stderr is a terminal); without bars,
    each phase's start and end are logged at INFO on ``vidcls.progress``; or a
    :class:`~.progress.Progress` (with its listener)."""
    if options is None:
        options = TrainOptions(**option_fields)
    elif option_fields:
        raise TypeError("pass either TrainOptions or its fields as keywords, not both")
    t_start = time.monotonic()
    out = check_target(out)
    base = zoo.resolve_model(options.model)
    extractor = FeatureExtractor(base, options.threads, fit=options.fit)  # a bad model fails first
    dataset = load_dataset(data_dir, options.val_fraction)
    rate = feed_rate(options.fps, [c.path for c in dataset.train])
    cache = FeatureCache(options.cache or zoo.cache_dir() / "features")
    phases = progress if isinstance(progress, Progress) else Progress(progress)
    run = FeatureRun(extractor, cache, rate, options.seed, list(dataset.skipped))
    run.window, run.at_once = options.window, options.threads
    t0 = time.monotonic()
    check, part = check_clips(dataset)
    tr, ch = extract(run, dataset, options.views, phases, check, part)
    va = ch if part == "validation" else None
    extraction = time.monotonic() - t0
    _check_coverage(tr, dataset.classes, data_dir)
    fitted = fit(tr, len(dataset.classes), options, base, phases)
    val_acc, confusion, baseline = validation(fitted, tr, va, len(dataset.classes), options)
    with phases.phase("writing", f"{out} and its labels", "written", 2, "file") as phase:
        rows = getattr(tr, fitted.head.feature)
        seen = TrainedOn.of(dataset, None if dataset.folders else options.val_fraction)
        labels = export_model(
            base, fitted.head, dataset.classes, rate, rows, out, options.window, options.fit, seen
        )
        phase.advance(2)
    evaluation, int8 = verify(
        out, check, part, dataset.classes, fitted, ch, rate, options.threads, phases
    )
    validated = va is not None and int8 is not None
    return TrainResult(
        model_path=out,
        labels_path=labels,
        classes=dataset.classes,
        counts=dataset.counts(),
        train_accuracy=float((fitted.logits(tr)[tr.plain].argmax(1) == tr.labels[tr.plain]).mean()),
        val_accuracy=val_acc,
        val_accuracy_exported=evaluation.top1 if validated else None,
        baseline_val_accuracy=baseline,
        max_probability_difference=None if int8 is None else int8.max_difference,
        l2=fitted.l2,
        method=fitted.method,
        cv_accuracy=fitted.cv_accuracy,
        head_steps=fitted.steps,
        seconds=time.monotonic() - t_start,
        skipped=run.skipped,
        confusion=confusion,
        extraction_seconds=extraction,
        evaluation=evaluation,
        int8=int8,
        cv_confusion=fitted.cv_confusion,
        fps=rate,
        data_dir=os.fspath(data_dir),
        options=options,
    )


def feed_rate(fps: float | str, paths: list[Path], long_enough: float = 2.0) -> float | None:
    """The rate clips are fed at (None: every frame). ``fps="auto"``: 5 (MoViNet's rate) if
    the median clip lasts ``long_enough`` seconds, else every frame, since a clip of a few
    frames would otherwise be cut to one or two. The median is taken over at most
    ``RATE_SAMPLE`` clips spread over the list, so a large dataset is not opened twice."""
    if fps != AUTO:
        return float(fps) or None
    sample = paths[:: max(1, -(-len(paths) // RATE_SAMPLE))]
    durations = [d for d in map(media.duration, sample) if d]
    return 5.0 if durations and float(np.median(durations)) >= long_enough else None


def extract(
    run: FeatureRun,
    dataset: Dataset,
    views: int,
    phases: Progress,
    check: list[Clip],
    part: str = "validation",
) -> tuple[Features | None, Features | None]:
    """Features of the training clips in ``views`` views each (with their windows, decoded
    once each at the working size) and of the ``check`` clips once (whole, decoded as
    classification does): one phase, advancing per clip view, ``run.at_once`` clips at a
    time."""
    n_train, n_val = len(dataset.train), len(check)
    detail = f"{count(n_train, 'clip')} x {count(views, 'view')}"
    detail += f" + {count(n_val, f'{part} clip')} to check the export" if n_val else ""
    windows = f"{run.window:g} s windows of longer training clips, " if run.window else ""
    detail += f" ({windows}{count(run.at_once, 'clip')} at once)"
    total = n_train * views + n_val
    with phases.phase("features", detail, "features ready", total, "view") as phase, run:
        run.phase = phase
        tr = run.features(dataset.train, "train", views)
        # Check clips: whole, decoded as `vidcls classify` decodes them, so that the exported
        # model can be checked against the float head on the same pictures.
        window, run.window, run.working = run.window, 0.0, False
        try:
            va = run.features(check, "val", 1) if check else None
        finally:
            run.window, run.working = window, True
        phase.note = f"{run.computed} computed, {run.cached} from the cache"
    return tr, va


def _check_coverage(tr: Features | None, classes: list[str], data_dir) -> None:
    """VidclsError unless every class has readable training clips."""
    if tr is None:
        raise VidclsError("no readable training clips", data_dir)
    missing = [classes[c] for c in range(len(classes)) if c not in set(tr.labels.tolist())]
    if missing:
        raise VidclsError(f"no readable training clips for: {', '.join(missing)}", data_dir)
