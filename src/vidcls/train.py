"""Transfer learning: a new classification head on a frozen stream model, exported as .tflite.

The backbone and the head's first conv stay as they are; the clips' *hidden* head features
(after the last frame) are extracted for each clip and for augmented views of it, and a new
classifier (softmax regression, L2 chosen by contiguous cross-validation on the training clips)
is fitted with numpy. It is written into a copy of the model in place of the original
classifier, so the result is a streaming .tflite with the original's inputs, states and
signature, and ``logits`` of the new class count.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from . import head as heads
from . import zoo
from .dataset import Clip, Dataset, load_dataset
from .errors import VidclsError
from .features import (
    FeatureCache,
    FeatureExtractor,
    View,
    apply_view,
    clip_error,
    random_views,
    read_clip,
)

log = logging.getLogger("vidcls")
L2_GRID = (1e-4, 1e-3, 1e-2, 3e-2, 1e-1)


@dataclass
class TrainOptions:
    """How to train. ``fps="auto"`` feeds MoViNet's 5 fps when the clips are long enough
    (median at least 2 s) and every frame otherwise; None feeds every frame."""

    model: str | os.PathLike = zoo.DEFAULT_MODEL
    val_fraction: float = 0.3
    views: int = 8  # per training clip: the clip itself plus views-1 augmentations
    fps: float | str | None = "auto"
    epochs: int = 500  # L-BFGS iterations at most
    l2: float | None = None  # None: chosen by cross-validation from L2_GRID
    seed: int = 0
    num_threads: int = 2
    cache: str | os.PathLike | None = None  # feature cache folder (default: in the model cache)


@dataclass
class SoftmaxHead:
    """``logits = features @ weight.T + bias``."""

    weight: np.ndarray  # [classes, features]
    bias: np.ndarray  # [classes]

    def logits(self, x: np.ndarray) -> np.ndarray:
        return x @ self.weight.T + self.bias

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        z = self.logits(x)
        z = np.exp(z - z.max(axis=-1, keepdims=True))
        return z / z.sum(axis=-1, keepdims=True)


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
    evaluation: object = field(default=None, repr=False)  # the exported model on val clips
    fps: float | None = None  # the rate clips were fed at (None: every frame)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("evaluation")
        d["model_path"], d["labels_path"] = str(self.model_path), str(self.labels_path)
        if self.evaluation is not None and self.evaluation.clips:
            d["exported_per_class"] = self.evaluation.per_class()
        return d


def fit_softmax(
    x: np.ndarray, y: np.ndarray, classes: int, l2: float, epochs: int = 400, seed: int = 0
) -> SoftmaxHead:
    """Class-balanced softmax regression with L2 on standardized features, solved to
    convergence with L-BFGS; the standardization is folded back into the weights."""
    from scipy.optimize import minimize

    # Floor each feature's scale at a tenth of the overall one: units that are almost always
    # zero (ReLU6) must not be blown up by standardization.
    mean, std = x.mean(axis=0), np.sqrt(x.var(axis=0) + (0.1 * x.std()) ** 2)
    xs = ((x - mean) / std).astype(np.float64)
    n, d = xs.shape
    counts = np.bincount(y, minlength=classes).astype(np.float64)
    sample_w = (n / (classes * np.maximum(counts, 1)))[y]
    sample_w /= sample_w.sum()
    onehot = np.eye(classes)[y]

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[: classes * d].reshape(classes, d), theta[classes * d :]
        z = xs @ w.T + b
        z -= z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        value = -(sample_w * (onehot * logp).sum(1)).sum() + 0.5 * l2 * (w * w).sum()
        g = (np.exp(logp) - onehot) * sample_w[:, None]
        grad = np.concatenate([(g.T @ xs + l2 * w).ravel(), g.sum(axis=0)])
        return value, grad

    theta0 = np.random.default_rng(seed).normal(0, 0.01, classes * d + classes)
    res = minimize(loss, theta0, jac=True, method="L-BFGS-B", options={"maxiter": epochs})
    w, b = res.x[: classes * d].reshape(classes, d), res.x[classes * d :]
    weight = w / std
    return SoftmaxHead(weight, b - weight @ mean)


def choose_l2(x, y, groups, classes, epochs, seed, folds: int = 3) -> float:
    """The L2 strength with the best mean accuracy over contiguous folds of the training clips."""
    best, best_acc = L2_GRID[0], -1.0
    fold_of = _contiguous_folds(groups, y, folds)
    for l2 in L2_GRID:
        accs = []
        for k in range(folds):
            tr, te = fold_of != k, fold_of == k
            if len(np.unique(y[tr])) < classes or not te.any():
                continue
            h = fit_softmax(x[tr], y[tr], classes, l2, epochs, seed=seed)
            plain = te & (groups[:, 1] == 0)  # score on the clips themselves, not augmentations
            accs.append(float((h.logits(x[plain]).argmax(1) == y[plain]).mean()))
        acc = float(np.mean(accs)) if accs else 0.0
        log.info("l2 %g: cross-validated accuracy %.3f", l2, acc)
        if acc > best_acc + 1e-9:
            best, best_acc = l2, acc
    return best


def _contiguous_folds(groups: np.ndarray, y: np.ndarray, folds: int) -> np.ndarray:
    """Fold of each row: each class's clips (in order) cut into ``folds`` contiguous runs."""
    fold = np.zeros(len(y), int)
    for c in np.unique(y):
        clips = sorted(set(groups[y == c, 0]))
        for k, chunk in enumerate(np.array_split(np.array(clips), folds)):
            fold[np.isin(groups[:, 0], chunk) & (y == c)] = k
    return fold


def _extract(
    extractor: FeatureExtractor,
    cache: FeatureCache,
    clips: list[Clip],
    views: int,
    options: TrainOptions,
    desc: str,
    skipped: list[str],
):
    """Rows of (hidden, pooled, label, clip number, view number) for ``clips``."""
    from tqdm import tqdm

    hidden, pooled, labels, groups = [], [], [], []
    bar = tqdm(clips, desc=desc, unit="clip", file=sys.stderr, disable=not sys.stderr.isatty())
    for number, clip in enumerate(bar):
        rng = np.random.default_rng([options.seed, number, len(desc)])
        frames = None
        for v, view in enumerate(random_views(rng, views)):
            key = cache.key(extractor.digest, clip.path, view, options.fps)
            got = cache.get(key)
            if got is None:
                if frames is None:
                    try:
                        frames = read_clip(clip.path, options.fps)
                    except Exception as e:  # noqa: BLE001 - any unreadable clip is skipped
                        skipped.append(str(clip_error(clip.path, e)))
                        log.warning("skipping %s", skipped[-1])
                        break
                got = extractor(apply_view(frames, view))
                cache.put(key, *got)
            hidden.append(got[0])
            pooled.append(got[1])
            labels.append(clip.index)
            groups.append((number, v))
    if not labels:
        return None
    return (
        np.array(hidden, np.float32),
        np.array(pooled, np.float32),
        np.array(labels),
        np.array(groups),
    )


def train(
    data_dir: str | os.PathLike, out: str | os.PathLike, options: TrainOptions
) -> TrainResult:
    """Train a head on the clips in ``data_dir`` and write a streaming .tflite to ``out``."""
    t_start = time.monotonic()
    out = Path(out)
    if out.suffix != ".tflite":
        raise VidclsError("the output must be a .tflite file", out)
    if not out.parent.is_dir():
        raise VidclsError("output folder does not exist", out.parent)
    base = zoo.resolve_model(options.model)
    extractor = FeatureExtractor(base, options.num_threads)  # a bad model fails first
    dataset = load_dataset(data_dir, options.val_fraction)
    if options.fps == "auto":
        options = replace(options, fps=auto_fps([c.path for c in dataset.train]))
    cache = FeatureCache(options.cache or zoo.cache_dir() / "features")
    skipped: list[str] = []
    t0 = time.monotonic()
    tr = _extract(extractor, cache, dataset.train, options.views, options, "train", skipped)
    va = (
        _extract(extractor, cache, dataset.val, 1, options, "val", skipped) if dataset.val else None
    )
    extraction = time.monotonic() - t0
    if tr is None:
        raise VidclsError("no readable training clips", data_dir)
    x, xp, y, groups = tr
    k = len(dataset.classes)
    missing = [dataset.classes[c] for c in range(k) if c not in set(y.tolist())]
    if missing:
        raise VidclsError(f"no readable training clips for: {', '.join(missing)}", data_dir)
    l2 = (
        options.l2
        if options.l2 is not None
        else choose_l2(x, y, groups, k, options.epochs, options.seed)
    )
    fitted = fit_softmax(x, y, k, l2, options.epochs, seed=options.seed)
    plain = groups[:, 1] == 0
    train_acc = float((fitted.logits(x[plain]).argmax(1) == y[plain]).mean())
    val_acc = baseline = None
    confusion = None
    if va is not None:
        xv, xpv, yv, _ = va
        pred = fitted.logits(xv).argmax(1)
        val_acc = float((pred == yv).mean())
        confusion = confusion_matrix(yv, pred, k).tolist()
        lr = fit_softmax(xp[plain], y[plain], k, 1e-2, options.epochs, seed=options.seed)
        baseline = float((lr.logits(xpv).argmax(1) == yv).mean())
    train_logits = fitted.logits(x)
    margin = 0.1 * (train_logits.max() - train_logits.min())
    data = Path(base).read_bytes()
    exported = heads.replace_classifier(
        data,
        fitted.weight,
        fitted.bias,
        output_range=(float(train_logits.min() - margin), float(train_logits.max() + margin)),
        labels=dataset.classes,
        path=str(base),
    )
    exported = _with_config(exported, {"fps": options.fps, "classes": dataset.classes})
    _write(out, exported)
    labels_path = out.with_name(out.stem + ".labels.txt")
    _write(labels_path, ("\n".join(dataset.classes) + "\n").encode())
    evaluation, diff = _verify(out, dataset, fitted, va, options)
    return TrainResult(
        out,
        labels_path,
        dataset.classes,
        dataset.counts(),
        train_acc,
        val_acc,
        evaluation.top1 if evaluation.clips else None,
        baseline,
        diff,
        l2,
        time.monotonic() - t_start,
        skipped,
        confusion,
        extraction,
        evaluation,
        options.fps,
    )


def auto_fps(paths: list[Path], long_enough: float = 2.0) -> float | None:
    """5 fps (MoViNet's rate) if the median clip lasts ``long_enough`` seconds, else None (every
    frame): a clip of a few frames would otherwise be cut to one or two."""
    import av

    durations = []
    for p in paths:
        try:
            with av.open(str(p)) as c:
                if c.duration:
                    durations.append(c.duration / av.time_base)
        except (av.FFmpegError, OSError):
            continue
    return 5.0 if durations and float(np.median(durations)) >= long_enough else None


def _verify(out: Path, dataset: Dataset, fitted: SoftmaxHead, va, options: TrainOptions):
    """Run the written model on the validation clips, as ``vidcls`` would, and compare its
    probabilities with the numpy head's on the same clips' features."""
    from .classifier import ClassifierOptions, VideoClassifier
    from .evaluate import Evaluation

    clf = VideoClassifier.create_from_options(ClassifierOptions(model=out, max_results=5))
    evaluation = Evaluation(str(out), dataset.classes)
    if va is None:
        return evaluation, None
    xv, _, _, groups = va
    diffs = []
    for row, number in enumerate(groups[:, 0]):
        clip = dataset.val[number]
        clf.reset()
        for f in apply_view(read_clip(clip.path, options.fps), View()):
            clf.classify(f)
        expected = fitted.probabilities(xv[row : row + 1])[0]
        diffs.append(float(np.abs(clf.probabilities - expected).max()))
        top = clf.top()
        evaluation.clips.append(
            {
                "path": str(clip.path),
                "label": clip.label,
                "predicted": top[0].label,
                "top5": [c.label for c in top],
            }
        )
    return evaluation, max(diffs)


def confusion_matrix(y: np.ndarray, pred: np.ndarray, classes: int) -> np.ndarray:
    """``m[true, predicted]`` counts."""
    m = np.zeros((classes, classes), int)
    np.add.at(m, (y, pred), 1)
    return m


def _with_config(tflite: bytes, config: dict) -> bytes:
    import io
    import zipfile

    buf = io.BytesIO(tflite)
    buf.seek(0, io.SEEK_END)
    with zipfile.ZipFile(buf, "a") as z:
        z.writestr("vidcls.json", json.dumps(config))
    return buf.getvalue()


def _write(path: Path, data: bytes) -> None:
    from . import _files

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    _files.replace(tmp, path)


def write_report(result: TrainResult, options: TrainOptions, data_dir: str | os.PathLike) -> Path:
    """``<model>.report.md`` (+ ``.json``, and the confusion matrix as PNG with matplotlib)."""
    from .evaluate import plot_confusion
    from .output import write_atomic

    base = result.model_path.with_suffix("")
    png = None
    if result.evaluation is not None and result.evaluation.clips:
        try:
            png = plot_confusion(
                result.evaluation,
                base.with_name(base.name + ".confusion.png"),
                title=f"validation, exported model: top-1 {result.val_accuracy_exported:.1%}",
            )
        except VidclsError as e:  # no matplotlib: the table in the report still has it
            log.warning("%s", e)
    fps = "every frame" if result.fps is None else f"{result.fps:g} fps"
    lines = [
        f"# {result.model_path.name}",
        "",
        f"Trained by vidcls on `{data_dir}` from `{options.model}` in {result.seconds:.0f} s "
        f"(feature extraction {result.extraction_seconds:.0f} s); clips fed {fps}.",
        "",
        "| class | train clips | validation clips |",
        "| --- | --- | --- |",
        *[f"| {c} | {n['train']} | {n['val']} |" for c, n in result.counts.items()],
        "",
        f"- training accuracy (clips without augmentation): {result.train_accuracy:.1%}",
    ]
    if result.val_accuracy is not None:
        lines += [
            f"- validation accuracy, head in numpy: {result.val_accuracy:.1%}",
            f"- validation accuracy, exported .tflite: {result.val_accuracy_exported:.1%}",
            f"- largest probability difference, exported vs numpy: "
            f"{result.max_probability_difference:.4f}",
            f"- for scale, logistic regression on pooled features without augmentation: "
            f"{result.baseline_val_accuracy:.1%}",
        ]
    lines += [
        f"- {options.views - 1} augmented views per training clip; L2 {result.l2:g}",
    ]
    if result.skipped:
        lines += ["", "Skipped clips:", *[f"- {s}" for s in result.skipped]]
    if result.evaluation is not None and result.evaluation.clips:
        lines += ["", "Validation, exported model:", "", "```", result.evaluation.table(), "```"]
    if png is not None:
        lines += ["", f"![confusion matrix]({png.name})"]
    report = base.with_name(base.name + ".report.md")
    write_atomic(report, "\n".join(lines) + "\n")
    write_atomic(report.with_suffix(".json"), json.dumps(result.to_dict(), indent=2) + "\n")
    return report
