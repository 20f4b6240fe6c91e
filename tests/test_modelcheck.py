"""Models are untrusted: tried in a child process before this one loads them."""

from __future__ import annotations

import os

import pytest
from cli_run import assert_clean_error, run
from conftest import A0, CUSTOM, needs_shared, video

from vidcls.errors import VidclsError
from vidcls.model import StreamModel
from vidcls.modelcheck import sha256

pytestmark = needs_shared

# One bit of the A0 file that makes XNNPack refuse a quantization parameter: the model loads,
# and LiteRT raises at the first inference (found by mutation fuzzing, seed 1, case 4).
ZERO_POINT_BYTE, ZERO_POINT_VALUE = 3_197_234, 1


@pytest.fixture
def broken_a0(tmp_path):
    data = bytearray(A0.read_bytes())
    assert data[ZERO_POINT_BYTE] == 0
    data[ZERO_POINT_BYTE] = ZERO_POINT_VALUE
    path = tmp_path / "broken.tflite"
    path.write_bytes(bytes(data))
    return path


def test_a_model_that_fails_at_inference_is_refused_when_loaded(broken_a0):
    with pytest.raises(VidclsError, match="LiteRT failed running the model"):
        StreamModel(broken_a0)
    r = run("classify", video("carving_ice_rpi.mp4"), "--model", broken_a0)
    assert_clean_error(r, broken_a0, "zero-point")


def test_in_process_inference_errors_are_clean_too(broken_a0):
    """Without the child (as in the child itself), the first step raises a VidclsError."""
    try:
        model = StreamModel(broken_a0, backend="interpreter", isolate=False)
    except VidclsError:
        pytest.skip("this LiteRT refuses the file when loading it")
    with pytest.raises(VidclsError, match="zero-point"):
        model.new_stream().step(model.blank_image())


def test_models_are_tried_once_and_remembered(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("VIDCLS_CACHE", str(cache))
    import subprocess

    trials, real_run = [], subprocess.run

    def counted(command, **kwargs):
        if "vidcls.modeltrial" in command:
            trials.append(command)
        return real_run(command, **kwargs)

    monkeypatch.setattr(subprocess, "run", counted)
    StreamModel(CUSTOM)
    assert len(trials) == 1  # tried in a child process
    markers = list((cache / "verified").iterdir())
    assert len(markers) == 1 and markers[0].name.startswith(sha256(CUSTOM))
    assert markers[0].read_text() == "compiled"
    StreamModel(CUSTOM)
    assert len(trials) == 1  # remembered: no child the second time


def test_the_published_a0_needs_no_trial(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("VIDCLS_CACHE", str(cache))
    StreamModel(A0)
    assert not (cache / "verified").exists()


def test_a_model_that_kills_its_process_is_an_error_not_a_crash(tmp_path, monkeypatch):
    """Whatever ends the child (here a kill from outside, as a native crash would) becomes
    one error line in this process."""
    import signal
    import subprocess

    real_run = subprocess.run

    def killed(command, **kwargs):
        if "vidcls.modeltrial" in command:
            command = ["bash", "-c", "kill -SEGV $$"]
        return real_run(command, **kwargs)

    monkeypatch.setattr(subprocess, "run", killed)
    monkeypatch.setenv("VIDCLS_CACHE", str(tmp_path))
    with pytest.raises(VidclsError, match=r"LiteRT crashed \(SIGSEGV\)"):
        StreamModel(CUSTOM)
    assert signal.SIGSEGV and os.getpid()  # this process is still here


def test_a_forged_tensor_shape_is_refused_without_allocating_it(tmp_path):
    """One byte of the A0 file turns a state into [15073281, 1, 1, 1, 184] (10 GB of float32):
    LiteRT then spends minutes allocating. It is refused from the layout, at once (found by
    mutation fuzzing)."""
    data = bytearray(A0.read_bytes())
    assert data[3_271_806] == 0
    data[3_271_806] = 230
    forged = tmp_path / "forged.tflite"
    forged.write_bytes(bytes(data))
    # The message is the layout check's: LiteRT never got to allocate (the run's timeout is
    # only a hang guard).
    r = run("classify", video("carving_ice_rpi.mp4"), "--model", forged, timeout=120)
    assert_clean_error(r, forged, "impossible shape [15073281, 1, 1, 1, 184]")
