"""The training benchmark's clips: made from the shared clips at the stated size, rate and
length, different from each other, in one folder per source clip. (The timed training run is
`vidcls bench --train`, not a test.)"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import needs_shared, video

from vidcls.bench.train import build_dataset, plan_clips
from vidcls.media import VideoFile, read_frames
from vidcls.training.dataset import load_dataset

pytestmark = needs_shared


def test_plans_are_seeded_varied_and_within_bounds():
    plans = plan_clips(8, 4, (10.0, 30.0), seed=0)
    assert plans == plan_clips(8, 4, (10.0, 30.0), seed=0) != plan_clips(8, 4, (10.0, 30.0), 1)
    assert [p.source for p in plans] == [0, 1, 2, 3, 0, 1, 2, 3]
    assert len({p.seconds for p in plans}) == 8 and all(10 <= p.seconds <= 30 for p in plans)
    for p in plans:
        x0, y0, x1, y1 = p.crop
        assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1 and 0.8 <= p.speed <= 1.25


def test_the_clips_have_the_stated_size_rate_and_length(tmp_path):
    sources = [video("carving_ice_rpi.mp4"), video("eye_makeup.avi")]
    folder = build_dataset(tmp_path / "bench", sources, n=2, seconds=(0.5, 0.8), processes=1)
    plans = plan_clips(2, 2, (0.5, 0.8))
    data = load_dataset(folder, val_fraction=0)
    assert data.classes == ["carving_ice_rpi", "eye_makeup"] and len(data.train) == 2
    for clip, plan in zip(data.train, plans, strict=True):
        with VideoFile(clip.path) as v:
            info = v.info
            frames = sum(1 for _ in v.frames())
        assert (info.width, info.height, info.codec) == (1280, 720, "h264")
        assert info.fps == pytest.approx(30.0) and frames == round(plan.seconds * 30)
    a, b = (read_frames(c.path)[0] for c in data.train)
    assert np.abs(a.astype(int) - b.astype(int)).mean() > 10  # different pictures
    assert build_dataset(folder, sources, n=2) == folder  # made once, then reused
    assert not [p for p in (tmp_path).iterdir() if p.name.startswith(".building")]
