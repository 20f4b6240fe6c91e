"""The head: the model's two 1x1 convs after the pooled features (pooled -> hidden -> classes),
trained as the official MoViNet transfer-learning recipe trains them, in numpy on the pooled
clip features (what ``--method head`` trains).

It starts from the base model's first conv and a fitted classifier (:mod:`.fit`), so its first
step is the classifier-only model; full-batch Adam then moves both layers, the first one pulled
towards its pretrained weights (L2-SP). How many steps to take is chosen by cross-validation over
contiguous runs of the training clips, where zero steps (the classifier alone) competes too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from .fit import Scoring, SoftmaxClassifier, fit_softmax, one_blas_thread

ACTIVATIONS = ("relu6", "relu", "swish", "hard_swish", "none")
CHECK_EVERY = 5  # steps between the accuracy checks that early stopping chooses among


@dataclass
class Head(Scoring):
    """``logits = act(x @ w1.T + b1) @ w2.T + b2`` on pooled features ``x``."""

    w1: np.ndarray  # [hidden, pooled]
    b1: np.ndarray  # [hidden]
    w2: np.ndarray  # [classes, hidden]
    b2: np.ndarray  # [classes]
    activation: str = "relu6"
    feature = "pooled"  # which features it reads (Features.pooled)

    def pre_activation(self, x: np.ndarray) -> np.ndarray:
        """The first conv's output before its activation."""
        return x @ self.w1.T + self.b1

    def hidden(self, x: np.ndarray) -> np.ndarray:
        """The hidden features the classifier sees."""
        return activate(self.pre_activation(x), self.activation)

    def logits(self, x: np.ndarray) -> np.ndarray:
        """``[rows, classes]`` logits of ``[rows, pooled]`` features."""
        return self.hidden(x) @ self.w2.T + self.b2


def activate(z: np.ndarray, name: str) -> np.ndarray:
    """The activation ``name`` of ``z``."""
    if name == "relu6":
        return np.clip(z, 0.0, 6.0)
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "swish":
        return z / (1.0 + np.exp(-z))
    if name == "hard_swish":
        return z * np.clip(z + 3.0, 0.0, 6.0) / 6.0
    return z


def _derivative(z: np.ndarray, name: str) -> np.ndarray:
    if name == "relu6":
        return ((z > 0) & (z < 6)).astype(z.dtype)
    if name == "relu":
        return (z > 0).astype(z.dtype)
    if name == "swish":
        s = 1.0 / (1.0 + np.exp(-z))
        return s * (1.0 + z * (1.0 - s))
    if name == "hard_swish":
        return np.where(z < -3, 0.0, np.where(z > 3, 1.0, (2.0 * z + 3.0) / 6.0)).astype(z.dtype)
    return np.ones_like(z)


@dataclass
class Schedule:
    """Full-batch Adam: step size, steps at most, and the pull of each layer's weights
    (``l2_sp``: the first conv towards its pretrained weights; ``l2``: the classifier to 0)."""

    lr: float = 1e-3
    steps: int = 200
    l2_sp: float = 1e-3
    l2: float = 1e-3


def train_head(
    x: np.ndarray,
    y: np.ndarray,
    start: Head,
    schedule: Schedule,
    on_check: Callable[[int, Head], None] | None = None,
) -> Head:
    """``start`` trained on pooled features ``x`` and labels ``y`` (class-balanced softmax
    cross-entropy) for ``schedule.steps`` Adam steps. ``on_check(step, head)`` is called at step
    0 and every ``CHECK_EVERY`` steps."""
    x = x.astype(np.float32)
    classes = start.w2.shape[0]
    counts = np.bincount(y, minlength=classes).astype(np.float32)
    weight = (len(y) / (classes * np.maximum(counts, 1)))[y]
    weight = (weight / weight.sum()).astype(np.float32)
    onehot = np.eye(classes, dtype=np.float32)[y]
    params = [p.astype(np.float32).copy() for p in (start.w1, start.b1, start.w2, start.b2)]
    anchor = params[0].copy()
    moments = [(np.zeros_like(p), np.zeros_like(p)) for p in params]
    act = start.activation

    def head() -> Head:
        return replace(start, w1=params[0], b1=params[1], w2=params[2], b2=params[3])

    with one_blas_thread():  # thin products, as the classifier's fits (see there)
        for step in range(schedule.steps + 1):
            if on_check is not None and step % CHECK_EVERY == 0:
                on_check(step, head())
            if step == schedule.steps:
                break
            w1, b1, w2, b2 = params
            z1 = x @ w1.T + b1
            h = activate(z1, act)
            z2 = h @ w2.T + b2
            z2 -= z2.max(axis=1, keepdims=True)
            p = np.exp(z2)
            p /= p.sum(axis=1, keepdims=True)
            g2 = (p - onehot) * weight[:, None]
            dz1 = (g2 @ w2) * _derivative(z1, act)
            grads = [
                dz1.T @ x + schedule.l2_sp * (w1 - anchor),
                dz1.sum(axis=0),
                g2.T @ h + schedule.l2 * w2,
                g2.sum(axis=0),
            ]
            _adam(params, grads, moments, schedule.lr, step + 1)
    return head()


def _adam(params, grads, moments, lr: float, t: int, b1=0.9, b2=0.999, eps=1e-8) -> None:
    """One Adam update of ``params`` in place (through two scratch arrays a tensor rather than
    a new array per operation: the first conv has a million weights)."""
    for p, g, (m, v) in zip(params, grads, moments, strict=True):
        step, scale = np.empty_like(p), np.empty_like(p)
        m *= b1
        m += np.multiply(g, 1 - b1, out=step)
        v *= b2
        np.multiply(g, 1 - b2, out=step)
        v += np.multiply(step, g, out=step)
        np.sqrt(np.divide(v, 1 - b2**t, out=scale), out=scale)
        scale += eps
        np.divide(m, 1 - b1**t, out=step)
        step *= lr
        p -= np.divide(step, scale, out=step)


def starting_head(
    first: tuple[np.ndarray, np.ndarray, str],
    pooled: np.ndarray,
    y: np.ndarray,
    classes: int,
    l2: float,
    epochs: int,
    seed: int,
) -> Head:
    """The pretrained first conv ``(w1, b1, activation)`` with a classifier fitted on its
    hidden features of ``pooled``: the classifier-only model, as a head."""
    w1, b1, act = first
    start = Head(w1, b1, np.zeros((classes, len(b1))), np.zeros(classes), act)
    clf: SoftmaxClassifier = fit_softmax(start.hidden(pooled), y, classes, l2, epochs, seed=seed)
    return replace(start, w2=clf.weight, b2=clf.bias)


def choose_steps(
    x: np.ndarray,
    y: np.ndarray,
    splits: list[tuple[np.ndarray, np.ndarray]],
    first: tuple[np.ndarray, np.ndarray, str],
    classes: int,
    l2: float,
    schedule: Schedule,
    on_check: Callable[[], None] | None = None,
    *,
    epochs: int = 500,
    seed: int = 0,
) -> tuple[int, np.ndarray]:
    """The number of Adam steps (a multiple of ``CHECK_EVERY``, 0 for the classifier alone)
    with the best mean accuracy over the cross-validation ``splits`` (masks of training and
    test rows of pooled features ``x``), and that mean accuracy at each check."""
    curves = []
    for tr, te in splits:
        start = starting_head(first, x[tr], y[tr], classes, l2, epochs, seed)
        accs: list[float] = []

        def check(step: int, head: Head, te=te, accs=accs) -> None:
            accs.append(head.accuracy(x[te], y[te]))
            if on_check is not None:
                on_check()

        train_head(x[tr], y[tr], start, schedule, check)
        curves.append(accs)
    if not curves:
        return 0, np.zeros(1)
    mean = np.mean(curves, axis=0)
    best = int(np.flatnonzero(mean >= mean.max() - 1e-9)[0])  # the fewest steps among the best
    return best * CHECK_EVERY, mean
