"""The head (both 1x1 convs) in numpy: its gradients, its training and the choice of its step
count."""

from __future__ import annotations

import numpy as np
import pytest

from vidcls.training.fit import cv_splits
from vidcls.training.head import (
    CHECK_EVERY,
    Head,
    Schedule,
    activate,
    choose_steps,
    starting_head,
    train_head,
)


def blobs(classes=3, per_class=12, views=2, dim=16, seed=0):
    """Pooled-like features (non-negative) in ``classes`` clusters, ``views`` rows a clip."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 3, (classes, dim))
    x, y, groups, clip = [], [], [], 0
    for c in range(classes):
        for _ in range(per_class):
            for v in range(views):
                x.append(np.maximum(centres[c] + rng.normal(0, 0.8, dim), 0))
                y.append(c)
                groups.append((clip, v))
            clip += 1
    return np.array(x), np.array(y), np.array(groups)


def first_layer(dim=16, hidden=32, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(0, 0.3, (hidden, dim)), rng.normal(0, 0.1, hidden)


@pytest.mark.parametrize("act", ["relu6", "swish", "hard_swish", "relu", "none"])
def test_the_analytic_gradient_matches_finite_differences(act):
    """One Adam step from the start moves each weight against the sign of its gradient; the
    gradient itself is checked by central differences of the loss through the same code."""
    x, y, _ = blobs(dim=6, per_class=4)
    w1, b1 = first_layer(dim=6, hidden=5)
    rng = np.random.default_rng(2)
    head = Head(w1, b1, rng.normal(0, 0.5, (3, 5)), rng.normal(0, 0.1, 3), act)

    def loss(h: Head) -> float:
        z = h.logits(x)
        z = z - z.max(1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(1, keepdims=True))
        return float(-logp[np.arange(len(y)), y].mean())  # balanced classes: equal weights

    # With lr tiny and no pull, Adam's first step is -lr * sign(grad): compare signs with
    # finite differences on a few entries of each layer.
    lr = 1e-7
    moved = train_head(x, y, head, Schedule(lr=lr, steps=1, l2_sp=0.0, l2=0.0))
    for name, idx in (("w1", (1, 2)), ("b1", (3,)), ("w2", (0, 4)), ("b2", (2,))):
        base = getattr(head, name).astype(np.float64)
        eps = 1e-4
        plus, minus = base.copy(), base.copy()
        plus[idx] += eps
        minus[idx] -= eps
        fp = loss(_with(head, name, plus))
        fm = loss(_with(head, name, minus))
        numeric = (fp - fm) / (2 * eps)
        step = getattr(moved, name)[idx] - base[idx]
        if abs(numeric) > 1e-5:
            assert np.sign(step) == -np.sign(numeric), (name, step, numeric)


def _with(head: Head, name: str, value: np.ndarray) -> Head:
    fields = dict(w1=head.w1, b1=head.b1, w2=head.w2, b2=head.b2)
    fields[name] = value
    return Head(**fields, activation=head.activation)


def test_activations():
    z = np.array([-4.0, -1.0, 0.0, 2.0, 7.0])
    np.testing.assert_allclose(activate(z, "relu6"), [0, 0, 0, 2, 6])
    np.testing.assert_allclose(activate(z, "swish"), z / (1 + np.exp(-z)))
    np.testing.assert_allclose(activate(z, "hard_swish"), [0, -1 / 3, 0, 2 * 5 / 6, 7])


def test_training_fits_the_data_and_starts_from_the_classifier():
    x, y, _ = blobs()
    w1, b1 = first_layer()
    start = starting_head((w1, b1, "relu6"), x, y, 3, l2=1e-3, epochs=200, seed=0)
    checks = []
    trained = train_head(
        x, y, start, Schedule(lr=1e-2, steps=40), lambda s, h: checks.append((s, h.accuracy(x, y)))
    )
    assert [s for s, _ in checks] == list(range(0, 41, CHECK_EVERY))
    assert checks[0][1] == start.accuracy(x, y)  # step 0 is the classifier alone
    assert not np.allclose(trained.w1, w1)  # the first layer moved
    assert trained.accuracy(x, y) >= start.accuracy(x, y)
    assert trained.accuracy(x, y) > 0.9


def test_choose_steps_returns_a_checked_step_count_and_a_curve():
    x, y, groups = blobs(per_class=9)
    splits = cv_splits(y, groups, 3)
    w1, b1 = first_layer()
    calls = []
    steps, curve = choose_steps(
        x,
        y,
        splits,
        (w1, b1, "relu6"),
        3,
        1e-3,
        Schedule(lr=1e-2, steps=20),
        lambda: calls.append(1),
        epochs=100,
    )
    assert steps % CHECK_EVERY == 0 and 0 <= steps <= 20
    assert len(curve) == 20 // CHECK_EVERY + 1 and ((curve >= 0) & (curve <= 1)).all()
    assert curve[steps // CHECK_EVERY] == curve.max()
    assert len(calls) == len(splits) * len(curve)
