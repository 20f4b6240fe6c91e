"""Fine-tuning the last blocks: a tiny run changes weights; the written int8 file loads in
LiteRT with the base's signature and states and follows the replica."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import A0, needs_shared, video
from jax_cache import jax_compilation_cache  # noqa: F401

pytest.importorskip("jax", reason="jax not installed (the tune extra)")

from vidcls import media  # noqa: E402
from vidcls.model import StreamModel  # noqa: E402
from vidcls.preprocess import Preprocessor  # noqa: E402
from vidcls.training.dataset import Clip  # noqa: E402
from vidcls.training.tune.blocks import BoundaryExtractor, cut  # noqa: E402
from vidcls.training.tune.finetune import check_written, write_tuned  # noqa: E402
from vidcls.training.tune.replica import Graph, stream_replica  # noqa: E402
from vidcls.training.tune.tuner import Sequences, Settings, Tuner, run_epochs  # noqa: E402

TOLERANCE = 2.5  # as tests/test_tune_replica.py: int8 kernels vs the fake-quantized replica
pytestmark = pytest.mark.usefixtures("jax_compilation_cache")


@needs_shared
def test_one_block_two_steps_change_weights_and_write_back(tmp_path):
    data = A0.read_bytes()
    c = cut(Graph(data, str(A0)), 1)
    frames = media.read_frames(video("carving_ice_rpi.mp4"), 5.0)[:6]
    ext = BoundaryExtractor(data, c)
    rows = [ext(frames[:3]), ext(frames[3:]), ext(frames[::-1][:3]), ext(frames[1:4])]
    x = {t: np.stack([r[0][t] for r in rows]) for t in c.boundary}
    s = Sequences(
        x,
        np.ones((4, 3), bool),
        np.stack([r[1] for r in rows]),
        np.array([0, 1, 0, 1]),
        np.array([[0, 0], [1, 0], [2, 0], [3, 0]]),
    )
    tuner = Tuner(c)
    p0 = tuner.init_params()
    p1 = run_epochs(tuner, p0, s, np.ones(4, bool), Settings(batch=2, lr=1e-2), 0, 1)
    changed = [t for t in p0 if not np.array_equal(np.asarray(p0[t]), np.asarray(p1[t]))]
    assert len(changed) == len(p0)  # every conv of the block and head moved
    out = tmp_path / "tuned.tflite"
    out.write_bytes(write_tuned(tuner, p1, s))

    base, tuned = StreamModel(A0, 1), StreamModel(out, 1)
    assert tuned.layout == base.layout  # same signature, image, states, logits
    pre = Preprocessor(base.layout.height, base.layout.width)
    images = [pre.from_array(f).copy() for f in frames]
    stream = tuned.new_stream()
    lite = np.array([stream.step(im).copy() for im in images])
    stream = base.new_stream()
    before = np.array([stream.step(im).copy() for im in images])
    # The replica check_written runs below: its step is compiled once, for both.
    rep = stream_replica(out.read_bytes(), str(out)).run(images)
    assert np.abs(lite - rep).max() < TOLERANCE  # the written file is what was trained
    assert np.abs(lite - before).max() > TOLERANCE  # and it is not the base model
    # What fine_tune checks after writing, on a whole clip: within the same tolerance.
    clip = Clip(video("carving_ice_rpi.mp4"), "carving ice", 0)
    assert 0 < check_written(out.read_bytes(), [clip], 5.0, str(out)) < TOLERANCE
