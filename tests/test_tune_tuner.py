"""Batches of similar length and their padding, for the tuner's jitted steps."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("jax", reason="jax not installed (the tune extra)")

from vidcls.training.tune.tuner import Sequences, batches, padded  # noqa: E402


def sequences_of(lengths: list[int], width: int = 12) -> Sequences:
    mask = np.arange(width)[None, :] < np.array(lengths)[:, None]
    n = len(lengths)
    zeros = np.zeros(n)
    return Sequences({}, mask, zeros, zeros.astype(int), np.zeros((n, 2), int))


def test_batches_hold_every_row_once_and_rows_of_similar_length():
    lengths = [3, 10, 4, 9, 5, 11, 2, 8]
    s = sequences_of(lengths)
    order = np.random.default_rng(0).permutation(len(lengths))
    got = batches(s, order, 2)
    assert len(got) == 4
    assert sorted(np.concatenate(got).tolist()) == list(range(len(lengths)))
    spans = [np.ptp([lengths[r] for r in b]) for b in got]
    assert max(spans) <= 2  # sorted by length before cutting
    assert len(batches(s, order, 100)) == 1  # fewer rows than a batch: one batch


def test_padding_rounds_the_longest_up_to_four_frames_within_the_width():
    s = sequences_of([3, 5, 12, 9])
    assert padded(s, np.array([0])) == 4
    assert padded(s, np.array([0, 1])) == 8
    assert padded(s, np.array([3])) == 12
    assert padded(s, np.array([2])) == 12  # never beyond the stored frames
