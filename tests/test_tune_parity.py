"""The parity run: the replica against LiteRT per model, clip and rate, as figures and lines."""

from __future__ import annotations

import pytest
from conftest import A0, needs_shared, video
from jax_cache import jax_compilation_cache  # noqa: F401

pytest.importorskip("jax", reason="jax not installed (the tune extra)")

from vidcls.training.tune.parity import run_parity  # noqa: E402

pytestmark = [needs_shared, pytest.mark.usefixtures("jax_compilation_cache")]


def test_a_clip_longer_than_the_every_frame_limit_is_compared_at_5_fps_only():
    lines: list[str] = []
    clip = video("carving_ice_rpi.mp4")  # 131 frames, 22 at 5 fps
    (got,) = run_parity([A0], [clip], every_frame_max=100, on_result=lines.append)
    assert (got.model, got.clip, got.fps, got.frames) == (A0, clip, 5.0, 22)
    assert got.max_diff < 2.5 and got.spread > 5  # as tests/test_tune_replica.py
    assert got.top1 >= 0.75 and 0 < got.top5 <= got.overlap <= 1
    assert got.replica_ms > 0
    assert lines == [got.line()]
    assert "carving_ice_rpi.mp4" in lines[0] and "5 fps" in lines[0] and "22 frames" in lines[0]
