"""Where the graph is cut for fine-tuning its last K blocks, and the activations LiteRT hands
over at the cut. Real A0, real clip; no JAX computation."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import A0, needs_shared, video

pytest.importorskip("jax", reason="jax not installed (the tune extra)")

from vidcls.errors import VidclsError  # noqa: E402
from vidcls.media import read_frames  # noqa: E402
from vidcls.training.features import FeatureExtractor  # noqa: E402
from vidcls.training.tune.blocks import BoundaryExtractor, block_starts, cut  # noqa: E402
from vidcls.training.tune.replica import Graph  # noqa: E402

pytestmark = needs_shared


@pytest.fixture(scope="module")
def graph() -> Graph:
    return Graph(A0.read_bytes(), str(A0))


def test_blocks_are_named_layers_in_file_order(graph):
    starts = block_starts(graph)
    assert len(starts) == 15  # A0: block0_layer0 .. block4_layer3
    assert starts[0][0] == "block0_layer0" and starts[-1][0] == "block4_layer3"
    assert [i for _, i in starts] == sorted(i for _, i in starts)


def test_the_last_block_and_the_head_read_one_boundary_tensor(graph):
    one, two = cut(graph, 1), cut(graph, 2)
    assert one.ops == sorted(one.ops) and set(one.ops) < set(two.ops)
    assert graph.producer[graph.outputs[graph.logits]] in one.ops  # up to the logits
    (boundary,) = one.boundary
    assert b"block4_layer2" in graph.tensors[boundary].name  # the block before the cut
    assert graph.producer[boundary] not in one.ops
    assert set(one.states) <= set(graph.states) and "state_head_pool_buffer" in one.states
    kinds = {graph.ops[i].name for i in one.ops for t in graph.ops[i].inputs if t in one.params}
    assert kinds <= {"CONV_2D", "DEPTHWISE_CONV_2D"} and len(one.params) < len(two.params)
    assert graph.head.weight in one.params and graph.head.bias in one.params


@pytest.mark.parametrize("k", [0, 16])
def test_a_block_count_the_model_does_not_have_is_refused(graph, k):
    with pytest.raises(VidclsError, match=f"cannot fine-tune {k} blocks: the model has 15") as e:
        cut(graph, k)
    assert str(A0) in str(e.value)


def test_the_boundary_per_frame_and_the_hidden_features_after_the_last(graph):
    frames = read_frames(video("carving_ice_rpi.mp4"), 5.0)[:4]
    c = cut(graph, 1)
    x, hidden = BoundaryExtractor(A0.read_bytes(), c)(frames)
    (t,) = c.boundary
    assert set(x) == {t} and x[t].shape == (4, *graph.shape(t)) and x[t].dtype == np.float32
    assert np.ptp(x[t].reshape(4, -1), axis=0).max() > 0  # it follows the frames
    # The hidden features are the trainer's, fed the same frames.
    np.testing.assert_array_equal(hidden, FeatureExtractor(A0)(frames)[0])
