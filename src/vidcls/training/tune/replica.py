"""A differentiable replica of a stream .tflite graph, built from the file itself, in JAX.

Every op of subgraph 0 becomes a JAX function on float32 *real* values: int8 weights are
dequantized (per channel where the file says so), int32 frame counters stay integers. With
``quantize=True`` each int8 activation is fake-quantized to its own grid (round and clip to the
tensor's scale and zero point, straight-through gradient), which follows LiteRT's integer
kernels to within a grid step where a float graph would drift. States are explicit: the
signature's state inputs go in and its state outputs come out, by name, as the file says.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ...errors import VidclsError
from ..graph import find_head, load, op_name, quantization

INT8, INT32, FLOAT32 = 9, 2, 0  # schema.TensorType values used here
_NUMPY = {0: np.float32, 2: np.int32, 4: np.int64, 9: np.int8, 1: np.float16}
_COPY_OPS = {"RESHAPE", "SQUEEZE", "STRIDED_SLICE", "BROADCAST_TO", "DEQUANTIZE"}


@dataclass(frozen=True)
class Op:
    """One operator: its index in the graph, type, tensor indices and builtin options."""

    index: int
    name: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: object


class Graph:
    """The ops, tensors, constants and stream signature of a .tflite stream model."""

    def __init__(self, data: bytes, path: str = "model") -> None:
        self.path = path
        self.model = load(data)
        self.head = find_head(self.model, path)
        sg = self.model.subgraphs[0]
        self.tensors = sg.tensors
        self.ops = [
            Op(
                i,
                op_name(self.model, op),
                tuple(int(t) for t in op.inputs),
                tuple(int(t) for t in op.outputs),
                op.builtinOptions,
            )
            for i, op in enumerate(sg.operators)
        ]
        self.producer = {t: op.index for op in self.ops for t in op.outputs}
        sig = next(
            s for s in self.model.signatureDefs if _text(s.signatureKey) == self.head.signature_key
        )
        self.inputs = {_text(m.name): int(m.tensorIndex) for m in sig.inputs}
        self.outputs = {_text(m.name): int(m.tensorIndex) for m in sig.outputs}
        self.states = [n for n in self.inputs if n in self.outputs]
        self.image = next(n for n in self.inputs if n not in self.outputs)
        self.logits = next(n for n in self.outputs if n not in self.inputs)
        self.constants = {
            t: self.constant(t)
            for op in self.ops
            for t in op.inputs
            if t >= 0 and t not in self.producer and self._has_data(t)
        }

    def _has_data(self, t: int) -> bool:
        b = self.tensors[t].buffer
        data = self.model.buffers[b].data if b > 0 else None
        return data is not None and len(data) > 0

    def shape(self, t: int) -> tuple[int, ...]:
        return tuple(int(d) for d in self.tensors[t].shape)

    def qparams(self, t: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Scale and zero point of tensor ``t`` (None if it is not quantized)."""
        return quantization(self.model, t)

    def constant(self, t: int) -> np.ndarray:
        """A constant's values: int8/int32 quantized weights as float32, other ints as ints."""
        tensor = self.tensors[t]
        dtype = _NUMPY.get(tensor.type)
        if dtype is None:
            raise VidclsError(f"the replica does not support constants of type {tensor.type}")
        data = bytes(np.asarray(self.model.buffers[tensor.buffer].data, np.uint8))
        raw = np.frombuffer(data, dtype).reshape(self.shape(t))
        if raw.dtype == np.int64:
            raw = raw.astype(np.int32)
        q = self.qparams(t)
        if q is None or raw.dtype == np.float32:
            return raw.astype(np.float32) if raw.dtype != np.int32 else raw.copy()
        scale, zp = q
        axis = self.tensors[t].quantization.quantizedDimension if len(scale) > 1 else 0
        shape = [1] * raw.ndim
        if len(scale) > 1:
            shape[axis] = -1
        real = (raw.astype(np.float64) - zp.reshape(shape)) * scale.reshape(shape)
        return real.astype(np.float32)

    def state_shape(self, name: str) -> tuple[tuple[int, ...], type]:
        t = self.inputs[name]
        return self.shape(t), np.int32 if self.tensors[t].type == INT32 else np.float32


def _text(name) -> str:
    return name.decode() if isinstance(name, bytes) else str(name)


def fake_quant(x, scale: float, zero_point: int):
    """``x`` rounded (half away from zero on the raw int8 value, as LiteRT's kernels round)
    and clipped to an int8 grid; the gradient passes straight through. ``scale`` and
    ``zero_point`` may be traced: ``x`` is multiplied by the float32 reciprocal of the scale,
    as XLA computes ``x / scale`` for a constant scale, so the result does not depend on it."""
    raw = x * (1 / jnp.float32(scale)) + zero_point
    q = jnp.clip(jnp.sign(raw) * jnp.floor(jnp.abs(raw) + 0.5), -128, 127)
    return x + jax.lax.stop_gradient((q - zero_point) * scale - x)


class Replica:
    """The ops ``ops`` (default: all) of ``graph`` as one JAX function.

    ``replica(params, values)`` runs them in file order: ``values`` maps the tensors they read
    that no op in the set produces (graph inputs, or cut points) to arrays; ``params`` maps
    constant tensor indices to arrays that override the file's (the trainable weights). It
    returns every tensor value it computed, by index. ``qparams`` overrides int8 grids;
    ``grids``, the call's third argument, replaces them (arrays: a jitted caller passes them
    in rather than compiling them into its program).
    """

    def __init__(
        self,
        graph: Graph,
        ops: list[int] | None = None,
        quantize: bool = True,
        qparams: dict[int, tuple[float, int]] | None = None,
    ) -> None:
        self.graph = graph
        self.ops = [graph.ops[i] for i in (range(len(graph.ops)) if ops is None else ops)]
        self.quantize = quantize
        self.grid = {}
        for op in self.ops:
            for t in op.outputs:
                q = graph.qparams(t)
                if graph.tensors[t].type == INT8 and q is not None:
                    self.grid[t] = (float(q[0][0]), int(q[1][0]))
        self.grid.update(qparams or {})
        for op in self.ops:
            if op.name not in _OPS:
                raise VidclsError(f"the replica does not support op {op.name}", graph.path)

    def __call__(self, params: dict, values: dict, grids: dict | None = None) -> dict:
        env = dict(values)
        consts = self.graph.constants
        grid = self.grid if grids is None else grids
        for op in self.ops:
            args = [
                None if t < 0 else env[t] if t in env else params.get(t, consts.get(t))
                for t in op.inputs
            ]
            out = _OPS[op.name](self.graph, op, args)
            t = op.outputs[0]
            if self.quantize and t in grid and op.name not in _COPY_OPS:
                out = fake_quant(out, *grid[t])
            env[t] = out
        return env


def _act(x, options):
    f = getattr(options, "fusedActivationFunction", 0)
    if f == 0:
        return x
    if f == 1:
        return jnp.maximum(x, 0.0)
    if f == 2:
        return jnp.clip(x, -1.0, 1.0)
    if f == 3:
        return jnp.clip(x, 0.0, 6.0)
    if f == 4:
        return jnp.tanh(x)
    raise VidclsError(f"the replica does not support fused activation {f}")


def _padding(options) -> str:
    return "SAME" if options.padding == 0 else "VALID"


def _conv(g: Graph, op: Op, a):
    o = op.options
    w = jnp.asarray(a[1])
    if w.shape[1:3] == (1, 1) and (o.strideH, o.strideW) == (1, 1):  # a matrix product
        y = jnp.einsum("nhwc,oc->nhwo", a[0], w[:, 0, 0, :])
        return _act(y if a[2] is None else y + a[2], o)
    y = jax.lax.conv_general_dilated(
        a[0],
        jnp.asarray(a[1]),
        (o.strideH, o.strideW),
        _padding(o),
        rhs_dilation=(o.dilationHFactor, o.dilationWFactor),
        dimension_numbers=("NHWC", "OHWI", "NHWC"),
    )
    return _act(y if a[2] is None else y + a[2], o)


def _depthwise(g: Graph, op: Op, a):
    """Depthwise conv as a sum of shifted, channel-scaled copies: XLA's grouped convolution
    is slow on CPU, its gradient far more so."""
    o = op.options
    x, w = a[0], jnp.asarray(a[1])[0]  # w: [kh, kw, channels * multiplier]
    kh, kw, out_c = w.shape
    if out_c != x.shape[-1]:
        x = jnp.repeat(x, out_c // x.shape[-1], axis=-1)
    sh, sw, dh, dw = o.strideH, o.strideW, o.dilationHFactor, o.dilationWFactor
    n, h, wd, _ = x.shape
    if o.padding == 0:  # SAME
        oh, ow = -(-h // sh), -(-wd // sw)
        ph = max((oh - 1) * sh + (kh - 1) * dh + 1 - h, 0)
        pw = max((ow - 1) * sw + (kw - 1) * dw + 1 - wd, 0)
        x = jnp.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    else:
        oh, ow = (h - (kh - 1) * dh - 1) // sh + 1, (wd - (kw - 1) * dw - 1) // sw + 1
    y = 0.0
    for i in range(kh):
        for j in range(kw):
            part = x[
                :,
                i * dh : i * dh + (oh - 1) * sh + 1 : sh,
                j * dw : j * dw + (ow - 1) * sw + 1 : sw,
            ]
            y = y + part * w[i, j]
    return _act(y if a[2] is None else y + a[2], o)


def _avg_pool(g: Graph, op: Op, a):
    o = op.options
    win, stride = (1, o.filterHeight, o.filterWidth, 1), (1, o.strideH, o.strideW, 1)
    pad = _padding(o)
    total = jax.lax.reduce_window(a[0], 0.0, jax.lax.add, win, stride, pad)
    h, w = a[0].shape[1:3]
    rows = _window_counts(h, total.shape[1], o.filterHeight, o.strideH, pad)
    cols = _window_counts(w, total.shape[2], o.filterWidth, o.strideW, pad)
    count = np.outer(rows, cols).astype(np.float32)[None, :, :, None]
    return _act(total / count, o)


def _window_counts(n: int, out: int, k: int, s: int, pad: str) -> np.ndarray:
    """Elements inside the input under each pooling window (padding not counted)."""
    lo = max((out - 1) * s + k - n, 0) // 2 if pad == "SAME" else 0
    starts = np.arange(out) * s - lo
    return np.minimum(starts + k, n) - np.maximum(starts, 0)


def _reduce(fn: Callable) -> Callable:
    def run(g: Graph, op: Op, a):
        axes = tuple(int(x) % a[0].ndim for x in np.asarray(a[1]).reshape(-1))
        keep = bool(getattr(op.options, "keepDims", False))
        return fn(a[0], axis=axes, keepdims=keep)

    return run


def _strided_slice(g: Graph, op: Op, a):
    o = op.options
    if getattr(o, "ellipsisMask", 0) or getattr(o, "newAxisMask", 0):
        raise VidclsError("the replica does not support STRIDED_SLICE with ellipsis or new axes")
    begin, end, strides = (np.asarray(x).reshape(-1) for x in a[1:4])
    index = []
    for d in range(len(begin)):
        if o.shrinkAxisMask >> d & 1:
            index.append(int(begin[d]))
            continue
        b = None if o.beginMask >> d & 1 else int(begin[d])
        e = None if o.endMask >> d & 1 else int(end[d])
        index.append(slice(b, e, int(strides[d])))
    return a[0][tuple(index)]


def _concat(g: Graph, op: Op, a):
    return _act(jnp.concatenate(a, axis=op.options.axis), op.options)


def _binary(fn: Callable) -> Callable:
    return lambda g, op, a: _act(fn(a[0], a[1]), op.options)


def _cast(g: Graph, op: Op, a):
    return a[0].astype(jnp.int32 if g.tensors[op.outputs[0]].type == INT32 else jnp.float32)


def _hard_swish(g: Graph, op: Op, a):
    return a[0] * jnp.clip(a[0] + 3.0, 0.0, 6.0) / 6.0


_OPS: dict[str, Callable] = {
    "CONV_2D": _conv,
    "DEPTHWISE_CONV_2D": _depthwise,
    "AVERAGE_POOL_2D": _avg_pool,
    "ADD": _binary(lambda x, y: x + y),
    "SUB": _binary(lambda x, y: x - y),
    "MUL": _binary(lambda x, y: x * y),
    "DIV": _binary(lambda x, y: x / y),
    "CONCATENATION": _concat,
    "STRIDED_SLICE": _strided_slice,
    "RESHAPE": lambda g, op, a: a[0].reshape(g.shape(op.outputs[0])),
    "SQUEEZE": lambda g, op, a: a[0].reshape(g.shape(op.outputs[0])),
    "BROADCAST_TO": lambda g, op, a: jnp.broadcast_to(a[0], g.shape(op.outputs[0])),
    "SUM": _reduce(jnp.sum),
    "MEAN": _reduce(jnp.mean),
    "CAST": _cast,
    "QUANTIZE": lambda g, op, a: a[0],  # the output grid is applied by the replica
    "DEQUANTIZE": lambda g, op, a: a[0],  # values are already real
    "RELU": lambda g, op, a: jnp.maximum(a[0], 0.0),
    "RELU6": lambda g, op, a: jnp.clip(a[0], 0.0, 6.0),
    "HARD_SWISH": _hard_swish,
    "LOGISTIC": lambda g, op, a: jax.nn.sigmoid(a[0]),
    "TANH": lambda g, op, a: jnp.tanh(a[0]),
}


def weights(graph: Graph) -> dict:
    """The graph's float constants as JAX arrays: passed to jitted steps as arguments, so XLA
    does not fold megabytes of weights into its program (slow to compile). Moved with
    ``device_put``: ``jnp.asarray`` would compile a copy program per distinct shape."""
    return {t: jax.device_put(v) for t, v in graph.constants.items() if v.dtype == np.float32}


class StreamReplica:
    """The whole stream model as a jitted step: ``(params, image, states) -> (logits,
    states)``, states a dict by signature name (zeros from :meth:`zero_states`).

    Weights and int8 grids are arguments of the compiled step, not constants in it: files
    that differ only in them (a base model and its fine-tunes) compile to the same program.
    """

    def __init__(self, graph: Graph, quantize: bool = True) -> None:
        self.graph = graph
        self.replica = Replica(graph, quantize=quantize)
        self.weights = weights(graph)
        self.grids = {
            t: (np.float32(scale), np.float32(zero))
            for t, (scale, zero) in self.replica.grid.items()
        }
        self._jit = jax.jit(self._step)

    def step(self, params: dict, image, states: dict):
        """One frame: ``(logits, new states)``; ``params`` override the file's weights."""
        return self._jit({**self.weights, **params}, self.grids, image, states)

    def zero_states(self) -> dict:
        out = {}
        for name in self.graph.states:
            shape, dtype = self.graph.state_shape(name)
            out[name] = jax.device_put(np.zeros(shape, dtype))  # no program per shape
        return out

    def _step(self, params: dict, grids: dict, image, states: dict):
        g = self.graph
        values = {g.inputs[n]: v for n, v in states.items()}
        values[g.inputs[g.image]] = image.reshape(g.shape(g.inputs[g.image]))
        env = self.replica(params, values, grids)
        new = {n: env[g.outputs[n]] for n in g.states}
        return env[g.outputs[g.logits]].reshape(-1), new

    def run(self, images: list[np.ndarray], params: dict | None = None) -> np.ndarray:
        """Logits after each of ``images`` (preprocessed frames), from zero states."""
        states, out = self.zero_states(), []
        for im in images:
            logits, states = self.step(params or {}, jax.device_put(im), states)
            out.append(np.asarray(logits))
        return np.array(out)


@functools.lru_cache(maxsize=2)
def stream_replica(data: bytes, path: str = "model") -> StreamReplica:
    """The :class:`StreamReplica` of the .tflite file ``data``, kept for the next call with
    the same file and path: its step compiles once (seconds) however often the file is run."""
    return StreamReplica(Graph(data, path))
