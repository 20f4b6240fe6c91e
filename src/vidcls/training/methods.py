"""What is trained on the clip features, by method: ``classifier`` (a new last conv on the
frozen hidden features) or ``head`` (both head convs, the official recipe's new head), each
chosen and scored by cross-validation over contiguous runs of the training clips."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .features import Features
from .fit import L2_GRID, SoftmaxClassifier, choose_l2, confusion_matrix, cv_splits, fit_softmax
from .graph import find_first_conv, find_head, first_conv_weights, load
from .head import CHECK_EVERY, Head, Schedule, choose_steps, starting_head, train_head
from .options import TrainOptions
from .progress import Progress, count

SCHEDULE = Schedule(lr=3e-3, steps=50, l2_sp=1e-4, l2=1e-2)


@dataclass
class Fitted:
    """A trained head (a new classifier on the base's first conv, or both convs) and how it
    was chosen."""

    head: SoftmaxClassifier | Head  # the new classifier alone, or both convs
    method: str  # what was asked for
    l2: float
    cv_accuracy: float | None  # of the chosen configuration, on the training clips
    steps: int = 0  # head Adam steps (0: the classifier alone was best)
    cv_confusion: list[list[int]] | None = None  # the classifier's, over the folds' clips

    def logits(self, features: Features) -> np.ndarray:
        """Logits of every row of ``features``."""
        return self.head.logits(getattr(features, self.head.feature))

    def probabilities(self, features: Features) -> np.ndarray:
        """Probabilities of every row of ``features``."""
        return self.head.probabilities(getattr(features, self.head.feature))


def first_conv(base: Path) -> tuple[np.ndarray, np.ndarray, str]:
    """The base model's first head conv: float weight, bias and activation."""
    model = load(base.read_bytes())
    conv = find_first_conv(model, find_head(model, str(base)), str(base))
    return (*first_conv_weights(model, conv), conv.activation)


def fit(tr: Features, k: int, options: TrainOptions, base: Path, phases: Progress) -> Fitted:
    """The classifier (L2 by cross-validation unless given), then for ``method="head"`` both
    head convs started from it, their steps chosen by cross-validation."""
    l2, epochs, seed = options.l2, options.epochs, options.seed
    splits = cv_splits(tr.labels, tr.groups, k)
    chosen = l2 is None and bool(splits)
    total = (len(L2_GRID) * len(splits) if chosen else 0) + 1
    detail = (
        f"{count(len(L2_GRID), 'L2 value')} x {count(len(splits), 'fold')}, then"
        if chosen
        else f"L2 {l2:g} as given,"
    )
    rows, features = tr.hidden.shape
    detail += f" the final fit ({count(total, 'fit')}, {rows} rows x {features} features)"
    cv, confusion = None, None
    with phases.phase("fitting", detail, "fitted", total, "fit") as phase:
        if chosen:
            pred = np.full(len(tr.labels), -1)
            l2, cv = choose_l2(
                tr.hidden,
                tr.labels,
                tr.groups,
                k,
                epochs,
                seed,
                on_fit=phase.advance,
                predictions=pred,
            )
            tested = pred >= 0
            confusion = confusion_matrix(tr.labels[tested], pred[tested], k).tolist()
        l2 = L2_GRID[0] if l2 is None else l2
        fitted = Fitted(
            fit_softmax(tr.hidden, tr.labels, k, l2, epochs, seed=seed), "classifier", l2, cv
        )
        fitted.cv_confusion = confusion
        phase.advance()
        phase.note = f"L2 {l2:g}" + ("" if cv is None else f", cross-validated {cv:.1%}")
    if options.method == "head":
        fitted = fit_head(tr, k, fitted, splits, base, options, phases)
    return fitted


def fit_head(
    tr: Features,
    k: int,
    fitted: Fitted,
    splits: list,
    base: Path,
    options: TrainOptions,
    phases: Progress,
) -> Fitted:
    """Both head convs trained from the pretrained first conv and a fitted classifier; the
    number of steps (0 keeps ``fitted``) chosen by cross-validation on the training clips."""
    first = first_conv(base)
    checks = SCHEDULE.steps // CHECK_EVERY + 1
    detail = (
        f"{count(len(splits), 'fold')} x {SCHEDULE.steps} Adam steps, checked every {CHECK_EVERY}"
    )
    with phases.phase("head", detail, "head fitted", checks * len(splits) + 1, "check") as phase:
        steps, curve = choose_steps(
            tr.pooled,
            tr.labels,
            splits,
            first,
            k,
            fitted.l2,
            SCHEDULE,
            phase.advance,
            epochs=options.epochs,
            seed=options.seed,
        )
        cv = float(curve[steps // CHECK_EVERY]) if splits else None
        result = Fitted(fitted.head, "head", fitted.l2, cv if steps else fitted.cv_accuracy, 0)
        result.cv_confusion = fitted.cv_confusion
        if steps:
            start = starting_head(
                first, tr.pooled, tr.labels, k, fitted.l2, options.epochs, options.seed
            )
            schedule = Schedule(SCHEDULE.lr, steps, SCHEDULE.l2_sp, SCHEDULE.l2)
            result.head, result.steps = train_head(tr.pooled, tr.labels, start, schedule), steps
        phase.advance()
        phase.note = f"{steps} steps" + ("" if cv is None else f", cross-validated {cv:.1%}")
    return result


def validation(
    fitted: Fitted, tr: Features, va: Features | None, k: int, options: TrainOptions
) -> tuple[float | None, list[list[int]] | None, float | None]:
    """The head's validation accuracy and confusion in numpy, and a baseline's accuracy
    (logistic regression on the pooled features of the clips alone)."""
    if va is None:
        return None, None, None
    pred = fitted.logits(va).argmax(1)
    plain = tr.plain
    lr = fit_softmax(tr.pooled[plain], tr.labels[plain], k, 1e-2, options.epochs, options.seed)
    return (
        float((pred == va.labels).mean()),
        confusion_matrix(va.labels, pred, k).tolist(),
        lr.accuracy(va.pooled, va.labels),
    )
