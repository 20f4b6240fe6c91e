"""The TFLite graph of a stream model: find its classification head, replace the classifier
(the head's last conv) or both head convs, add outputs, pack files into it.

The MoViNet head, after the cumulative global average pool, is: 1x1 conv (to 2048, ReLU6 in
the int8 A0) -> 1x1 conv to the classes -> reshape to ``[1, N]`` logits. Walking back from the
logits output through reshapes and (de)quantizations finds the classifier conv; its input is
the *hidden* feature tensor; the conv before it takes the *pooled* features. Replacing the
classifier rewrites that conv's weights and bias (int8 per-channel, as the original) and the
class count in every tensor and shape constant after it: inputs, states and signature stay.
Uses the flatbuffer schema that LiteRT ships; no TensorFlow.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema

from ..errors import VidclsError

_PASS_THROUGH = {"RESHAPE", "SQUEEZE", "DEQUANTIZE", "QUANTIZE"}
# Between the two head convs: the activation (ReLU6 fused in the int8 A0; swish as
# LOGISTIC + MUL, or HARD_SWISH, in other exports).
_ACTIVATIONS = _PASS_THROUGH | {"HARD_SWISH", "RELU", "RELU6", "LOGISTIC", "MUL", "TANH"}
_OP_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
_NUMPY = {
    schema.TensorType.FLOAT32: np.float32,
    schema.TensorType.INT8: np.int8,
    schema.TensorType.INT32: np.int32,
    schema.TensorType.FLOAT16: np.float16,
}


@dataclass
class HeadTensors:
    """Where the head sits in subgraph 0: its tensor and op indices."""

    signature_key: str
    logits: int  # the signature's logits output
    classifier_op: int  # the last CONV_2D / FULLY_CONNECTED
    hidden: int  # its data input: features the classifier sees
    weight: int
    bias: int
    pooled: int  # the data input of the conv before it
    tail: list[int]  # tensors after the classifier whose last dimension is the class count


def load(data: bytes) -> schema.ModelT:
    return schema.ModelT.InitFromObj(schema.Model.GetRootAs(data, 0))


def op_name(model: schema.ModelT, op) -> str:
    code = model.operatorCodes[op.opcodeIndex]
    return _OP_NAMES.get(max(code.builtinCode, code.deprecatedBuiltinCode), "?")


def find_head(model: schema.ModelT, path: str = "model") -> HeadTensors:
    """Locate the classifier of a MoViNet-style stream model; VidclsError if there is none."""
    sg = model.subgraphs[0]
    producer = {t: i for i, op in enumerate(sg.operators) for t in op.outputs}
    for sig in model.signatureDefs or []:
        inputs = {m.name for m in sig.inputs}
        outs = [m for m in sig.outputs if m.name not in inputs]
        if len(outs) != 1 or sig.subgraphIndex != 0:
            continue
        logits = outs[0].tensorIndex
        tail, t = [], logits
        while t in producer and op_name(model, sg.operators[producer[t]]) in _PASS_THROUGH:
            tail.append(t)
            t = sg.operators[producer[t]].inputs[0]
        if t not in producer:
            continue
        cls_op = producer[t]
        if op_name(model, sg.operators[cls_op]) not in ("CONV_2D", "FULLY_CONNECTED"):
            continue
        tail.append(t)
        hidden, weight, bias = sg.operators[cls_op].inputs[:3]
        p = hidden
        while p in producer and op_name(model, sg.operators[producer[p]]) in _ACTIVATIONS:
            p = sg.operators[producer[p]].inputs[0]
        if p not in producer or op_name(model, sg.operators[producer[p]]) != "CONV_2D":
            continue
        pooled = sg.operators[producer[p]].inputs[0]
        return HeadTensors(
            _decode(sig.signatureKey), logits, cls_op, hidden, weight, bias, pooled, tail
        )
    raise VidclsError("cannot find a MoViNet classification head in this model", path)


def _decode(name: bytes | str) -> str:
    return name.decode() if isinstance(name, bytes) else name


def tensor_array(model: schema.ModelT, index: int) -> np.ndarray:
    """A constant tensor's stored values (raw: int8 stays int8)."""
    t = model.subgraphs[0].tensors[index]
    raw = model.buffers[t.buffer].data
    return np.frombuffer(bytes(np.asarray(raw, np.uint8)), _NUMPY[t.type]).reshape(t.shape)


def quantization(model: schema.ModelT, index: int) -> tuple[np.ndarray, np.ndarray] | None:
    q = model.subgraphs[0].tensors[index].quantization
    if q is None or q.scale is None or len(q.scale) == 0:
        return None
    return np.asarray(q.scale, np.float64), np.asarray(q.zeroPoint, np.int64)


def classifier_weights(model: schema.ModelT, head: HeadTensors) -> tuple[np.ndarray, np.ndarray]:
    """The classifier's float weight ``[N, C]`` and bias ``[N]``."""
    w = tensor_array(model, head.weight).astype(np.float64)
    b = tensor_array(model, head.bias).astype(np.float64)
    wq = quantization(model, head.weight)
    if wq is not None:
        w = w * wq[0].reshape(-1, *([1] * (w.ndim - 1)))
        b = b * quantization(model, head.bias)[0]
    return w.reshape(w.shape[0], -1), b


def output_quantization(model: schema.ModelT, head: HeadTensors) -> tuple[float, int] | None:
    q = quantization(model, head.tail[-1])
    return None if q is None else (float(q[0][0]), int(q[1][0]))


def replace_classifier(
    data: bytes,
    weight: np.ndarray,
    bias: np.ndarray,
    *,
    output_range: tuple[float, float] | None = None,
    output_quant: tuple[float, int] | None = None,
    labels: list[str] | None = None,
    path: str = "model",
) -> bytes:
    """A new .tflite: ``data`` with its classifier set to ``weight [N, C]`` and ``bias [N]``.

    For an int8 classifier the weights are quantized per output channel (symmetric, as the
    original) and the logits' int8 grid is ``output_quant`` (scale, zero point) or fitted to
    ``output_range``. ``labels`` are packed into the file as ``labels.txt``, the way TFLite
    metadata packs associated files.
    """
    model = load(data)
    head = find_head(model, path)
    _set_classifier(model, head, weight, bias, output_range, output_quant)
    return _pack(model, len(data), labels)


def replace_head(
    data: bytes,
    first: tuple[np.ndarray, np.ndarray],
    ranges: dict[int, tuple[float, float]],
    weight: np.ndarray,
    bias: np.ndarray,
    *,
    output_range: tuple[float, float] | None = None,
    labels: list[str] | None = None,
    path: str = "model",
) -> bytes:
    """A new .tflite: ``data`` with both head convs replaced: the first conv's weight ``[H, P]``
    and bias ``[H]`` (``first``), the int8 range of each tensor between it and the classifier
    (``ranges``: tensor index -> observed (min, max), see :func:`find_first_conv`), and the
    classifier as in :func:`replace_classifier`. Same ops, shapes, inputs and states."""
    model = load(data)
    head = find_head(model, path)
    conv = find_first_conv(model, head, path)
    w1, b1 = first
    if tuple(w1.shape) != (conv.hidden_size, conv.pooled_size):
        raise ValueError(f"first conv is {conv.hidden_size}x{conv.pooled_size}, got {w1.shape}")
    _set_conv(model, conv.op_inputs, w1, b1)
    for t, (lo, hi) in ranges.items():
        q = model.subgraphs[0].tensors[t].quantization
        if q is not None and q.scale is not None and len(q.scale):
            scale, zero_point = asymmetric_grid(lo, hi)
            q.scale, q.zeroPoint = [scale], [zero_point]
            q.min = q.max = None
    _set_classifier(model, head, weight, bias, output_range, None)
    return _pack(model, len(data), labels)


@dataclass
class FirstConv:
    """The head's first 1x1 conv (pooled -> hidden) and the tensors up to the classifier."""

    op_inputs: tuple[int, int, int]  # its data input (the pooled features), weight, bias
    activation: str  # the whole activation: relu6, relu, swish, hard_swish or none
    chain: list[tuple[int, str]]  # (tensor, what it holds: pre, act, sigmoid) conv out .. hidden
    hidden_size: int
    pooled_size: int


def find_first_conv(model: schema.ModelT, head: HeadTensors, path: str = "model") -> FirstConv:
    """The conv before the classifier, with its activation; VidclsError if the ops between
    them are not an activation this module can retrain."""
    sg = model.subgraphs[0]
    producer = {t: i for i, op in enumerate(sg.operators) for t in op.outputs}
    names, t = [], head.hidden
    while t in producer and op_name(model, sg.operators[producer[t]]) != "CONV_2D":
        op = sg.operators[producer[t]]
        names.append((op_name(model, op), t))
        if names[-1][0] == "MUL" and len(op.inputs) == 2:  # swish: x * sigmoid(x)
            gate = [
                i
                for i in op.inputs
                if i in producer and op_name(model, sg.operators[producer[i]]) == "LOGISTIC"
            ]
            if len(gate) == 1 and sg.operators[producer[gate[0]]].inputs[0] in op.inputs:
                names.append(("LOGISTIC", gate[0]))
                t = sg.operators[producer[gate[0]]].inputs[0]
                continue
        t = op.inputs[0]
    if t not in producer:
        raise VidclsError("cannot retrain this model's head: no first conv", path)
    conv = sg.operators[producer[t]]
    fused = getattr(conv.builtinOptions, "fusedActivationFunction", 0) or 0
    kinds = [n for n, _ in reversed(names) if n not in _PASS_THROUGH]
    acts = {(): {0: "none", 1: "relu", 3: "relu6"}.get(fused), ("RELU6",): "relu6"}
    acts |= {("RELU",): "relu", ("HARD_SWISH",): "hard_swish", ("LOGISTIC", "MUL"): "swish"}
    activation = acts.get(tuple(kinds)) if not kinds or fused == 0 else None
    if activation is None:
        raise VidclsError("cannot retrain this model's head: unknown activation", path)
    chain = [(t, "act" if fused else "pre")]
    for name, tensor in reversed(names):
        kind = chain[-1][1] if name in _PASS_THROUGH else "act"
        chain.append((tensor, "sigmoid" if name == "LOGISTIC" else kind))
    w = sg.tensors[conv.inputs[1]].shape
    return FirstConv(tuple(conv.inputs[:3]), activation, chain, int(w[0]), int(w[-1]))


def first_conv_weights(model: schema.ModelT, conv: FirstConv) -> tuple[np.ndarray, np.ndarray]:
    """The first conv's float weight ``[H, P]`` and bias ``[H]``."""
    _, wi, bi = conv.op_inputs
    w = tensor_array(model, wi).astype(np.float64)
    b = tensor_array(model, bi).astype(np.float64)
    wq = quantization(model, wi)
    if wq is not None:
        w = w * wq[0].reshape(-1, *([1] * (w.ndim - 1)))
        b = b * quantization(model, bi)[0]
    return w.reshape(w.shape[0], -1), b


def asymmetric_grid(lo: float, hi: float) -> tuple[float, int]:
    """int8 (scale, zero point) covering ``[lo, hi]`` and 0."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    scale = max(hi - lo, 1e-6) / 255.0
    return scale, int(np.clip(round(-128 - lo / scale), -128, 127))


def _set_conv(model, inputs: tuple[int, ...], weight: np.ndarray, bias: np.ndarray) -> None:
    """Conv ``inputs`` (data, weight, bias) get ``weight [N, C]`` and ``bias [N]``: int8 per
    output channel (symmetric) and int32 bias at input scale x weight scale when the
    original is quantized, else in the original's float type."""
    sg = model.subgraphs[0]
    data_t, wi, bi = inputs
    wt, bt = sg.tensors[wi], sg.tensors[bi]
    n = weight.shape[0]
    shape = [n, *list(wt.shape[1:])]
    if quantization(model, wi) is None:
        _set_const(model, wi, weight.astype(_NUMPY[wt.type]).reshape(shape))
        _set_const(model, bi, bias.astype(_NUMPY[bt.type]))
        return
    in_scale = quantization(model, data_t)[0][0]
    w_scale = np.maximum(np.abs(weight).max(axis=1), 1e-12) / 127.0
    w_q = np.clip(np.round(weight / w_scale[:, None]), -127, 127).astype(np.int8)
    b_scale = in_scale * w_scale
    b_q = np.clip(np.round(bias / b_scale), -(2**31), 2**31 - 1).astype(np.int32)
    _set_const(model, wi, w_q.reshape(shape), w_scale, np.zeros(n, np.int64))
    _set_const(model, bi, b_q, b_scale, np.zeros(n, np.int64))


def _set_classifier(model, head, weight, bias, output_range, output_quant) -> None:
    """The classifier set to ``weight``/``bias``, its logits' grid, and the class count."""
    sg = model.subgraphs[0]
    c = weight.shape[1]
    if sg.tensors[head.weight].shape[-1] != c:
        raise ValueError(
            f"classifier takes {sg.tensors[head.weight].shape[-1]} features, the weights have {c}"
        )
    _set_conv(model, (head.hidden, head.weight, head.bias), weight, bias)
    if quantization(model, head.weight) is not None:
        if output_quant is None:
            output_quant = asymmetric_grid(*(output_range or (-20.0, 20.0)))
        for t in head.tail:
            if quantization(model, t) is not None:
                q = sg.tensors[t].quantization
                q.scale, q.zeroPoint = [float(output_quant[0])], [int(output_quant[1])]
    _set_class_count(model, head, weight.shape[0])


def _pack(model: schema.ModelT, size: int, labels: list[str] | None) -> bytes:
    """``model`` serialized (with ``labels`` packed in, if given)."""
    builder = flatbuffers.Builder(size + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    out = bytes(builder.Output())
    return out if labels is None else _with_labels(out, labels)


def _set_const(model, index, values, scale=None, zero_point=None) -> None:
    """Give tensor ``index`` its own buffer holding ``values`` (and per-channel quantization)."""
    sg = model.subgraphs[0]
    t = sg.tensors[index]
    old = t.buffer
    buf = schema.BufferT()
    buf.data = np.frombuffer(np.ascontiguousarray(values).tobytes(), np.uint8)
    model.buffers.append(buf)
    t.buffer = len(model.buffers) - 1
    if old > 0 and not any(x.buffer == old for x in sg.tensors):
        model.buffers[old].data = None  # drop the replaced weights from the file
    t.shape = np.array(values.shape, np.int32)
    if t.shapeSignature is not None:
        t.shapeSignature = np.array(values.shape, np.int32)
    if scale is not None:
        q = t.quantization or schema.QuantizationParametersT()
        q.scale, q.zeroPoint, q.quantizedDimension = list(map(float, scale)), list(zero_point), 0
        q.min = q.max = None
        t.quantization = q


def _set_class_count(model, head: HeadTensors, n: int) -> None:
    """Every tensor after the classifier, and reshape targets, end in ``n`` classes."""
    sg = model.subgraphs[0]
    for t in head.tail:
        tensor = sg.tensors[t]
        tensor.shape = np.array([*list(tensor.shape[:-1]), n], np.int32)
        if tensor.shapeSignature is not None and len(tensor.shapeSignature):
            tensor.shapeSignature = np.array([*list(tensor.shapeSignature[:-1]), n], np.int32)
    tail = set(head.tail)
    for op in sg.operators:
        if op_name(model, op) != "RESHAPE" or op.outputs[0] not in tail:
            continue
        if len(op.inputs) > 1 and op.inputs[1] >= 0:
            shape_t = sg.tensors[op.inputs[1]]
            target = tensor_array(model, op.inputs[1]).copy()
            target[-1] = n
            buf = schema.BufferT()
            buf.data = np.frombuffer(target.astype(np.int32).tobytes(), np.uint8)
            model.buffers.append(buf)
            shape_t.buffer = len(model.buffers) - 1
        opts = op.builtinOptions
        if opts is not None and getattr(opts, "newShape", None) is not None and len(opts.newShape):
            opts.newShape = [*list(opts.newShape[:-1]), n]


def with_outputs(data: bytes, signature_key: str, outputs: dict[str, int]) -> bytes:
    """A copy of the model whose signature ``signature_key`` also outputs the tensors
    ``{name: index}`` of subgraph 0 (e.g. the head's features)."""
    model = load(data)
    sg = model.subgraphs[0]
    sig = next(s for s in model.signatureDefs if _decode(s.signatureKey) == signature_key)
    for name, index in outputs.items():
        m = schema.TensorMapT()
        m.name, m.tensorIndex = name, int(index)
        sig.outputs.append(m)
        sg.outputs = np.append(np.asarray(sg.outputs, np.int32), np.int32(index))
    builder = flatbuffers.Builder(len(data) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def with_files(tflite: bytes, files: dict[str, str]) -> bytes:
    """Append (or extend) a zip holding ``{name: text}``, the way TFLite metadata packs
    associated files: the model still loads, and zipfile reads them."""
    buf = io.BytesIO()
    buf.write(tflite)
    with zipfile.ZipFile(buf, "a", compression=zipfile.ZIP_STORED) as z:
        for name, text in files.items():
            z.writestr(name, text)
    return buf.getvalue()


def _with_labels(tflite: bytes, labels: list[str]) -> bytes:
    """Append a zip holding labels.txt (readable by zipfile and TFLite metadata tools)."""
    return with_files(tflite, {"labels.txt": "\n".join(labels) + "\n"})
