"""Clip features on the stream engine: the head's hidden and pooled tensors as extra outputs of
an ordinary stream, equal to the official runtime's, and their cache. Real A0, real clip."""

from __future__ import annotations

import os

import numpy as np
import pytest
from conftest import A0, needs_shared, video

from vidcls.errors import VidclsError
from vidcls.media import read_frames
from vidcls.model import StreamModel
from vidcls.preprocess import Preprocessor
from vidcls.training import graph
from vidcls.training.augment import View
from vidcls.training.features import (
    HIDDEN,
    POOLED,
    FeatureCache,
    FeatureExtractor,
    dequantize,
    view_samples,
)

pytestmark = needs_shared
EXTRA = (HIDDEN, POOLED)


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    """The first 12 frames of a real clip, RGB uint8."""
    return read_frames(video("carving_ice_rpi.mp4"))[:12]


@pytest.fixture(scope="module")
def featured(tmp_path_factory):
    """A0 with the head's features as extra signature outputs, on disk; and its head."""
    data = A0.read_bytes()
    head = graph.find_head(graph.load(data), str(A0))
    path = tmp_path_factory.mktemp("featured") / "a0_features.tflite"
    path.write_bytes(
        graph.with_outputs(data, head.signature_key, {HIDDEN: head.hidden, POOLED: head.pooled})
    )
    return path, head


def official_loop(path, head, frames) -> dict[str, np.ndarray]:
    """The official examples' loop (Interpreter signature runner, state dicts copied per
    frame): the extra outputs after the last frame."""
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(path)).get_signature_runner(head.signature_key)
    details = runner.get_input_details()
    states = {n: np.zeros(d["shape"], d["dtype"]) for n, d in details.items() if n != "image"}
    pre = Preprocessor(172, 172)
    for f in frames:
        out = runner(image=pre.from_array(f)[None, None], **states)
        extra = {n: out.pop(n) for n in EXTRA}
        out.pop("logits")
        states = out
    return extra


def test_features_equal_the_official_runtimes(featured, frames):
    """The engine's features are the ones the Interpreter loop computed before (so features
    cached by earlier versions stay valid)."""
    path, head = featured
    extractor = FeatureExtractor(A0, threads=2)
    hidden, pooled = extractor(frames)
    assert hidden.shape == (2048,) and pooled.shape == (480,)
    assert hidden.dtype == pooled.dtype == np.float32
    reference = official_loop(path, head, frames)
    model = graph.load(A0.read_bytes())
    np.testing.assert_array_equal(
        hidden, dequantize(reference[HIDDEN], graph.quantization(model, head.hidden))
    )
    np.testing.assert_array_equal(
        pooled, dequantize(reference[POOLED], graph.quantization(model, head.pooled))
    )
    assert np.ptp(hidden) > 0 and (hidden >= 0).all()  # ReLU6 output, not all zero
    # A second call starts from a zero state again: the same clip, the same features.
    np.testing.assert_array_equal(extractor(frames)[0], hidden)
    assert not np.array_equal(extractor(frames[:5])[0], hidden)


@pytest.mark.parametrize("backend", ["compiled", "interpreter"])
def test_extra_outputs_on_both_backends(featured, frames, backend):
    path, head = featured
    plain = StreamModel(A0, backend=backend)
    model = StreamModel(path, backend=backend, extra_outputs=EXTRA)
    assert [s.name for s in model.layout.extras] == list(EXTRA)
    assert model.layout.extras[0].shape == (1, 1, 1, 2048)
    assert model.layout.num_classes == 600 and model.layout.states == plain.layout.states
    pre = Preprocessor(172, 172)
    a, b = plain.new_stream(), model.new_stream()
    for f in frames[:6]:
        image = pre.from_array(f)
        np.testing.assert_array_equal(a.step(image), b.step(image))  # the logits are untouched
    hidden = b.output(HIDDEN)
    assert hidden.shape == (1, 1, 1, 2048) and hidden.dtype == np.int8
    reference = official_loop(path, head, frames[:6])
    np.testing.assert_array_equal(hidden, reference[HIDDEN].reshape(hidden.shape))
    with pytest.raises(KeyError):
        b.output("logits")


def test_an_extra_output_the_model_does_not_have_is_a_vidcls_error():
    with pytest.raises(VidclsError, match="no output named nothing_here") as e:
        StreamModel(A0, extra_outputs=("nothing_here",))
    assert str(A0) in str(e.value)


def test_the_feature_cache(tmp_path):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"not decoded here")
    cache = FeatureCache(tmp_path / "features")
    key = cache.key("digest", clip, View(), 5.0)
    assert cache.get(key) is None
    hidden, pooled = np.arange(4, dtype=np.float32), np.ones(2, np.float32)
    cache.put(key, hidden, pooled)
    got = cache.get(key)
    np.testing.assert_array_equal(got[0], hidden)
    np.testing.assert_array_equal(got[1], pooled)
    assert [p.name for p in (tmp_path / "features").iterdir()] == [f"{key}.npz"]  # no temp left
    # The key changes with the model, the view, the rate and the clip file.
    others = {
        cache.key("other", clip, View(), 5.0),
        cache.key("digest", clip, View(flip=True), 5.0),
        cache.key("digest", clip, View(), None),
    }
    assert key not in others and len(others) == 3
    # ... and with the working size clips are decoded at, and the window.
    assert cache.key("digest", clip, View(), 5.0, 344) != cache.key(
        "digest", clip, View(), 5.0, 256
    )
    assert cache.key("digest", clip, View(), 5.0, 344, 4.0) != cache.key(
        "digest", clip, View(), 5.0, 344, 2.0
    )
    os.utime(clip, ns=(0, 0))
    assert cache.key("digest", clip, View(), 5.0) != key
    # A damaged entry reads as missing.
    (tmp_path / "features" / f"{key}.npz").write_bytes(b"garbage")
    assert cache.get(key) is None


def test_windows_are_runs_of_the_window_length_each_from_a_zero_state(frames):
    extractor = FeatureExtractor(A0, 1)
    assert extractor.short_side == 344  # twice the 172 px input
    hidden, pooled = extractor.samples(frames, 5)  # 12 frames: the clip, then frames 0-4, 5-9
    assert hidden.shape == (3, 2048) and pooled.shape == (3, 480)
    np.testing.assert_array_equal(hidden[0], extractor(frames)[0])
    np.testing.assert_array_equal(hidden[1], extractor(frames[:5])[0])
    np.testing.assert_array_equal(pooled[2], extractor(frames[5:10])[1])
    assert len(extractor.samples(frames, 12)[0]) == 1  # a window as long as the clip: the clip
    assert len(extractor.samples(frames, 0)[0]) == 1  # no window
    # An augmented view longer than a window: one window of it, somewhere in the clip.
    (row,) = view_samples(extractor, frames, View(flip=True), 5)[0]
    places = [s for s in range(8) if np.array_equal(row, extractor(frames[s : s + 5])[0])]
    assert len(places) == 1
    assert len(view_samples(extractor, frames, View(flip=True), 12)[0]) == 1  # whole
    np.testing.assert_array_equal(view_samples(extractor, frames, View(), 5)[0], hidden)
    only = extractor.samples(frames, 5, whole=False)[0]  # the windows alone
    np.testing.assert_array_equal(only, hidden[1:])
    assert len(extractor.samples(frames, 0, whole=False)[0]) == 1  # no window: the clip
