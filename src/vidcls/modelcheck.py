"""Model files are untrusted input: checked before LiteRT loads them in this process.

First the file itself (a regular file within limits, the TFLite identifier, LiteRT's
flatbuffer verifier). Then, once per file content, the model is loaded and run on one frame in a
child process: a corrupt model that makes LiteRT abort, segfault or hang takes down the child,
and this process gets a one-line error instead. Models that pass are remembered by their
sha256 in the cache; the published zoo files are known to pass.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from ._native import quiet_stderr
from .errors import VidclsError
from .files import MODEL_LIMIT, check_regular

PROBE_TIMEOUT = 60.0  # seconds for the child to load the model and run a few frames
PROBE_MEMORY = 4 << 30  # address space the child may use: a forged tensor size fails fast


def check_model_file(path: Path) -> None:
    """VidclsError unless ``path`` is a regular file within limits with TFLite's identifier."""
    check_regular(path, "model file", MODEL_LIMIT, missing="model file not found")
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as e:
        raise VidclsError(f"cannot read model file ({e.strerror or e})", path) from None
    if len(head) < 8 or head[4:8] != b"TFL3":
        raise VidclsError("not a TFLite model file", path)


def vet(path: Path, backend: str = "auto", threads: int = 1, extra_outputs=()) -> str:
    """Check ``path`` here (cheap), then in a child process (LiteRT's verifier, loading, three
    frames); the backend to load it with. VidclsError for a bad model."""
    check_model_file(path)
    return safe_backend(path, backend, threads, tuple(extra_outputs))


def check_flatbuffer(path: Path) -> None:
    """Run LiteRT's flatbuffer verifier (the Interpreter's, under 1 ms) before anything else.

    The CompiledModel loader does not verify, and crashes on a truncated or corrupt file; the
    verifier itself can crash on a forged file, so it runs in the child process.
    """
    from ai_edge_litert.interpreter import Interpreter

    try:
        with quiet_stderr():
            Interpreter(model_path=str(path))
    except ValueError as e:
        reason = str(e).splitlines()[0] if str(e) else "invalid flatbuffer"
        raise VidclsError(f"corrupt or truncated TFLite file ({reason})", path) from None


def sha256(path: Path) -> str:
    """The file's sha256, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def safe_backend(path: Path, backend: str, threads: int, extra_outputs: tuple[str, ...]) -> str:
    """The backend (``compiled`` or ``interpreter``) that loads ``path`` and runs a frame
    without harm, tried in a child process the first time; VidclsError if none does."""
    from . import zoo

    digest = sha256(path)
    if digest in zoo.KNOWN_GOOD:
        return backend
    marker = _marker(digest, backend, extra_outputs)
    if marker is not None and marker.is_file():
        return marker.read_text().strip() or backend
    chosen = _probe(path, backend, threads, extra_outputs)
    if marker is not None:
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(chosen)
        except OSError:
            pass  # a read-only cache only means probing again next time
    return chosen


def _marker(digest: str, backend: str, extra_outputs: tuple[str, ...]) -> Path | None:
    from . import zoo

    try:
        from ai_edge_litert import __version__ as litert
    except ImportError:  # pragma: no cover
        litert = "unknown"
    extras = hashlib.sha1(",".join(extra_outputs).encode()).hexdigest()[:8]
    return zoo.cache_dir() / "verified" / f"{digest}-{litert}-{backend}-{extras}"


def _probe(path: Path, backend: str, threads: int, extra_outputs: tuple[str, ...]) -> str:
    command = [sys.executable, "-m", "vidcls.modeltrial", str(path), backend, str(threads)]
    command += list(extra_outputs)
    env = {k: v for k, v in os.environ.items() if k != "VIDCLS_VERBOSE"}
    try:
        r = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT,
            env=env,
        )
    except subprocess.TimeoutExpired:
        raise VidclsError(
            f"LiteRT did not load and run this model within {PROBE_TIMEOUT:g} s", path
        ) from None
    lines = r.stdout.strip().splitlines()
    last = lines[-1] if lines else ""
    if r.returncode == 0 and last.startswith("ok "):
        return last[3:]
    if r.returncode == 2 and last.startswith("error "):
        raise VidclsError(last[6:], path)
    raise VidclsError(f"corrupt model: LiteRT {_death(r.returncode)} loading or running it", path)


def _death(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"crashed ({signal.Signals(-returncode).name})"
        except ValueError:
            return f"crashed (signal {-returncode})"
    if returncode == 134:
        return "aborted"
    return f"failed (exit code {returncode})"
