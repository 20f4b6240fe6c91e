"""A loaded MoViNet-style stream model: its layout, read from the file, and its streams.

A stream model takes one frame (``[1, 1, H, W, 3]`` float32) plus its state tensors and returns
the logits for that frame plus the next state, under output names equal to the state inputs.
Nothing about the layout is hard-coded: the signature key, image input, state names, shapes and
dtypes, and the logits output are all read from the model (see :mod:`vidcls.layout`).
"""

from __future__ import annotations

import os
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np

from ._native import quiet_stderr
from .errors import VidclsError
from .layout import ModelLayout, TensorSpec, find_layout, spec_of
from .modelcheck import check_flatbuffer, check_model_file, vet
from .options import BACKENDS

try:  # reading logits into a preallocated array; the public read() allocates each call
    from ai_edge_litert.tensor_buffer import _tb as _tensor_buffer_native
except ImportError:  # pragma: no cover - depends on the LiteRT build
    _tensor_buffer_native = None

_environment = None  # one LiteRT environment for every model: created once, freed at exit


def _shared_environment():
    global _environment
    if _environment is None:
        from ai_edge_litert.compiled_model import Environment

        _environment = Environment.create()
    return _environment


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
        self.state_specs = {s.name: s for s in self.layout.states}

    # -- loading -------------------------------------------------------------------------

    def _load_compiled(self) -> ModelLayout:
        from ai_edge_litert.compiled_model import CompiledModel, CpuOptions, Options

        options = Options(cpu_options=CpuOptions(num_threads=self.num_threads))
        cm = CompiledModel.from_file(
            str(self.path), options=options, environment=_shared_environment()
        )
        sigs = {}
        for key in cm.get_signature_list():
            ins = {n: spec_of(n, d) for n, d in cm.get_input_tensor_details(key).items()}
            outs = {n: spec_of(n, d) for n, d in cm.get_output_tensor_details(key).items()}
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
            ins = {n: spec_of(n, d) for n, d in runner.get_input_details().items()}
            outs = {n: spec_of(n, d) for n, d in runner.get_output_details().items()}
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
    (``load_image``, ``invoke``, ``swap_state``, ``read_logits``) are public for benchmarks;
    ``read_state``/``write_state`` reach the state tensors the next step reads.
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

    def read_state(
        self, name: str, out: np.ndarray | None = None
    ) -> np.ndarray:  # pragma: no cover
        """The state tensor ``name`` that the next step reads (into ``out`` when given)."""
        raise NotImplementedError

    def write_state(self, name: str, value: np.ndarray) -> None:  # pragma: no cover - abstract
        """Replace the state tensor ``name`` that the next step reads (``value`` is copied)."""
        raise NotImplementedError

    def _state_spec(self, name: str) -> TensorSpec:
        spec = self.model.state_specs.get(name)
        if spec is None:
            raise KeyError(f"the model has no state named {name!r}")
        return spec

    def _state_out(self, name: str, out: np.ndarray | None) -> tuple[TensorSpec, np.ndarray]:
        """The spec of state ``name`` and a contiguous array of its shape and dtype to fill."""
        spec = self._state_spec(name)
        if out is None:
            return spec, np.empty(spec.shape, spec.dtype)
        if out.dtype != spec.dtype or out.shape != spec.shape or not out.flags.c_contiguous:
            raise ValueError(f"state {name} is {spec.dtype} {list(spec.shape)}")
        return spec, out


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

    def read_state(self, name: str, out: np.ndarray | None = None) -> np.ndarray:
        spec, out = self._state_out(name, out)
        buf = self._sets[self._parity][name]  # the set the next step reads
        if _tensor_buffer_native is not None:
            _tensor_buffer_native.ReadTensorToBuffer(buf.capsule, out.reshape(-1), spec.dtype.name)
        else:  # pragma: no cover
            out.reshape(-1)[:] = buf.read(spec.size, spec.dtype)
        return out

    def write_state(self, name: str, value: np.ndarray) -> None:
        spec = self._state_spec(name)
        self._sets[self._parity][name].write(np.asarray(value, spec.dtype).reshape(spec.shape))

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

    def read_state(self, name: str, out: np.ndarray | None = None) -> np.ndarray:
        spec, out = self._state_out(name, out)
        out[...] = np.asarray(self._inputs[name]).reshape(spec.shape)
        return out

    def write_state(self, name: str, value: np.ndarray) -> None:
        spec = self._state_spec(name)  # a copy: the zeros after a reset are the model's own
        self._inputs[name] = np.array(value, spec.dtype).reshape(spec.shape)

    def reset(self) -> None:
        self._inputs = dict(self.model.zeros)
        self.frames = 0
