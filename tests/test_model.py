"""Signature discovery and the stream engine, on the real shared models."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import A0, CUSTOM, needs_shared

from vidcls.errors import VidclsError
from vidcls.model import StreamModel, TensorSpec, find_layout

pytestmark = needs_shared


def _frames(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.random((172, 172, 3), dtype=np.float32) for _ in range(n)]


@pytest.mark.parametrize("backend", ["compiled", "interpreter"])
def test_discovers_a0_layout(backend):
    m = StreamModel(A0, backend=backend)
    lay = m.layout
    assert m.backend == backend
    assert lay.signature_key == "serving_default"
    assert lay.image.name == "image" and lay.image.shape == (1, 1, 172, 172, 3)
    assert (lay.height, lay.width, lay.num_classes) == (172, 172, 600)
    assert lay.logits.name == "logits"
    assert len(lay.states) == 43
    dtypes = [s.dtype for s in lay.states]
    assert dtypes.count(np.dtype(np.float32)) == 27 and dtypes.count(np.dtype(np.int32)) == 16
    assert set(lay.inputs) == {s.name for s in lay.states} | {"image"}
    assert set(lay.outputs) == {s.name for s in lay.states} | {"logits"}


@pytest.mark.parametrize("backend", ["compiled", "interpreter"])
def test_discovers_custom_model_with_call_signature(backend):
    lay = StreamModel(CUSTOM, backend=backend).layout
    assert lay.signature_key == "call"
    assert lay.num_classes == 7
    assert len(lay.states) == 43


def test_backends_agree_frame_by_frame():
    frames = _frames(6)
    a = StreamModel(A0, backend="compiled").new_stream()
    b = StreamModel(A0, backend="interpreter").new_stream()
    for f in frames:
        np.testing.assert_array_equal(a.step(f).copy(), b.step(f).copy())


@pytest.mark.parametrize("backend", ["compiled", "interpreter"])
def test_state_is_carried_and_reset_repeats_first_frame(backend):
    frames = _frames(5, seed=1)
    s = StreamModel(A0, backend=backend).new_stream()
    first = [s.step(f).copy() for f in frames]
    # State is carried: the same frame fed twice does not give the same logits.
    assert not np.array_equal(first[0], first[1])
    s.reset()
    assert s.frames == 0
    again = s.step(frames[0]).copy()
    np.testing.assert_array_equal(again, first[0])
    # The rest of the sequence repeats too (both state sets were cleared).
    for f, expected in zip(frames[1:], first[1:], strict=True):
        np.testing.assert_array_equal(s.step(f), expected)


@pytest.mark.parametrize("backend", ["compiled", "interpreter"])
def test_read_and_write_the_state_the_next_step_reads(backend):
    model = StreamModel(A0, backend=backend)
    frames = _frames(3, seed=5)
    s = model.new_stream()
    s.step(frames[0])
    name = "state_head_pool_frame_count"
    assert s.read_state(name).tolist() == [1]
    saved = {spec.name: s.read_state(spec.name) for spec in model.layout.states}
    expected = s.step(frames[1]).copy()
    s.reset()
    assert s.read_state(name).tolist() == [0]
    for key, value in saved.items():  # the state after frame 0, put back by hand
        s.write_state(key, value)
    np.testing.assert_array_equal(s.step(frames[1]), expected)
    out = np.empty((1,), np.int32)
    assert s.read_state(name, out) is out and out.tolist() == [2]
    s.reset()  # a write is a copy: the zeros every reset starts from stay zero
    s.write_state(name, np.array([7], np.int32))
    s.reset()
    assert s.read_state(name).tolist() == [0] and model.zeros[name].tolist() == [0]
    with pytest.raises(KeyError, match="no state named"):
        s.read_state("nope")
    with pytest.raises(ValueError, match=name):
        s.read_state(name, np.empty((2,), np.int32))


def test_interleaved_streams_do_not_mix(a0_model):
    xs, ys = _frames(7, seed=2), _frames(7, seed=3)
    alone_x = [r.copy() for r in map(a0_model.new_stream().step, xs)]
    sy = a0_model.new_stream()
    alone_y = [sy.step(y).copy() for y in ys]
    s1, s2 = a0_model.new_stream(), a0_model.new_stream()
    for x, y, ex, ey in zip(xs, ys, alone_x, alone_y, strict=True):
        np.testing.assert_array_equal(s1.step(x), ex)
        np.testing.assert_array_equal(s2.step(y), ey)


def test_stream_steps_from_threads_match_sequential(a0_model):
    import threading

    xs = _frames(4, seed=4)
    expected = [a0_model.new_stream().step(x).copy() for x in xs[:1]]
    results = {}

    def run(i):
        s = a0_model.new_stream()
        results[i] = [s.step(x).copy() for x in xs][0]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(4):
        np.testing.assert_array_equal(results[i], expected[0])


def test_not_a_tflite_file(tmp_path):
    p = tmp_path / "model.tflite"
    p.write_text("hello")
    with pytest.raises(VidclsError, match="not a TFLite model") as e:
        StreamModel(p)
    assert str(p) in str(e.value)


def test_missing_model(tmp_path):
    with pytest.raises(VidclsError, match="not found"):
        StreamModel(tmp_path / "nope.tflite")


def test_truncated_model_is_a_clear_error(tmp_path):
    p = tmp_path / "cut.tflite"
    p.write_bytes(A0.read_bytes()[:100_000])
    with pytest.raises(VidclsError) as e:
        StreamModel(p)
    assert str(p) in str(e.value)


def _spec(name, shape, dtype=np.float32):
    return TensorSpec(name, tuple(shape), np.dtype(dtype))


def test_find_layout_rejects_non_stream_models(tmp_path):
    image = _spec("image", (1, 1, 172, 172, 3))
    logits = _spec("logits", (1, 600))
    state = _spec("state_a", (1, 2, 4, 4, 8))
    # A plain image classifier: no states.
    with pytest.raises(VidclsError, match="no state inputs"):
        find_layout({"serving_default": ({"image": image}, {"logits": logits})}, tmp_path)
    # A clip model (several frames, no state).
    clip = _spec("image", (1, 8, 172, 172, 3))
    with pytest.raises(VidclsError, match="not a MoViNet-style stream model"):
        find_layout(
            {"s": ({"image": clip, "state_a": state}, {"logits": logits, "state_a": state})},
            tmp_path,
        )
    # A state whose output shape differs from its input.
    bad = _spec("state_a", (1, 1, 4, 4, 8))
    with pytest.raises(VidclsError, match="state state_a"):
        find_layout(
            {"s": ({"image": image, "state_a": state}, {"logits": logits, "state_a": bad})},
            tmp_path,
        )


def test_find_layout_prefers_a_valid_signature_whatever_its_key(tmp_path):
    image = _spec("frame", (1, 1, 224, 224, 3))
    logits = _spec("scores", (1, 10))
    state = _spec("s0", (1, 3))
    sigs = {
        "encode": ({"x": _spec("x", (1, 4))}, {"y": _spec("y", (1, 4))}),
        "step": ({"s0": state, "frame": image}, {"scores": logits, "s0": state}),
    }
    lay = find_layout(sigs, tmp_path)
    assert (lay.signature_key, lay.image.name, lay.logits.name) == ("step", "frame", "scores")
    assert (lay.height, lay.width, lay.num_classes) == (224, 224, 10)
