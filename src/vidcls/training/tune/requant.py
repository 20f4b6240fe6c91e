"""Write fine-tuned float weights back into the int8 graph they came from.

Weights are quantized per output channel (symmetric int8), biases to int32 with scale
``input_scale * weight_scale`` as TFLite requires; the int8 grids of the activations the
trainable part produces are refitted to the values seen on training data. Tensors that LiteRT
kernels require to share a grid (reshape, slice, concatenation, average pool) are refitted
together; groups holding a frozen tensor keep their grid. Only buffers and quantization
parameters change: ops, inputs, states and signature stay as they were.
"""

from __future__ import annotations

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema

from .replica import INT8, Graph

_SHARED_GRID = {"RESHAPE", "SQUEEZE", "STRIDED_SLICE", "BROADCAST_TO", "CONCATENATION"}
_SHARED_GRID |= {"AVERAGE_POOL_2D", "MAX_POOL_2D"}
_FIXED_GRID = {"LOGISTIC", "TANH", "SOFTMAX"}


def grid_groups(graph: Graph, ops: list[int]) -> list[set[int]]:
    """Sets of int8 tensors produced by ``ops`` (and their tied inputs) that share a grid."""
    parent: dict[int, int] = {}

    def find(t: int) -> int:
        while parent.setdefault(t, t) != t:
            t = parent[t]
        return t

    for i in ops:
        op = graph.ops[i]
        if op.name in _FIXED_GRID:
            continue
        out = op.outputs[0]
        if graph.tensors[out].type != INT8:
            continue
        find(out)
        if op.name in _SHARED_GRID:
            for t in op.inputs:
                if t >= 0 and t not in graph.constants and graph.tensors[t].type == INT8:
                    parent[find(t)] = find(out)
    groups: dict[int, set[int]] = {}
    for t in parent:
        groups.setdefault(find(t), set()).add(t)
    return list(groups.values())


def fit_grids(
    graph: Graph, ops: list[int], ranges: dict[int, tuple[float, float]]
) -> dict[int, tuple[float, int]]:
    """``{tensor: (scale, zero point)}`` for every group of ``ops``' int8 outputs whose
    members all have measured ``ranges`` (min, max); others (frozen members) are left out."""
    grids = {}
    for group in grid_groups(graph, ops):
        if not all(t in ranges for t in group):
            continue
        lo = min(0.0, min(ranges[t][0] for t in group))
        hi = max(0.0, max(ranges[t][1] for t in group))
        scale = max(hi - lo, 1e-6) / 255.0
        zp = int(np.clip(round(-128 - lo / scale), -128, 127))
        grids.update({t: (scale, zp) for t in group})
    return grids


def write_back(
    graph: Graph, params: dict[int, np.ndarray], grids: dict[int, tuple[float, int]]
) -> bytes:
    """The graph's file with ``params`` (conv weights and biases, float) and activation
    ``grids`` written in; conv biases are requantized to their input's new scale. The
    graph's parsed model is changed in place: build a new Graph from the bytes to run them."""
    model = graph.model
    sg = model.subgraphs[0]
    for t, (scale, zp) in grids.items():
        q = sg.tensors[t].quantization
        q.scale, q.zeroPoint = [float(scale)], [int(zp)]
    for op in graph.ops:
        if op.name not in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            continue
        w_t, b_t = op.inputs[1], op.inputs[2] if len(op.inputs) > 2 else -1
        if w_t not in params and b_t not in params and op.inputs[0] not in grids:
            continue
        axis = 0 if op.name == "CONV_2D" else 3
        w = np.asarray(params.get(w_t, graph.constants[w_t]), np.float64)
        w_q, w_scale = quantize_per_channel(w, axis)
        _set(model, w_t, w_q, w_scale, axis)
        if b_t >= 0:
            in_scale = float(sg.tensors[op.inputs[0]].quantization.scale[0])
            b = np.asarray(params.get(b_t, graph.constants[b_t]), np.float64)
            b_scale = in_scale * w_scale
            b_q = np.clip(np.round(b / b_scale), -(2**31), 2**31 - 1).astype(np.int32)
            _set(model, b_t, b_q, b_scale, 0)
    builder = flatbuffers.Builder(1 << 22)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def quantize_per_channel(w: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 values of ``w`` and one scale per index of ``axis``."""
    moved = np.moveaxis(w, axis, 0)
    scale = np.maximum(np.abs(moved).reshape(len(moved), -1).max(axis=1), 1e-12) / 127.0
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(np.round(w / scale.reshape(shape)), -127, 127).astype(np.int8)
    return q, scale


def _set(model, index: int, values: np.ndarray, scale: np.ndarray, axis: int) -> None:
    """Tensor ``index`` gets a buffer of its own holding ``values``, quantized per channel
    along ``axis`` (the idea of graph._set_const, with the depthwise channel axis)."""
    sg = model.subgraphs[0]
    t, old = sg.tensors[index], sg.tensors[index].buffer
    buf = schema.BufferT()
    buf.data = np.frombuffer(np.ascontiguousarray(values).tobytes(), np.uint8)
    model.buffers.append(buf)
    t.buffer = len(model.buffers) - 1
    if old > 0 and not any(x.buffer == old for x in sg.tensors):
        model.buffers[old].data = None  # the replaced weights leave the file
    q = t.quantization or schema.QuantizationParametersT()
    q.scale, q.zeroPoint = [float(s) for s in scale], [0] * len(scale)
    q.quantizedDimension = axis
    q.min = q.max = None
    t.quantization = q
