"""A loaded MoViNet-style stream model: its layout, read from the file, and its streams.

A stream model takes one frame (``[1, 1, H, W, 3]`` float32) plus its state tensors and returns
the logits for that frame plus the next state, under output names equal to the state inputs.
Nothing about the layout is hard-coded: the signature key, image input, state names, shapes and
dtypes, and the logits output are all read from the model.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ._native import quiet_stderr
from .errors import VidclsError
from .modelcheck import check_flatbuffer, check_model_file, vet

try:  # reading logits into a preallocated array; the public read() allocates each call
    from ai_edge_litert.tensor_buffer import _tb as _tensor_buffer_native
except ImportError:  # pragma: no cover - depends on the LiteRT build
    _tensor_buffer_native = None

BACKENDS = ("auto", "compiled", "interpreter")
MAX_TENSOR_ELEMENTS = 1 << 26  # an image, state or logits tensor; A2's largest state is ~0.2 M
_environment = None  # one LiteRT environment for every model: created once, freed at exit


def _shared_environment():
    global _environment
    if _environment is None:
        from ai_edge_litert.compiled_model import Environment

        _environment = Environment.create()
    return _environment


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


def _spec(name: str, detail: dict) -> TensorSpec:
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


class StreamModel:
    """A stream model loaded once; any number of independent :class:`Stream` s run on it.

    ``backend="compiled"`` uses LiteRT's CompiledModel with two sets of state buffers that swap
    roles each frame (no state copy); ``"interpreter"`` uses the Interpreter's signature runner,
    as the official examples do; ``"auto"`` takes the first that loads the model.
    ``extra_outputs``: more signature outputs to expose, read with :meth:`Stream.output`.
    The model is first tried in a child process (see :mod:`vidcls.modelcheck`) unless
    ``isolate`` is False.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        num_threads: int = 1,
        backend: str = "auto",
        extra_outputs: tuple[str, ...] = (),
        isolate: bool = True,
    ) -> None:
        if backend not in BACKENDS:
            raise VidclsError(f"unknown backend '{backend}' (choose from {', '.join(BACKENDS)})")
        self.path = Path(path)
        self.num_threads = int(num_threads)
        self.extra_outputs = tuple(extra_outputs)
        if isolate:  # a model that crashes LiteRT does so in a child process, not here
            backend = vet(self.path, backend, self.num_threads, self.extra_outputs)
        else:  # this is that child (or a caller that trusts the file)
            check_model_file(self.path)
            check_flatbuffer(self.path)
        self.lock = threading.Lock()
        errors = []
        for name in ("compiled", "interpreter") if backend == "auto" else (backend,):
            try:
                with quiet_stderr():
                    loader = self._load_compiled if name == "compiled" else self._load_interpreter
                    self.layout = loader()
                self.backend = name
                break
            except VidclsError:
                raise
            except Exception as e:  # LiteRT raises RuntimeError/ValueError with native text
                errors.append(f"{name}: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
        else:
            raise VidclsError(f"LiteRT cannot load this model ({'; '.join(errors)})", self.path)
        self.zeros = {s.name: np.zeros(s.shape, s.dtype) for s in self.layout.states}

    # -- loading -------------------------------------------------------------------------

    def _load_compiled(self) -> ModelLayout:
        from ai_edge_litert.compiled_model import CompiledModel, CpuOptions, Options

        options = Options(cpu_options=CpuOptions(num_threads=self.num_threads))
        cm = CompiledModel.from_file(
            str(self.path), options=options, environment=_shared_environment()
        )
        sigs = {}
        for key in cm.get_signature_list():
            ins = {n: _spec(n, d) for n, d in cm.get_input_tensor_details(key).items()}
            outs = {n: _spec(n, d) for n, d in cm.get_output_tensor_details(key).items()}
            sigs[key] = (ins, outs)
        layout = find_layout(sigs, self.path, self.extra_outputs)
        self.compiled = cm
        self.signature_index = cm.get_signature_index(layout.signature_key)
        order = cm.get_signature_list()[layout.signature_key]
        # The run call takes buffers in the signature's own order.
        return replace(layout, inputs=tuple(order["inputs"]), outputs=tuple(order["outputs"]))

    def _load_interpreter(self) -> ModelLayout:
        from ai_edge_litert.interpreter import Interpreter

        it = Interpreter(model_path=str(self.path), num_threads=self.num_threads)
        sigs = {}
        for key in it.get_signature_list():
            runner = it.get_signature_runner(key)
            ins = {n: _spec(n, d) for n, d in runner.get_input_details().items()}
            outs = {n: _spec(n, d) for n, d in runner.get_output_details().items()}
            sigs[key] = (ins, outs)
        layout = find_layout(sigs, self.path, self.extra_outputs)
        self.interpreter = it
        self.runner = it.get_signature_runner(layout.signature_key)
        return layout

    # -- streams -------------------------------------------------------------------------

    def blank_image(self) -> np.ndarray:
        """A mid-grey model input, ``[H, W, 3]`` float32."""
        return np.full((self.layout.height, self.layout.width, 3), 0.5, np.float32)

    def new_stream(self) -> Stream:
        """A fresh stream with zero state, independent of every other stream."""
        # New LiteRT buffers are not made while another stream runs; the first ones create
        # LiteRT's environment, which logs.
        with self.lock, quiet_stderr():
            if self.backend == "compiled":
                return _CompiledStream(self)
            return _InterpreterStream(self)

    def __repr__(self) -> str:
        lay = self.layout
        return (
            f"StreamModel({str(self.path)!r}, signature={lay.signature_key!r}, "
            f"input={lay.height}x{lay.width}, states={len(lay.states)}, "
            f"classes={lay.num_classes}, backend={self.backend!r})"
        )


class Stream:
    """One video's recurrent state on a :class:`StreamModel`.

    ``step(image)`` feeds one preprocessed frame (float32 ``[H, W, 3]`` in [0, 1]) and returns
    the logits, in an array that is overwritten by the next step. The low-level parts of a step
    (``load_image``, ``invoke``, ``swap_state``, ``read_logits``) are public for benchmarks.
    ``output(name)``: the last step's value of an extra output (raw dtype, a new array).
    """

    def __init__(self, model: StreamModel) -> None:
        self.model = model
        self.layout = model.layout
        self.logits = np.zeros(self.layout.num_classes, np.float32)
        self.frames = 0
        self.extras = {s.name: s for s in self.layout.extras}

    def step(self, image: np.ndarray) -> np.ndarray:
        """Feed one frame; return the logits for it (valid until the next step)."""
        self.load_image(image)
        try:
            with self.model.lock:
                self.invoke()
        except (RuntimeError, ValueError) as e:  # LiteRT's errors carry native text
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            reason = reason if len(reason) <= 120 else reason[:120] + "..."
            problem = f"LiteRT failed running the model ({reason})"
            raise VidclsError(problem, self.model.path) from None
        self.swap_state()
        return self.read_logits()

    def load_image(self, image: np.ndarray) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def invoke(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def swap_state(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def read_logits(self) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def reset(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class _CompiledStream(Stream):
    """State in two sets of LiteRT buffers: set ``p`` is read while set ``1-p`` is written."""

    def __init__(self, model: StreamModel) -> None:
        super().__init__(model)
        cm, key, lay = model.compiled, self.layout.signature_key, self.layout
        self._image = cm.create_input_buffer_by_name(key, lay.image.name)
        self._logits_buf = cm.create_output_buffer_by_name(key, lay.logits.name)
        self._sets = [
            {s.name: cm.create_input_buffer_by_name(key, s.name) for s in lay.states}
            for _ in range(2)
        ]

        self._extras = {s.name: cm.create_output_buffer_by_name(key, s.name) for s in lay.extras}

        def buffers(names: tuple[str, ...], states: dict) -> list:
            fixed = {lay.image.name: self._image, lay.logits.name: self._logits_buf, **self._extras}
            return [states[n] if n in states else fixed[n] for n in names]

        # _runs[p] = (inputs from set p, outputs into set 1-p), built once.
        self._runs = [
            (buffers(lay.inputs, self._sets[p]), buffers(lay.outputs, self._sets[1 - p]))
            for p in (0, 1)
        ]
        # LiteRT's run_by_index takes each buffer's capsule on every call; the native run
        # behind it takes the capsules, so they are taken once here (public call as fallback).
        self._capsules = [([b.capsule for b in i], [b.capsule for b in o]) for i, o in self._runs]
        self._run_native = getattr(getattr(cm, "_model", None), "RunByIndex", None)
        self._parity = 0
        self.reset()

    def load_image(self, image: np.ndarray) -> None:
        self._image.write(image)

    def invoke(self) -> None:
        idx = self.model.signature_index
        if self._run_native is not None:
            self._run_native(idx, *self._capsules[self._parity])
        else:  # pragma: no cover - a LiteRT wrapper without the native handle
            self.model.compiled.run_by_index(idx, *self._runs[self._parity])

    def swap_state(self) -> None:
        self._parity ^= 1
        self.frames += 1

    def read_logits(self) -> np.ndarray:
        if _tensor_buffer_native is not None:
            _tensor_buffer_native.ReadTensorToBuffer(
                self._logits_buf.capsule, self.logits, "float32"
            )
        else:  # pragma: no cover
            self.logits[:] = self._logits_buf.read(self.logits.size, np.float32)
        return self.logits

    def output(self, name: str) -> np.ndarray:
        spec = self.extras[name]
        return self._extras[name].read(spec.size, spec.dtype).reshape(spec.shape)

    def reset(self) -> None:
        """Zero both state sets (a pass-through state is never written by the model)."""
        for states in self._sets:
            for name, buf in states.items():
                buf.write(self.model.zeros[name])
        self._parity = 0
        self.frames = 0


class _InterpreterStream(Stream):
    """The official examples' loop: the signature runner copies state in and out each frame."""

    def __init__(self, model: StreamModel) -> None:
        super().__init__(model)
        self._inputs: dict[str, np.ndarray] = {}
        self._outputs: dict[str, np.ndarray] = {}
        self.reset()

    def load_image(self, image: np.ndarray) -> None:
        self._inputs[self.layout.image.name] = image.reshape(self.layout.image.shape)

    def invoke(self) -> None:
        self._outputs = self.model.runner(**self._inputs)

    def swap_state(self) -> None:
        for s in self.layout.states:
            self._inputs[s.name] = self._outputs[s.name]
        self.frames += 1

    def read_logits(self) -> np.ndarray:
        self.logits[:] = self._outputs[self.layout.logits.name].reshape(-1)
        return self.logits

    def output(self, name: str) -> np.ndarray:
        return np.array(self._outputs[name]).reshape(self.extras[name].shape)

    def reset(self) -> None:
        self._inputs = dict(self.model.zeros)
        self.frames = 0
