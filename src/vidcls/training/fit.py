"""The new classifier: class-balanced softmax regression on clip features, fitted with L-BFGS,
its L2 strength chosen by cross-validation over contiguous runs of the training clips."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

log = logging.getLogger("vidcls")
L2_GRID = (1e-4, 1e-3, 1e-2, 3e-2, 1e-1)


class Scoring:
    """Probabilities and accuracy of what has ``logits(x)`` (the classifier, the head)."""

    def logits(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - each has its own
        raise NotImplementedError

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """The softmax of :meth:`logits`, row by row."""
        z = self.logits(x)
        z = np.exp(z - z.max(axis=-1, keepdims=True))
        return z / z.sum(axis=-1, keepdims=True)

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        """The share of rows whose highest logit is their label."""
        return float((self.logits(x).argmax(1) == y).mean())


@dataclass
class SoftmaxClassifier(Scoring):
    """The classifier (the head's last conv) as softmax regression:
    ``logits = features @ weight.T + bias``."""

    weight: np.ndarray  # [classes, features]
    bias: np.ndarray  # [classes]
    feature = "hidden"  # which features it reads (Features.hidden)

    def logits(self, x: np.ndarray) -> np.ndarray:
        """``[rows, classes]`` logits of ``[rows, features]``."""
        return x @ self.weight.T + self.bias


def fit_softmax(
    x: np.ndarray, y: np.ndarray, classes: int, l2: float, epochs: int = 400, seed: int = 0
) -> SoftmaxClassifier:
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
    with one_blas_thread():
        res = minimize(loss, theta0, jac=True, method="L-BFGS-B", options={"maxiter": epochs})
    w, b = res.x[: classes * d].reshape(classes, d), res.x[classes * d :]
    weight = w / std
    return SoftmaxClassifier(weight, b - weight @ mean)


def one_blas_thread() -> contextlib.AbstractContextManager:
    """BLAS on one thread for the duration. The fit's products are thin (a few classes wide),
    and on a busy machine OpenBLAS's threads waiting for each other made each fit 10-20 times
    slower (measured on 2 cores, 1104 x 2048 features: 22 s a fit instead of 1.2 s)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def cv_splits(
    y: np.ndarray, groups: np.ndarray, classes: int, folds: int = 3
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(train rows, test rows)`` masks of the cross-validation folds that can be scored:
    contiguous runs of each class's clips; a fold is left out when it has nothing to test or
    its training part lacks a class. Tests use the clips themselves, not augmentations."""
    fold_of = contiguous_folds(groups, y, folds)
    splits = []
    for k in range(folds):
        tr, te = fold_of != k, (fold_of == k) & (groups[:, 1] == 0)
        if te.any() and len(np.unique(y[tr])) == classes:
            splits.append((tr, te))
    return splits


def choose_l2(
    x: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    classes: int,
    epochs: int,
    seed: int,
    folds: int = 3,
    on_fit: Callable[[], None] | None = None,
    predictions: np.ndarray | None = None,
) -> tuple[float, float]:
    """The L2 strength in ``L2_GRID`` with the best mean accuracy over contiguous folds of the
    training clips (``groups``: each row's clip number and view number, view 0 the clip), and
    that accuracy.
    ``on_fit`` is called after each of the ``len(L2_GRID) * len(cv_splits(...))`` fits.
    ``predictions`` (one per row, -1 at first) gets the best L2's class for each tested row."""
    best, best_acc = L2_GRID[0], -1.0
    splits = cv_splits(y, groups, classes, folds)
    for l2 in L2_GRID:
        accs = []
        pred = np.full(len(y), -1)
        for tr, te in splits:
            h = fit_softmax(x[tr], y[tr], classes, l2, epochs, seed=seed)
            pred[te] = h.logits(x[te]).argmax(1)
            accs.append(float((pred[te] == y[te]).mean()))
            if on_fit is not None:
                on_fit()
        acc = float(np.mean(accs)) if accs else 0.0
        log.info("l2 %g: cross-validated accuracy %.3f", l2, acc)
        if acc > best_acc + 1e-9:
            best, best_acc = l2, acc
            if predictions is not None:
                predictions[:] = pred
    return best, best_acc


def contiguous_folds(groups: np.ndarray, y: np.ndarray, folds: int) -> np.ndarray:
    """Fold of each row: each class's clips (in order) cut into ``folds`` contiguous runs."""
    fold = np.zeros(len(y), int)
    for c in np.unique(y):
        clips = sorted(set(groups[y == c, 0]))
        for k, chunk in enumerate(np.array_split(np.array(clips), folds)):
            fold[np.isin(groups[:, 0], chunk) & (y == c)] = k
    return fold


def confusion_matrix(y: np.ndarray, pred: np.ndarray, classes: int) -> np.ndarray:
    """``m[true, predicted]`` counts."""
    m = np.zeros((classes, classes), int)
    np.add.at(m, (y, pred), 1)
    return m
