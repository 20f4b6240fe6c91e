"""Where to cut a stream graph for fine-tuning its last K blocks, and the frozen part's
activations at the cut, per frame, from LiteRT.

The trainable part is every op the logits (and the states those ops read) need that does not
sit in the frozen image path before the cut: the last K ``blockN_layerM`` blocks, the head,
and the small state bookkeeping (state quantization, frame counters) they use. The tensors it
reads from the frozen part are the *boundary*: LiteRT computes them on the original model
(asked for as extra outputs), so JAX never recomputes the frozen backbone.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import VidclsError
from ...model import StreamModel
from ...preprocess import Preprocessor
from ...writers import write_bytes
from ..graph import with_outputs
from .replica import Graph

_BLOCK = re.compile(r"block\d+_layer\d+")


@dataclass
class Cut:
    """The trainable ops of ``graph`` after its last ``k`` blocks' start."""

    graph: Graph
    k: int
    ops: list[int]  # trainable op indices, in file order
    boundary: list[int]  # tensors read from the frozen part
    states: list[str]  # state names the trainable part reads (carried across frames)
    params: list[int]  # conv / depthwise weight and bias tensors of the trainable ops


def block_starts(graph: Graph) -> list[tuple[str, int]]:
    """``(block name, first op index)`` of each ``blockN_layerM`` block, in order."""
    seen: dict[str, int] = {}
    for op in graph.ops:
        m = _BLOCK.search(graph.tensors[op.outputs[0]].name.decode(errors="replace"))
        if m and m.group(0) not in seen:
            seen[m.group(0)] = op.index
    return list(seen.items())


def cut(graph: Graph, k: int) -> Cut:
    """The trainable part for the last ``k`` blocks plus the head; VidclsError if the graph
    has fewer blocks or none named ``blockN_layerM``."""
    starts = block_starts(graph)
    if not 1 <= k <= len(starts):
        raise VidclsError(f"cannot fine-tune {k} blocks: the model has {len(starts)}", graph.path)
    start = starts[-k][1]
    image_path = _image_dependent(graph)
    frozen = {i for i in image_path if i < start}
    outs_of = {graph.inputs[n]: graph.outputs[n] for n in graph.states}
    ops: set[int] = set()
    boundary: set[int] = set()
    states: set[str] = set()
    todo = [graph.outputs[graph.logits]]
    seen: set[int] = set()
    while todo:
        t = todo.pop()
        if t in seen or t < 0:
            continue
        seen.add(t)
        p = graph.producer.get(t)
        if p is None:
            name = next((n for n in graph.states if graph.inputs[n] == t), None)
            if name is not None:
                states.add(name)
                todo.append(outs_of[t])
            continue
        if p in frozen:
            boundary.add(t)
            continue
        ops.add(p)
        todo += [x for x in graph.ops[p].inputs if x not in graph.constants]
    params = [
        t
        for i in sorted(ops)
        if graph.ops[i].name in ("CONV_2D", "DEPTHWISE_CONV_2D")
        for t in graph.ops[i].inputs[1:3]
        if t >= 0
    ]
    return Cut(graph, k, sorted(ops), sorted(boundary), sorted(states), params)


def _image_dependent(graph: Graph) -> set[int]:
    """Ops whose output depends on the image input."""
    tainted, ops = {graph.inputs[graph.image]}, set()
    for op in graph.ops:
        if any(t in tainted for t in op.inputs):
            ops.add(op.index)
            tainted.update(op.outputs)
    return ops


class BoundaryExtractor:
    """Runs the original model in LiteRT and returns, per frame, the boundary tensors (real
    values) of a :class:`Cut`, plus the head's hidden features after the last frame."""

    def __init__(self, data: bytes, c: Cut, threads: int = 1) -> None:
        g = c.graph
        self.cut = c
        self.names = {f"vidcls_cut{t}": t for t in c.boundary}
        extra = {**self.names, "vidcls_hidden": g.head.hidden}
        featured = with_outputs(data, g.head.signature_key, extra)
        with tempfile.TemporaryDirectory(prefix="vidcls-", ignore_cleanup_errors=True) as tmp:
            path = write_bytes(Path(tmp) / "cut.tflite", featured)
            self.model = StreamModel(path, threads, extra_outputs=tuple(extra))
        self.stream = self.model.new_stream()
        self.pre = Preprocessor(self.model.layout.height, self.model.layout.width)
        self.quant = {t: g.qparams(t) for t in [*c.boundary, g.head.hidden]}

    def _real(self, raw: np.ndarray, t: int) -> np.ndarray:
        q = self.quant[t]
        if q is None or raw.dtype == np.float32:
            return raw.astype(np.float32)
        return ((raw.astype(np.float32) - q[1][0]) * q[0][0]).astype(np.float32)

    def __call__(self, frames: list[np.ndarray]) -> tuple[dict[int, np.ndarray], np.ndarray]:
        """``({boundary tensor: [frames, *shape]}, hidden features after the last frame)``."""
        self.stream.reset()
        seq: dict[int, list[np.ndarray]] = {t: [] for t in self.cut.boundary}
        for f in frames:
            self.stream.step(self.pre.from_array(f))
            for name, t in self.names.items():
                seq[t].append(self._real(self.stream.output(name), t))
        hidden = self._real(self.stream.output("vidcls_hidden"), self.cut.graph.head.hidden)
        return {t: np.stack(v) for t, v in seq.items()}, hidden.reshape(-1)
