"""The JAX replica of a stream .tflite graph against LiteRT on the same frames."""

from __future__ import annotations

import flatbuffers
import numpy as np
import pytest
from conftest import A0, CUSTOM, needs_shared, video
from jax_cache import jax_compilation_cache  # noqa: F401

pytest.importorskip("jax", reason="jax not installed (the tune extra)")

from ai_edge_litert import schema_py_generated as schema  # noqa: E402

from vidcls import media  # noqa: E402
from vidcls.errors import VidclsError  # noqa: E402
from vidcls.model import StreamModel  # noqa: E402
from vidcls.preprocess import Preprocessor  # noqa: E402
from vidcls.training import graph  # noqa: E402
from vidcls.training.tune.replica import (  # noqa: E402
    Graph,
    Replica,
    StreamReplica,
    stream_replica,
)

# Measured over the shared clips (python -m vidcls.training.tune parity): LiteRT's integer kernels
# and the fake-quantized float replica differ by a grid step here and there, which the
# recurrent states carry from frame to frame.
TOLERANCE = 2.5  # max |logit difference| over 10 frames
pytestmark = pytest.mark.usefixtures("jax_compilation_cache")


def _frames(model: StreamModel, n: int) -> list[np.ndarray]:
    pre = Preprocessor(model.layout.height, model.layout.width)
    frames = media.read_frames(video("carving_ice_rpi.mp4"), 5.0)[:n]
    return [pre.from_array(f).copy() for f in frames]


@needs_shared
@pytest.mark.parametrize("path", [A0, CUSTOM], ids=["a0", "custom7"])
def test_replica_logits_match_litert_frame_by_frame(path):
    model = StreamModel(path, 1)
    stream = model.new_stream()
    images = _frames(model, 8)
    lite = np.array([stream.step(im).copy() for im in images])
    rep = stream_replica(path.read_bytes(), str(path)).run(images)
    assert rep.shape == lite.shape
    assert np.abs(lite - rep).max() < TOLERANCE
    assert (lite.argmax(1) == rep.argmax(1)).mean() >= 0.75
    assert np.ptp(rep, axis=0).max() > 0  # the replica follows the frames


@needs_shared
def test_replica_states_are_the_signatures_by_name():
    g = Graph(A0.read_bytes(), str(A0))
    r = StreamReplica(g)
    states = r.zero_states()
    assert set(states) == set(g.states) and len(states) == 43
    assert states["state_head_pool_frame_count"].dtype == np.int32


@needs_shared
def test_unknown_op_is_refused_naming_it_and_the_file(tmp_path):
    model = graph.load(A0.read_bytes())
    for code in model.operatorCodes:  # pretend the graph's SUM is an op the replica lacks
        if code.builtinCode == schema.BuiltinOperator.SUM:
            code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.REDUCE_MAX
    b = flatbuffers.Builder(4 << 20)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    with pytest.raises(VidclsError, match="REDUCE_MAX") as e:
        Replica(Graph(bytes(b.Output()), str(tmp_path / "odd.tflite")))
    assert "odd.tflite" in str(e.value)
