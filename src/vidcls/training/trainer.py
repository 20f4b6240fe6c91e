"""Transfer learning: a new classification head on a frozen stream model, exported as .tflite.

The backbone and the head's first conv stay as they are; the clips' *hidden* head features
(after the last frame) are extracted for each clip and for augmented views of it, and a new
classifier (softmax regression, L2 chosen by contiguous cross-validation on the training clips)
is fitted with numpy. It is written into a copy of the model in place of the original
classifier, so the result is a streaming .tflite with the original's inputs, states and
signature, and ``logits`` of the new class count. That file is then run on the validation clips
as ``vidcls classify`` runs it and compared with the classifier in numpy.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from .. import media, zoo
from ..errors import VidclsError
from ..pipeline import load_classifier
from .augment import apply_view, random_views
from .dataset import Clip, Dataset, load_dataset
from .evaluation import Evaluation, classify_clip
from .export import check_target, export_model
from .features import FeatureCache, FeatureExtractor, clip_error
from .fit import SoftmaxHead, choose_l2, confusion_matrix, fit_softmax
from .options import AUTO, TrainOptions

log = logging.getLogger("vidcls")


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
    max_probability_difference: float | None  # exported model vs the head in numpy, on val clips
    l2: float
    seconds: float
    skipped: list[str] = field(default_factory=list)
    confusion: list[list[int]] | None = None
    extraction_seconds: float = 0.0
    evaluation: Evaluation | None = field(default=None, repr=False)  # exported model, val clips
    fps: float | None = None  # the rate clips were fed at (None: every frame)
    data_dir: str = ""
    options: TrainOptions = field(default_factory=TrainOptions, repr=False)

    def to_dict(self) -> dict:
        """The report's JSON: every field, the options, and the exported model's per-class
        precision and recall."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d.pop("evaluation")
        d["model_path"], d["labels_path"] = str(self.model_path), str(self.labels_path)
        d["options"] = self.options.to_dict()
        if self.evaluation is not None and self.evaluation.clips:
            d["exported_per_class"] = self.evaluation.per_class()
        return d


@dataclass
class Features:
    """One row per clip view: hidden and pooled features, class, and (clip number, view)."""

    hidden: np.ndarray
    pooled: np.ndarray
    labels: np.ndarray
    groups: np.ndarray

    @property
    def plain(self) -> np.ndarray:
        """Rows of the clips themselves (view 0), not augmentations."""
        return self.groups[:, 1] == 0


def train(
    data_dir: str | os.PathLike,
    out: str | os.PathLike,
    options: TrainOptions | None = None,
    **option_fields,
) -> TrainResult:
    """Train a head on the clips in ``data_dir`` and write a streaming .tflite to ``out``
    (labels beside it). Options: a :class:`TrainOptions`, or its fields as keywords."""
    if options is None:
        options = TrainOptions(**option_fields)
    elif option_fields:
        raise TypeError("pass either TrainOptions or its fields as keywords, not both")
    t_start = time.monotonic()
    out = check_target(out)
    base = zoo.resolve_model(options.model)
    extractor = FeatureExtractor(base, options.threads)  # a bad model fails first
    dataset = load_dataset(data_dir, options.val_fraction)
    rate = feed_rate(options.fps, [c.path for c in dataset.train])
    cache = FeatureCache(options.cache or zoo.cache_dir() / "features")
    skipped: list[str] = []
    t0 = time.monotonic()
    common = dict(fps=rate, seed=options.seed, skipped=skipped)
    tr = extract_features(extractor, cache, dataset.train, "train", views=options.views, **common)
    va = None
    if dataset.val:
        va = extract_features(extractor, cache, dataset.val, "val", views=1, **common)
    extraction = time.monotonic() - t0
    _check_coverage(tr, dataset.classes, data_dir)
    k = len(dataset.classes)
    l2 = options.l2
    if l2 is None:
        l2 = choose_l2(tr.hidden, tr.labels, tr.groups, k, options.epochs, options.seed)
    fitted = fit_softmax(tr.hidden, tr.labels, k, l2, options.epochs, seed=options.seed)
    val_acc, confusion, baseline = _validation(fitted, tr, va, k, options)
    labels = export_model(base, fitted, dataset.classes, rate, fitted.logits(tr.hidden), out)
    evaluation, diff = verify(out, dataset, fitted, va, rate, options.threads)
    return TrainResult(
        model_path=out,
        labels_path=labels,
        classes=dataset.classes,
        counts=dataset.counts(),
        train_accuracy=fitted.accuracy(tr.hidden[tr.plain], tr.labels[tr.plain]),
        val_accuracy=val_acc,
        val_accuracy_exported=evaluation.top1 if evaluation.clips else None,
        baseline_val_accuracy=baseline,
        max_probability_difference=diff,
        l2=l2,
        seconds=time.monotonic() - t_start,
        skipped=skipped,
        confusion=confusion,
        extraction_seconds=extraction,
        evaluation=evaluation,
        fps=rate,
        data_dir=os.fspath(data_dir),
        options=options,
    )


def feed_rate(fps: float | str, paths: list[Path], long_enough: float = 2.0) -> float | None:
    """The rate clips are fed at (None: every frame). ``fps="auto"``: 5 (MoViNet's rate) if
    the median clip lasts ``long_enough`` seconds, else every frame, since a clip of a few
    frames would otherwise be cut to one or two."""
    if fps != AUTO:
        return float(fps) or None
    durations = [d for d in map(media.duration, paths) if d]
    return 5.0 if durations and float(np.median(durations)) >= long_enough else None


def extract_features(
    extractor: FeatureExtractor,
    cache: FeatureCache,
    clips: list[Clip],
    part: str,
    *,
    views: int,
    fps: float | None,
    seed: int,
    skipped: list[str],
) -> Features | None:
    """Features of ``clips`` fed at ``fps`` (None: every frame) in ``views`` views each (the
    first the clip itself; the others seeded by ``seed``, the clip number and ``part``), from
    the cache when there; unreadable clips are added to ``skipped``."""
    from tqdm import tqdm

    rows: list[tuple[np.ndarray, np.ndarray, int, tuple[int, int]]] = []
    bar = tqdm(clips, desc=part, unit="clip", file=sys.stderr, disable=not sys.stderr.isatty())
    for number, clip in enumerate(bar):
        rng = np.random.default_rng([seed, number, len(part)])
        frames = None
        for v, view in enumerate(random_views(rng, views)):
            key = cache.key(extractor.digest, clip.path, view, fps)
            got = cache.get(key)
            if got is None:
                if frames is None:
                    try:
                        frames = media.read_frames(clip.path, fps)
                    except Exception as e:  # noqa: BLE001 - any unreadable clip is skipped
                        skipped.append(str(clip_error(clip.path, e)))
                        log.warning("skipping %s", skipped[-1])
                        break
                got = extractor(apply_view(frames, view))
                cache.put(key, *got)
            rows.append((got[0], got[1], clip.index, (number, v)))
    if not rows:
        return None
    hidden, pooled, labels, groups = zip(*rows, strict=True)
    return Features(
        np.array(hidden, np.float32),
        np.array(pooled, np.float32),
        np.array(labels),
        np.array(groups),
    )


def _check_coverage(tr: Features | None, classes: list[str], data_dir) -> None:
    """VidclsError unless every class has readable training clips."""
    if tr is None:
        raise VidclsError("no readable training clips", data_dir)
    missing = [classes[c] for c in range(len(classes)) if c not in set(tr.labels.tolist())]
    if missing:
        raise VidclsError(f"no readable training clips for: {', '.join(missing)}", data_dir)


def _validation(
    fitted: SoftmaxHead, tr: Features, va: Features | None, k: int, options: TrainOptions
) -> tuple[float | None, list[list[int]] | None, float | None]:
    """The numpy head's validation accuracy and confusion, and a baseline's accuracy
    (logistic regression on the pooled features of the clips alone)."""
    if va is None:
        return None, None, None
    pred = fitted.logits(va.hidden).argmax(1)
    plain = tr.plain
    lr = fit_softmax(tr.pooled[plain], tr.labels[plain], k, 1e-2, options.epochs, options.seed)
    return (
        float((pred == va.labels).mean()),
        confusion_matrix(va.labels, pred, k).tolist(),
        lr.accuracy(va.pooled, va.labels),
    )


def verify(
    model_path: Path,
    dataset: Dataset,
    fitted: SoftmaxHead,
    va: Features | None,
    fps: float | None,
    threads: int = 1,
) -> tuple[Evaluation, float | None]:
    """Run the written model on the validation clips as ``vidcls classify`` does, and compare
    its probabilities with the numpy head's on the same clips' features: the evaluation and the
    largest difference (None without validation clips)."""
    clf = load_classifier(model_path, top_k=0, threads=threads)  # every class's probability
    evaluation = Evaluation(str(model_path), dataset.classes)
    if va is None:
        return evaluation, None
    diffs = []
    for row, number in enumerate(va.groups[:, 0]):
        prediction, result = classify_clip(clf, dataset.val[number], 0 if fps is None else fps)
        got = np.zeros(len(clf.labels))
        for c in result.summary:
            got[c.index] = c.score
        expected = fitted.probabilities(va.hidden[row : row + 1])[0]
        diffs.append(float(np.abs(got - expected).max()))
        evaluation.clips.append(prediction)
    return evaluation, max(diffs)
