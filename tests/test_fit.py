"""The new classifier: softmax regression, the L2 choice over contiguous folds, confusion."""

from __future__ import annotations

import numpy as np

from vidcls.training.fit import (
    L2_GRID,
    choose_l2,
    confusion_matrix,
    contiguous_folds,
    cv_splits,
    fit_softmax,
    one_blas_thread,
)


def blobs(per_class: int = 12, classes: int = 3, dim: int = 16, seed: int = 0):
    """Separable clusters, several views per clip: features, labels, (clip, view) groups."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (classes, dim))
    x, y, groups = [], [], []
    for c in range(classes):
        for clip in range(per_class):
            for view in range(2):
                x.append(centres[c] + rng.normal(0, 0.5, dim))
                y.append(c)
                groups.append((c * per_class + clip, view))
    return np.array(x), np.array(y), np.array(groups)


def test_fit_softmax_separates_clusters():
    x, y, _ = blobs()
    head = fit_softmax(x, y, 3, l2=1e-3, epochs=200)
    assert head.weight.shape == (3, 16) and head.bias.shape == (3,)
    assert head.accuracy(x, y) == 1.0
    p = head.probabilities(x)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-9)
    assert (p.argmax(1) == head.logits(x).argmax(1)).all()
    # A stronger L2 gives smaller weights.
    strong = fit_softmax(x, y, 3, l2=1.0, epochs=200)
    assert np.abs(strong.weight).sum() < np.abs(head.weight).sum()


def test_contiguous_folds_cut_each_class_into_runs_of_clips():
    x, y, groups = blobs(per_class=9)
    fold = contiguous_folds(groups, y, 3)
    for c in range(3):
        clips = groups[y == c, 0]
        f = fold[y == c]
        # Folds rise with the clip number, each clip's views stay together, 3 clips a fold.
        assert (np.diff(f[np.argsort(clips, kind="stable")]) >= 0).all()
        assert all(len(set(f[clips == k])) == 1 for k in set(clips))
        assert np.bincount(f).tolist() == [6, 6, 6]


def test_choose_l2_picks_from_the_grid():
    x, y, groups = blobs()
    l2, acc = choose_l2(x, y, groups, 3, epochs=100, seed=0)
    assert l2 in L2_GRID and 0.0 <= acc <= 1.0


def test_cv_splits_leave_out_folds_that_cannot_be_scored():
    x, y, groups = blobs(per_class=9)
    splits = cv_splits(y, groups, 3)
    assert len(splits) == 3
    for tr, te in splits:
        assert not (tr & te).any() and (groups[te, 1] == 0).all()  # scored on clips, not views
    # Two clips a class: the third fold is empty, and is left out.
    x, y, groups = blobs(per_class=2)
    assert len(cv_splits(y, groups, 3)) == 2


def test_choose_l2_reports_each_fit():
    x, y, groups = blobs(per_class=6)
    fits = []
    choose_l2(x, y, groups, 3, epochs=50, seed=0, on_fit=lambda: fits.append(1))
    assert len(fits) == len(L2_GRID) * len(cv_splits(y, groups, 3)) == len(L2_GRID) * 3


def test_confusion_matrix():
    m = confusion_matrix(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 0]), 3)
    assert m.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 0]]


def test_fits_run_blas_on_one_thread():
    """On a busy machine OpenBLAS threads made each fit 10-20 times slower; the fit's thin
    products run on one thread (``threadpoolctl``, a dependency)."""
    import threadpoolctl

    with one_blas_thread():
        blas = [i for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
        assert blas and all(i["num_threads"] == 1 for i in blas)
