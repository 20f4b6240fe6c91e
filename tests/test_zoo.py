"""The model zoo: mirror folder, file:// and HTTP mirrors, checksums, atomic cache writes."""

from __future__ import annotations

import hashlib
import http.server
import os
import threading
from functools import partial

import pytest
from conftest import A0, MODELS, needs_shared

from vidcls import VidclsError, zoo

pytestmark = needs_shared


def test_fetch_from_mirror_folder_verifies_and_caches():
    m = zoo.MODELS["a0"]
    assert not zoo.is_cached(m)
    path = zoo.resolve_model("a0")
    assert path == zoo.cached_path(m) and zoo.is_cached(m)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == m.sha256
    assert zoo.resolve_model("A0") == path  # names are case-insensitive; no second fetch


def test_fetch_from_file_url(monkeypatch):
    monkeypatch.setenv("VIDCLS_MIRROR", MODELS.as_uri())
    assert zoo.fetch(zoo.MODELS["a0"]).read_bytes() == A0.read_bytes()


@pytest.fixture
def http_mirror():
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(MODELS))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def test_fetch_over_http(http_mirror, monkeypatch):
    monkeypatch.setenv("VIDCLS_MIRROR", http_mirror)
    path = zoo.fetch(zoo.MODELS["a0"], progress=True)
    assert path.read_bytes() == A0.read_bytes()


def downloads() -> list:
    """What the cache holds but the session's record of models tried (conftest)."""
    return [p for p in zoo.cache_dir().iterdir() if p.name != "verified"]


def test_missing_in_http_mirror(http_mirror, monkeypatch):
    monkeypatch.setenv("VIDCLS_MIRROR", http_mirror)
    with pytest.raises(VidclsError, match="HTTP 404"):
        zoo.fetch(zoo.MODELS["a1"])
    assert downloads() == []  # nothing half-written left behind


def test_checksum_mismatch_keeps_nothing(tmp_path, monkeypatch):
    bad = zoo.ZooModel("a0", "a0", "int8", 172, None, sha256="0" * 64)
    with pytest.raises(VidclsError, match="checksum mismatch"):
        zoo.fetch(bad)
    assert not zoo.is_cached(bad)
    assert downloads() == []


def test_unreachable_and_missing_sources(monkeypatch, tmp_path):
    monkeypatch.setenv("VIDCLS_MIRROR", "http://127.0.0.1:9/")
    with pytest.raises(VidclsError, match="cannot download model"):
        zoo.fetch(zoo.MODELS["a0"])
    monkeypatch.setenv("VIDCLS_MIRROR", str(tmp_path))
    with pytest.raises(VidclsError, match="not found in the mirror"):
        zoo.fetch(zoo.MODELS["a2"])


def test_resolve_paths_and_unknown_names(tmp_path):
    assert zoo.resolve_model(A0) == A0
    assert zoo.resolve_model(str(tmp_path / "x.tflite")) == tmp_path / "x.tflite"
    with pytest.raises(VidclsError, match="unknown model 'a9'"):
        zoo.resolve_model("a9")


def test_published_sources_without_mirror(monkeypatch):
    monkeypatch.delenv("VIDCLS_MIRROR")
    src = zoo.source_of(zoo.MODELS["a2-float16"])
    assert src.startswith("https://") and "/a2/stream/kinetics-600/" in src and "float16" in src
    monkeypatch.setenv("VIDCLS_CACHE", "")
    monkeypatch.setenv("XDG_CACHE_HOME", "/tmp/xdg")
    assert str(zoo.cache_dir()) == os.path.join("/tmp/xdg", "vidcls")
