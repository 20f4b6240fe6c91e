"""The TFLite graph of a stream model: finding its head and replacing the classifier.

On the real shared models: the official int8 A0 (signature ``serving_default``, ReLU6 fused
into the head's first conv) and the 7-class community fine-tune (signature ``call``, swish as
LOGISTIC + MUL). Real decoder, real LiteRT, no mocks.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cli_here import run_here
from cli_run import stream_free_model
from conftest import A0, CUSTOM, needs_shared, video

from vidcls.errors import VidclsError
from vidcls.labels import embedded_labels
from vidcls.media import read_frames
from vidcls.model import StreamModel
from vidcls.preprocess import Preprocessor
from vidcls.training import graph
from vidcls.training.features import FeatureExtractor

pytestmark = needs_shared

CLIP = "carving_ice_android.mp4"  # 200 frames, 360x360
MODELS = {
    "a0": dict(path=A0, key="serving_default", classes=600),
    "custom": dict(path=CUSTOM, key="call", classes=7),
}


@pytest.fixture(scope="module")
def clip_frames() -> list[np.ndarray]:
    """Every decoded frame of the clip, RGB uint8 at its own size (both models take 172x172)."""
    return read_frames(video(CLIP))


def stream_logits(model_path: Path, frames: list[np.ndarray]) -> np.ndarray:
    """The logits after each frame, fed from a zero state: ``[frames, classes]``."""
    model = StreamModel(model_path)  # one LiteRT thread: the same logits, less CPU
    pre = Preprocessor(model.layout.height, model.layout.width)
    stream = model.new_stream()
    return np.array([stream.step(pre.from_array(f)).copy() for f in frames])


def text(name: bytes | str) -> str:
    """A flatbuffer string as text."""
    return name.decode() if isinstance(name, bytes) else name


def loaded(path: Path):
    model = graph.load(path.read_bytes())
    return model, graph.find_head(model, str(path))


def op_of(model, tensor: int):
    """The operator producing ``tensor`` in subgraph 0, and its name."""
    for op in model.subgraphs[0].operators:
        if tensor in list(op.outputs):
            return op, graph.op_name(model, op)
    return None, None


# -- finding the head --------------------------------------------------------------------


@pytest.mark.parametrize("name", MODELS)
def test_find_head_on_the_shared_models(name):
    spec = MODELS[name]
    model, head = loaded(spec["path"])
    sg = model.subgraphs[0]
    n = spec["classes"]
    assert head.signature_key == spec["key"]
    sig = next(s for s in model.signatureDefs if text(s.signatureKey) == spec["key"])
    logits_map = [m for m in sig.outputs if text(m.name) == "logits"]
    assert [m.tensorIndex for m in logits_map] == [head.logits]

    w, b = graph.classifier_weights(model, head)
    assert w.shape == (n, 2048) and b.shape == (n,)
    assert w.dtype == b.dtype == np.float64 and np.isfinite(w).all() and np.isfinite(b).all()
    # int8 per-channel symmetric weights: one scale per class, zero points 0, and each row's
    # largest stored value is the int8 extreme (that is what the scale was chosen from).
    wq = graph.quantization(model, head.weight)
    assert wq is not None and wq[0].shape == (n,) and not wq[1].any()
    raw = graph.tensor_array(model, head.weight).reshape(n, -1)
    assert raw.dtype == np.int8
    assert (np.abs(raw.astype(int)).max(axis=1) == 127).all()

    # The tail: the float logits, the int8 [1, N] they are dequantized from, and the conv's
    # own int8 [1, 1, 1, N] output, each ending in the class count.
    assert head.tail[0] == head.logits and len(head.tail) == 3
    assert [list(sg.tensors[t].shape) for t in head.tail] == [[1, n], [1, n], [1, 1, 1, n]]
    assert [graph.op_name(model, op_of(model, t)[0]) for t in head.tail] == [
        "DEQUANTIZE",
        "RESHAPE",
        "CONV_2D",
    ]
    assert op_of(model, head.tail[-1])[0] is sg.operators[head.classifier_op]
    scale, zero = graph.output_quantization(model, head)
    assert scale > 0 and -128 <= zero <= 127
    # The features: hidden [1, 1, 1, 2048] into the classifier, pooled [1, 1, 1, 480] into
    # the head conv before it.
    assert list(sg.tensors[head.hidden].shape) == [1, 1, 1, 2048]
    assert list(sg.tensors[head.pooled].shape) == [1, 1, 1, 480]
    assert list(sg.operators[head.classifier_op].inputs[:3]) == [
        head.hidden,
        head.weight,
        head.bias,
    ]


def test_a0_head_activation_is_relu6_fused_into_the_conv():
    schema = pytest.importorskip("ai_edge_litert.schema_py_generated")
    model, head = loaded(A0)
    op, name = op_of(model, head.hidden)
    assert name == "CONV_2D"
    assert op.builtinOptions.fusedActivationFunction == schema.ActivationFunctionType.RELU6
    assert op.inputs[0] == head.pooled


def test_custom_head_activation_is_swish_as_logistic_times_input():
    model, head = loaded(CUSTOM)
    mul, name = op_of(model, head.hidden)
    assert name == "MUL"
    producers = [op_of(model, t) for t in mul.inputs]
    names = sorted(n for _, n in producers)
    assert names == ["CONV_2D", "LOGISTIC"]
    conv = next(op for op, n in producers if n == "CONV_2D")
    logistic = next(op for op, n in producers if n == "LOGISTIC")
    assert list(logistic.inputs) == list(conv.outputs)  # x * sigmoid(x)
    assert conv.inputs[0] == head.pooled


def test_a_model_without_a_movinet_head_is_a_vidcls_error(tmp_path):
    path = stream_free_model(tmp_path / "relu.tflite")
    with pytest.raises(VidclsError, match="cannot find a MoViNet classification head") as e:
        graph.find_head(graph.load(path.read_bytes()), str(path))
    assert str(path) in str(e.value)
    with pytest.raises(VidclsError, match="classification head"):
        graph.replace_classifier(path.read_bytes(), np.zeros((2, 4)), np.zeros(2), path=str(path))
    with pytest.raises(VidclsError, match="not a MoViNet-style stream model"):
        FeatureExtractor(path)  # vetted as a stream model before its head is looked for


def test_weights_with_the_wrong_feature_count_are_refused():
    data = A0.read_bytes()
    with pytest.raises(ValueError, match="2048"):
        graph.replace_classifier(data, np.zeros((3, 480)), np.zeros(3))


# -- the acceptance check: the original head written back changes nothing ---------


@pytest.mark.parametrize("name", MODELS)
def test_writing_the_original_head_back_reproduces_the_logits(name, clip_frames, tmp_path):
    path = MODELS[name]["path"]
    data = path.read_bytes()
    model, head = loaded(path)
    w, b = graph.classifier_weights(model, head)
    out = tmp_path / "roundtrip.tflite"
    out.write_bytes(
        graph.replace_classifier(
            data, w, b, output_quant=graph.output_quantization(model, head), path=str(path)
        )
    )
    # The rewritten weights are the same int8 values with the same scales.
    model2, head2 = loaded(out)
    np.testing.assert_array_equal(
        graph.tensor_array(model2, head2.weight), graph.tensor_array(model, head.weight)
    )
    np.testing.assert_array_equal(
        graph.tensor_array(model2, head2.bias), graph.tensor_array(model, head.bias)
    )
    np.testing.assert_allclose(
        graph.quantization(model2, head2.weight)[0], graph.quantization(model, head.weight)[0]
    )

    original = stream_logits(path, clip_frames)
    rewritten = stream_logits(out, clip_frames)
    assert original.shape == rewritten.shape == (len(clip_frames), MODELS[name]["classes"])
    assert len(clip_frames) == 200
    diff = float(np.abs(original - rewritten).max())
    print(f"{name}: largest logit difference over {len(clip_frames)} frames: {diff:.3g}")
    assert diff <= 1e-4


# -- a new head -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", MODELS)
def test_a_new_three_class_head_computes_w_hidden_plus_b(name, clip_frames, tmp_path):
    path = MODELS[name]["path"]
    data = path.read_bytes()
    frames = clip_frames[:30]
    checkpoints = (8, 30)  # compare after these many frames
    extractor = FeatureExtractor(path)
    hidden = {k: extractor(frames[:k])[0].astype(np.float64) for k in checkpoints}
    assert all(h.shape == (2048,) for h in hidden.values())

    rng = np.random.default_rng(7)
    weight, bias = rng.normal(0, 0.1, (3, 2048)), rng.normal(0, 1.0, 3)
    expected = {k: weight @ h + bias for k, h in hidden.items()}
    lo = min(e.min() for e in expected.values()) - 1.0  # room on the output grid: no clamping
    hi = max(e.max() for e in expected.values()) + 1.0
    labels = ["alpha", "beta", "gamma"]
    out = tmp_path / "three.tflite"
    out.write_bytes(
        graph.replace_classifier(
            data, weight, bias, output_range=(lo, hi), labels=labels, path=str(path)
        )
    )

    # It loads as a stream model with the original's inputs, states and signature.
    original, written = StreamModel(path), StreamModel(out)
    assert written.layout.num_classes == 3
    assert written.layout.signature_key == original.layout.signature_key
    assert written.layout.image == original.layout.image
    assert written.layout.states == original.layout.states
    assert written.layout.logits.name == original.layout.logits.name
    assert written.layout.logits.shape == (1, 3)
    assert embedded_labels(out) == labels

    # What was written: the weights quantized per class, symmetric, within half a step.
    model2, head2 = loaded(out)
    w_stored, b_stored = graph.classifier_weights(model2, head2)
    w_scale = graph.quantization(model2, head2.weight)[0]
    b_scale = graph.quantization(model2, head2.bias)[0]
    in_scale = graph.quantization(model2, head2.hidden)[0][0]
    out_scale, _ = graph.output_quantization(model2, head2)
    np.testing.assert_allclose(w_scale, np.abs(weight).max(axis=1) / 127, rtol=1e-6)
    np.testing.assert_allclose(b_scale, in_scale * w_scale, rtol=1e-6)
    assert (np.abs(w_stored - weight) <= w_scale[:, None] / 2 * (1 + 1e-6)).all()
    assert (np.abs(b_stored - bias) <= b_scale / 2 * (1 + 1e-6)).all()
    assert out_scale == pytest.approx((hi - min(lo, 0.0)) / 255, rel=1e-6)

    each = stream_logits(out, frames)
    got = {k: each[k - 1].astype(np.float64) for k in checkpoints}

    for k in checkpoints:
        h = hidden[k]
        # The int8 classifier computes the stored weights times the (int8) hidden features
        # exactly in int32, then rounds once onto the output grid: at most half an output step
        # from W_stored @ h + b_stored. The requantization multiplier is a 31-bit fixed-point
        # number, so its own error is far below 1% of a step.
        exact_stored = w_stored @ h + b_stored
        tight = out_scale / 2 * 1.01
        # Against the float weights asked for, add the weight quantization: each weight is
        # within half its step, so the sum moves by at most w_scale/2 * |h|_1 (and the bias
        # by half its step).
        bound = tight + w_scale / 2 * np.abs(h).sum() + b_scale / 2
        d_stored = np.abs(got[k] - exact_stored)
        d_float = np.abs(got[k] - expected[k])
        print(
            f"{name} after {k} frames: logits {np.round(got[k], 4)}, expected "
            f"{np.round(expected[k], 4)}; |diff| {d_float.max():.4f} (bound "
            f"{bound.max():.4f}), vs stored weights {d_stored.max():.4f} (bound {tight:.4f})"
        )
        assert (d_stored <= tight).all(), (d_stored, tight)
        assert (d_float <= bound).all(), (d_float, bound)
        # The bound means something: far smaller than the spread of the logits.
        assert bound.max() < 0.25 * np.ptp(expected[k])


def test_classify_uses_the_labels_written_into_the_model(tmp_path, capfd):
    model, head = loaded(A0)
    rng = np.random.default_rng(3)
    labels = ["first class", "second class", "third class"]
    out = tmp_path / "written.tflite"
    out.write_bytes(
        graph.replace_classifier(
            A0.read_bytes(), rng.normal(0, 0.1, (3, 2048)), rng.normal(0, 1, 3), labels=labels
        )
    )
    assert not (tmp_path / "written.labels.txt").exists() and not (tmp_path / "labels.txt").exists()
    r = run_here(
        capfd, "classify", video("carving_ice_rpi.mp4"), "--model", out, "--format", "json"
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    top = doc["summary"]["top"]
    assert sorted(c["label"] for c in top) == sorted(labels)
    assert all(labels[c["index"]] == c["label"] for c in top)
    assert doc["frames"] and all(
        {c["label"] for c in f["top"]} <= set(labels) for f in doc["frames"]
    )


def test_a_written_model_runs_in_the_official_examples_runtime(clip_frames, tmp_path):
    """The Android and Raspberry Pi examples use the Interpreter's signature runner: the written
    model must run there, giving what vidcls' CompiledModel engine gives."""
    from ai_edge_litert.interpreter import Interpreter

    model, head = loaded(A0)
    weight, bias = graph.classifier_weights(model, head)
    out = tmp_path / "four.tflite"
    out.write_bytes(
        graph.replace_classifier(A0.read_bytes(), weight[:4], bias[:4], output_range=(-20, 20))
    )
    frames = clip_frames[:12]
    ours = stream_logits(out, frames)
    it = Interpreter(model_path=str(out))
    runner = it.get_signature_runner("serving_default")
    details = runner.get_input_details()
    states = {n: np.zeros(d["shape"], d["dtype"]) for n, d in details.items() if n != "image"}
    pre = Preprocessor(172, 172)
    for f, expected in zip(frames, ours, strict=True):
        out_ = runner(image=pre.from_array(f)[None, None], **states)
        logits = out_.pop("logits")
        states = out_
        assert logits.shape == (1, 4)
        np.testing.assert_array_equal(logits[0], expected)
