"""Shared fixtures: the real models and clips in ../shared, and an isolated model cache."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

# A run started in the background of a script (`.ci/run &`) inherits SIGINT ignored, and so
# would every command a test starts: a test's Ctrl-C (SIGINT) would then do nothing and its
# wait would hang. A handler instead of "ignored" is reset to the default in each command
# started from here, so they take Ctrl-C as they would from a terminal.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VIDCLS_SHARED", ROOT.parent / "shared"))
MODELS = SHARED / "assets" / "models"
VIDEOS = SHARED / "assets" / "videos"
REFERENCE = SHARED / "assets" / "reference"
A0 = MODELS / "movinet_a0_stream_int8.tflite"
CUSTOM = MODELS / "custom_7class" / "a0_stream_int8_7class.tflite"
CUSTOM_LABELS = MODELS / "custom_7class" / "labels.txt"

needs_shared = pytest.mark.skipif(
    not A0.is_file(), reason=f"real models and clips not found in {SHARED} (set VIDCLS_SHARED)"
)


@pytest.fixture(scope="session", autouse=True)
def _session_mirror(tmp_path_factory):
    """The shared folder is the zoo mirror for the whole run (module fixtures included), and
    the default data folder of ``vidcls serve`` and ``vidcls users`` is a temporary one:
    no test writes into the real home."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VIDCLS_MIRROR", str(MODELS))
        mp.setenv("VIDCLS_CACHE", str(tmp_path_factory.mktemp("session-cache")))
        mp.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("session-data")))
        mp.delenv("VIDCLS_DATA", raising=False)
        yield


@pytest.fixture(autouse=True)
def _isolated_data(tmp_path_factory, monkeypatch):
    """Every test has a default data folder of its own (empty: no events, clips or users
    left by another test)."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("data")))
    monkeypatch.delenv("VIDCLS_DATA", raising=False)


@pytest.fixture(scope="session")
def _verified(tmp_path_factory) -> Path:
    """Which model files LiteRT was tried on (in a child process) this session."""
    return tmp_path_factory.mktemp("verified")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch, _verified):
    """Every test sees an empty model cache and the shared folder as the zoo mirror. A model
    file tried once is remembered for the session, as in a user's cache (tests of the trial
    itself, in test_modelcheck.py, give a cache of their own)."""
    cache = tmp_path_factory.mktemp("cache")
    (cache / "verified").symlink_to(_verified, target_is_directory=True)
    monkeypatch.setenv("VIDCLS_CACHE", str(cache))
    monkeypatch.setenv("VIDCLS_MIRROR", str(MODELS))


@pytest.fixture(scope="session")
def a0_model():
    """The official A0 int8 stream model, loaded once for the session."""
    if not A0.is_file():
        pytest.skip(f"{A0} not found")
    from vidcls.model import StreamModel

    return StreamModel(A0, num_threads=2)


def video(name: str) -> Path:
    path = VIDEOS / name
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path


def four_cameras(tmp_path: Path, extra: str = "") -> Path:
    """A cameras config of three shared clips and one zoned camera, on ``replay``, with
    ``extra`` keys: the file's path."""
    path = tmp_path / "cameras.yml"
    path.write_text(
        f"""\
replay: true
min_duration: 0.4
{extra}
cameras:
  ice: {{source: {video("carving_ice_rpi.mp4")}}}
  eye: {{source: {video("eye_makeup.avi")}}}
  android: {{source: {video("carving_ice_android.mp4")}}}
  zoned:
    source: {video("eye_makeup.avi")}
    zones: {{left: [0, 0, 0.5, 1]}}
"""
    )
    return path


def end_facts(docs) -> list[tuple]:
    """The end events' facts every front end gives (not ids or wall-clock times), sorted."""
    out = []
    for d in docs:
        if d.get("event") == "end":
            s = d["segment"]
            out.append((d["source"], d.get("zone"), s["label"], s["start"], s["end"], s["peak"]))
    return sorted(out)
