"""Tuned float weights written back into the int8 graph: per-channel int8 weights, int32 biases
at their input's scale, activation grids refitted per group of tensors that share one."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import A0, needs_shared

pytest.importorskip("jax", reason="jax not installed (the tune extra)")

from vidcls.training.tune.blocks import cut  # noqa: E402
from vidcls.training.tune.replica import INT8, Graph  # noqa: E402
from vidcls.training.tune.requant import (  # noqa: E402
    fit_grids,
    grid_groups,
    quantize_per_channel,
    write_back,
)


@pytest.mark.parametrize("axis", [0, 3])
def test_per_channel_int8_uses_the_full_range_of_each_channel(axis):
    w = np.random.default_rng(0).normal(0, 1, (4, 3, 3, 5))
    q, scale = quantize_per_channel(w, axis)
    assert q.dtype == np.int8 and scale.shape == (w.shape[axis],)
    moved = np.moveaxis(q.astype(int), axis, 0).reshape(len(scale), -1)
    assert (np.abs(moved).max(axis=1) == 127).all()
    shape = [1] * 4
    shape[axis] = -1
    assert np.abs(q * scale.reshape(shape) - w).max() <= scale.max() / 2 + 1e-12


@pytest.fixture(scope="module")
def graph() -> Graph:
    if not A0.is_file():
        pytest.skip(f"{A0} not found")
    return Graph(A0.read_bytes(), str(A0))


@needs_shared
def test_tensors_tied_by_reshapes_and_slices_share_a_grid(graph):
    c = cut(graph, 2)
    groups = grid_groups(graph, c.ops)
    seen = [t for g in groups for t in g]
    assert len(seen) == len(set(seen))  # disjoint
    assert all(graph.tensors[t].type == INT8 for t in seen)
    of = {t: i for i, g in enumerate(groups) for t in g}
    for i in c.ops:
        op = graph.ops[i]
        if op.name in ("RESHAPE", "STRIDED_SLICE") and op.inputs[0] in of:
            assert of[op.inputs[0]] == of[op.outputs[0]]


@needs_shared
def test_a_grid_covers_its_group_and_zero_and_frozen_groups_keep_theirs(graph):
    c = cut(graph, 1)
    groups = grid_groups(graph, c.ops)
    measured, frozen = groups[0], groups[1]
    ranges = {t: (-1.0 + 0.1 * n, 2.0 - 0.1 * n) for n, t in enumerate(measured)}
    ranges |= {t: (0.5, 1.0) for t in list(frozen)[:-1]}  # one member not measured
    grids = fit_grids(graph, c.ops, ranges)
    assert set(grids) == set(measured)
    lo = min(r[0] for t, r in ranges.items() if t in measured)
    hi = max(r[1] for t, r in ranges.items() if t in measured)
    scale, zero = grids[next(iter(measured))]
    assert scale == pytest.approx((hi - lo) / 255)
    assert (-128 - zero) * scale == pytest.approx(lo, abs=scale)
    assert len(set(grids.values())) == 1


@needs_shared
def test_written_weights_read_back_within_half_a_step(graph):
    c = cut(Graph(A0.read_bytes(), str(A0)), 1)
    w_t = graph.head.weight
    b_t = graph.head.bias
    rng = np.random.default_rng(1)
    w = graph.constants[w_t] * rng.uniform(0.5, 1.5, graph.constants[w_t].shape)
    b = graph.constants[b_t] + rng.normal(0, 0.1, graph.constants[b_t].shape)
    written = Graph(write_back(c.graph, {w_t: w, b_t: b}, {}), "written")
    got_w, got_b = written.constants[w_t], written.constants[b_t]
    w_scale = np.abs(w).reshape(len(w), -1).max(axis=1) / 127
    assert (np.abs(got_w - w).reshape(len(w), -1).max(axis=1) <= w_scale / 2 * 1.0001).all()
    in_scale = float(written.qparams(graph.head.hidden)[0][0])
    assert np.abs(got_b - b).max() <= (in_scale * w_scale).max() / 2 * 1.0001
    untouched = next(t for t in c.params if t not in (w_t, b_t))
    np.testing.assert_array_equal(written.constants[untouched], graph.constants[untouched])

    def wiring(g: Graph) -> list:
        return [(op.name, op.inputs, op.outputs) for op in g.ops]

    assert wiring(written) == wiring(graph) and written.inputs == graph.inputs  # same graph
