"""The code base's own rules, checked on the source: small modules and functions, no import
circles, one package that opens videos for reading, a small public API, a quick start."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "vidcls"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name."""
    found = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package's modules ``name`` imports, at the top or inside functions."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                hit = sub if sub in known else target
                if hit in known and hit != name:
                    out.add(hit)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in known and a.name != name}
    return out


def test_modules_and_functions_are_small():
    too_long = []
    for name, path in modules().items():
        source = path.read_text()
        if source.count("\n") > MAX_MODULE_LINES:
            too_long.append(f"{name}: {source.count(chr(10))} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    too_long.append(f"{name}.{node.name}: {lines} lines")
    assert not too_long, too_long


def test_no_import_circles():
    known = modules()
    graph = {name: imports(name, path, known) for name, path in known.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    assert not circles, circles


def test_only_media_opens_videos_for_reading():
    readers = []
    for name, path in modules().items():
        if name.startswith("vidcls.media"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr != "open" or getattr(node.func.value, "id", None) != "av":
                continue
            writing = len(node.args) > 1 and getattr(node.args[1], "value", None) == "w"
            if not writing:
                readers.append(f"{name}:{node.lineno}")
    assert not readers, readers


def test_subsystems_use_each_others_public_names_only():
    """No ``from ..other import _private`` between modules."""
    reaches = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                private = [a.name for a in node.names if a.name.startswith("_")]
                if private and node.module:
                    reaches.append(f"{name}: {node.module} {private}")
    assert not reaches, reaches


def test_the_public_api_is_small_and_every_name_loads():
    import vidcls

    assert len(vidcls.__all__) <= 12
    for name in vidcls.__all__:
        assert getattr(vidcls, name) is not None
    with pytest.raises(AttributeError):
        vidcls.no_such_name  # noqa: B018


def test_importing_the_command_line_loads_no_model_runtime_or_decoder():
    """``vidcls --help`` stays quick because building the parser imports none of the heavy
    libraries (the time itself is the benchmark's business, not a test's)."""
    code = (
        "import sys, vidcls.cli; vidcls.cli.build_parser(); "
        "print(sorted(m for m in ('ai_edge_litert', 'av', 'cv2', 'numpy', 'ml_dtypes', "
        "'scipy', 'fastapi') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_every_command_lists_the_same_help_line_as_its_module():
    import importlib

    from vidcls.cli import COMMANDS

    for name, line in COMMANDS.items():
        assert line == importlib.import_module(f"vidcls.cli.{name}").HELP
