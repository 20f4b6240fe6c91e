"""Running the ``vidcls`` command in tests, and checking its errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "vidcls.cli"]


def run(
    *args, env: dict[str, str] | None = None, timeout: float = 300, **kwargs
) -> subprocess.CompletedProcess:
    """Run ``vidcls ARGS`` with the current environment (conftest's isolated cache/mirror)."""
    environ = {k: v for k, v in os.environ.items() if k != "VIDCLS_VERBOSE"}
    environ.update(env or {})
    return subprocess.run(
        [*CLI, *map(str, args)],
        capture_output=True,
        text=True,
        env=environ,
        timeout=timeout,
        **kwargs,
    )


def assert_clean_error(r: subprocess.CompletedProcess, *names: object) -> str:
    """Exit 2, exactly one ``vidcls: error:`` line on stderr naming ``names``, no traceback."""
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr + r.stdout
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    line = lines[0]
    assert line.startswith("vidcls: error: "), line
    for name in names:
        assert str(name) in line, (name, line)
    return line


def stream_free_model(path: Path) -> Path:
    """A valid TFLite file with one signature y = relu(x), x: float32 [1, 4]: not a stream model."""
    flatbuffers = pytest.importorskip("flatbuffers")
    schema = pytest.importorskip("ai_edge_litert.schema_py_generated")

    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.RELU
    code.version = 1
    tensors = []
    for i, name in enumerate(("x", "y")):
        t = schema.TensorT()
        t.shape, t.type, t.buffer, t.name = [1, 4], schema.TensorType.FLOAT32, i + 1, name
        tensors.append(t)
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [0], [1]
    graph = schema.SubGraphT()
    graph.tensors, graph.inputs, graph.outputs, graph.operators = tensors, [0], [1], [op]
    maps = []
    for i, name in enumerate(("x", "y")):
        m = schema.TensorMapT()
        m.name, m.tensorIndex = name, i
        maps.append(m)
    signature = schema.SignatureDefT()
    signature.signatureKey, signature.subgraphIndex = "serving_default", 0
    signature.inputs, signature.outputs = maps[:1], maps[1:]
    model = schema.ModelT()
    model.version = 3
    model.operatorCodes, model.subgraphs, model.signatureDefs = [code], [graph], [signature]
    model.buffers = [schema.BufferT() for _ in range(3)]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(bytes(builder.Output()))
    return path
