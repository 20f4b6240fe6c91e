"""The layout of a MoViNet-style stream model, read from its signatures: which input is the
image, which tensors are the recurrent state, which output is the logits, and which states
are running pool sums with their frame counts.

A stream model takes one frame (``[1, 1, H, W, 3]`` float32) plus its state tensors and returns
the logits for that frame plus the next state, under output names equal to the state inputs.
Nothing about the layout is hard-coded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .errors import VidclsError

MAX_TENSOR_ELEMENTS = 1 << 26  # an image, state or logits tensor; A2's largest state is ~0.2 M


@dataclass(frozen=True)
class TensorSpec:
    """Name, shape and dtype of one signature input or output."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


@dataclass(frozen=True)
class ModelLayout:
    """Where a stream model keeps its image input, states and logits."""

    signature_key: str
    image: TensorSpec
    states: tuple[TensorSpec, ...]
    logits: TensorSpec
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    extras: tuple[TensorSpec, ...] = ()  # outputs asked for besides the logits and states

    @property
    def height(self) -> int:
        return self.image.shape[-3]

    @property
    def width(self) -> int:
        return self.image.shape[-2]

    @property
    def num_classes(self) -> int:
        return self.logits.shape[-1]


def spec_of(name: str, detail: dict) -> TensorSpec:
    return TensorSpec(name, tuple(int(d) for d in detail["shape"]), np.dtype(detail["dtype"]))


def find_layout(
    signatures: dict[str, tuple[dict[str, TensorSpec], dict[str, TensorSpec]]],
    path: str | os.PathLike,
    extra_outputs: tuple[str, ...] = (),
) -> ModelLayout:
    """Pick the stream signature among ``{key: (inputs, outputs)}`` and name its parts
    (``extra_outputs``: more outputs to expose). VidclsError when none has the stream layout.
    """
    problems = []
    keys = sorted(signatures, key=lambda k: k != "serving_default")
    for key in keys:
        inputs, outputs = signatures[key]
        try:
            return _layout_of(key, inputs, outputs, extra_outputs)
        except ValueError as e:
            problems.append(f"signature '{key}': {e}")
    detail = "; ".join(problems) if problems else "it has no signatures"
    raise VidclsError(f"not a MoViNet-style stream model ({detail})", path)


def _layout_of(
    key: str, inputs: dict[str, TensorSpec], outputs: dict[str, TensorSpec], extra=()
) -> ModelLayout:
    if any(n not in outputs for n in extra):
        raise ValueError(f"no output named {', '.join(n for n in extra if n not in outputs)}")
    non_state_in = [n for n in inputs if n not in outputs]
    non_state_out = [n for n in outputs if n not in inputs and n not in extra]
    images = [n for n in non_state_in if len(inputs[n].shape) == 5 and inputs[n].shape[-1] == 3]
    if len(non_state_in) != 1 or len(images) != 1:
        raise ValueError(
            "expected exactly one image input [1, 1, H, W, 3] besides the states, "
            f"found {non_state_in or 'none'}"
        )
    image = inputs[images[0]]
    if image.dtype != np.float32 or image.shape[:2] != (1, 1) or min(image.shape) <= 0:
        raise ValueError(f"image input {image.name} is {image.dtype} {list(image.shape)}")
    if len(non_state_out) != 1:
        raise ValueError(f"expected one logits output besides the states, found {non_state_out}")
    logits = outputs[non_state_out[0]]
    if logits.dtype != np.float32 or len(logits.shape) != 2 or logits.shape[0] != 1:
        raise ValueError(f"logits output {logits.name} is {logits.dtype} {list(logits.shape)}")
    states = tuple(inputs[n] for n in inputs if n in outputs)
    if not states:
        raise ValueError("no state inputs: this is not a stream model")
    for s in states:
        o = outputs[s.name]
        if (o.shape, o.dtype) != (s.shape, s.dtype):
            raise ValueError(f"state {s.name} is {list(s.shape)} in but {list(o.shape)} out")
    for t in (image, logits, *states):  # a forged shape must not allocate gigabytes
        if min(t.shape, default=1) < 0 or t.size > MAX_TENSOR_ELEMENTS:
            raise ValueError(f"tensor {t.name} has an impossible shape {list(t.shape)}")
    extras = tuple(outputs[n] for n in extra)
    return ModelLayout(key, image, states, logits, tuple(inputs), tuple(outputs), extras)


POOL_SUM, POOL_COUNT = "_pool_buffer", "_pool_frame_count"


def pool_pairs(layout: ModelLayout) -> tuple[tuple[TensorSpec, TensorSpec], ...]:
    """The states that are running pool sums, each with its frame count, paired by name
    (``<p>_pool_buffer``, ``<p>_pool_frame_count``); empty unless every such state pairs up as
    a float32 sum and a one-element integer count."""
    states = {s.name: s for s in layout.states}
    counts = [s for s in layout.states if s.name.endswith(POOL_COUNT)]
    pairs = []
    for total in (s for s in layout.states if s.name.endswith(POOL_SUM)):
        count = states.get(total.name[: -len(POOL_SUM)] + POOL_COUNT)
        if count is None or total.dtype != np.float32:
            return ()
        if count.dtype.kind not in "iu" or count.size != 1:
            return ()
        pairs.append((total, count))
    return tuple(pairs) if len(pairs) == len(counts) else ()
