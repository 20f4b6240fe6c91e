"""What each ``--method`` fits on clip features, chosen by cross-validation: the classifier
alone, or both head convs started from it; and the numpy validation figures. Features are
made up (pooled rows in clusters, hidden ones through A0's real first conv)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from conftest import A0, needs_shared

from vidcls.training.features import Features
from vidcls.training.fit import L2_GRID, SoftmaxClassifier
from vidcls.training.head import CHECK_EVERY, Head, activate
from vidcls.training.methods import first_conv, fit, validation
from vidcls.training.options import TrainOptions
from vidcls.training.progress import Progress

pytestmark = needs_shared


@pytest.fixture(scope="module")
def first() -> tuple[np.ndarray, np.ndarray, str]:
    return first_conv(A0)


def made_up(first, classes=3, clips=9, views=2, seed=0) -> Features:
    """``clips`` clips a class in ``views`` views; hidden features as A0's first conv makes
    them from the pooled ones."""
    w1, b1, act = first
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 2, (classes, w1.shape[1]))
    pooled, labels, groups = [], [], []
    for c in range(classes):
        for n in range(clips):
            for v in range(views):
                pooled.append(np.maximum(centres[c] + rng.normal(0, 1.0, w1.shape[1]), 0))
                labels.append(c)
                groups.append((c * clips + n, v))
    pooled = np.array(pooled)
    hidden = activate(pooled @ w1.T + b1, act)
    return Features(
        hidden.astype(np.float32), pooled.astype(np.float32), np.array(labels), np.array(groups)
    )


def test_the_first_conv_of_a0(first):
    w1, b1, act = first
    assert w1.shape == (2048, 480) and b1.shape == (2048,) and act == "relu6"


def test_the_classifier_with_l2_by_cross_validation(first, caplog):
    tr = made_up(first)
    caplog.set_level(logging.INFO, "vidcls.progress")
    got = fit(tr, 3, TrainOptions(epochs=100), A0, Progress(False))
    assert got.method == "classifier" and got.steps == 0 and got.l2 in L2_GRID
    assert isinstance(got.head, SoftmaxClassifier) and 0.5 < got.cv_accuracy <= 1
    probabilities = got.probabilities(tr)
    assert probabilities.shape == (len(tr.labels), 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-6)
    assert "fitting: 5 L2 values x 3 folds, then the final fit (16 fits" in caplog.text


def test_a_given_l2_is_not_cross_validated(first, caplog):
    caplog.set_level(logging.INFO, "vidcls.progress")
    got = fit(made_up(first), 3, TrainOptions(l2=0.05, epochs=100), A0, Progress(False))
    assert got.l2 == 0.05 and got.cv_accuracy is None
    assert "L2 0.05 as given, the final fit (1 fit" in caplog.text


def test_the_head_starts_from_the_classifier_and_keeps_it_when_cv_says_so(first, caplog):
    tr = made_up(first)
    caplog.set_level(logging.INFO, "vidcls.progress")
    got = fit(tr, 3, TrainOptions(method="head", epochs=100), A0, Progress(False))
    assert got.method == "head" and got.steps % CHECK_EVERY == 0
    assert isinstance(got.head, Head if got.steps else SoftmaxClassifier)
    assert got.cv_accuracy is not None
    assert "head: 3 folds x 50 Adam steps, checked every 5" in caplog.text
    assert got.logits(tr).shape == (len(tr.labels), 3)


def test_validation_figures(first):
    tr, va = made_up(first), made_up(first, clips=3, views=1, seed=1)
    got = fit(tr, 3, TrainOptions(l2=0.01, epochs=100), A0, Progress(False))
    assert validation(got, tr, None, 3, TrainOptions()) == (None, None, None)
    accuracy, confusion, baseline = validation(got, tr, va, 3, TrainOptions(epochs=100))
    assert accuracy == pytest.approx((got.logits(va).argmax(1) == va.labels).mean())
    assert np.array(confusion).shape == (3, 3) and np.array(confusion).sum() == len(va.labels)
    assert 0 <= baseline <= 1
