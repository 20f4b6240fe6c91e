"""Clips' features several at once: the pool (threads or processes) gives what one clip at a
time gives, and a feature run over a list of clips counts, caches and groups its rows. Real A0,
real clips."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import A0, needs_shared, video

from vidcls.media import read_clip
from vidcls.training.augment import View
from vidcls.training.dataset import Clip
from vidcls.training.features import FeatureCache, FeatureExtractor
from vidcls.training.pool import ClipPool, FeatureRun
from vidcls.training.progress import Phase

pytestmark = needs_shared


class Steps:
    """A bar that counts the steps it is advanced by."""

    def __init__(self) -> None:
        self.n = 0

    def update(self, n: int = 1) -> None:
        self.n += n


def test_a_feature_run_counts_views_computed_cached_and_skipped(tmp_path):
    good = Clip(video("carving_ice_rpi.mp4"), "carving", 0)
    broken = tmp_path / "broken.mp4"
    broken.write_text("not a video\n" * 100)
    clips = [good, Clip(broken, "carving", 0)]
    extractor = FeatureExtractor(A0, 2)
    cache = FeatureCache(tmp_path / "features")
    first = FeatureRun(extractor, cache, 5.0, seed=0, skipped=[], phase=Phase(Steps()))
    features = first.features(clips, "train", views=2)
    assert features.hidden.shape == (2, 2048) and features.groups.tolist() == [[0, 0], [0, 1]]
    assert features.plain.tolist() == [True, False]
    assert (first.computed, first.cached) == (2, 0)
    assert first.phase.bar.n == 4  # every view of every clip, read or not: the bar ends full
    assert len(first.skipped) == 1 and str(broken) in first.skipped[0]
    again = FeatureRun(extractor, cache, 5.0, seed=0, skipped=[])
    np.testing.assert_array_equal(again.features(clips, "train", 2).hidden, features.hidden)
    assert (again.computed, again.cached) == (0, 2)


def test_a_windowed_run_keeps_every_window_in_its_clip_group(tmp_path):
    """Two clips (4.4 s and 6.7 s at 5 fps), 2 s windows: each clip's rows are its whole clip
    (sample 0, the only plain row), then its windows and views, all in the clip's group."""
    clips = [
        Clip(video("carving_ice_rpi.mp4"), "a", 0),
        Clip(video("carving_ice_android.mp4"), "b", 1),
    ]
    extractor = FeatureExtractor(A0, 1)
    run = FeatureRun(extractor, FeatureCache(tmp_path), 5.0, seed=0, skipped=[], window=2.0)
    got = run.features(clips, "train", views=2)
    rows = [(22, 2), (34, 3)]  # (frames at 5 fps, whole 10-frame windows) of each clip
    groups = got.groups.tolist()
    for number, (_, windows) in enumerate(rows):
        mine = [s for c, s in groups if c == number]
        assert mine == list(range(len(mine)))
        assert len(mine) >= 1 + windows + 1  # the plain view's clip and windows, another view
        assert got.labels[got.groups[:, 0] == number].tolist() == [number] * len(mine)
    assert got.plain.sum() == 2 and (run.computed, run.cached) == (4, 0)
    decoded = read_clip(clips[1].path, 5.0, extractor.short_side, skip_nonref=True)[0]
    plain = extractor.samples(decoded, 10)[0]  # as the run decodes: working size, no B-frames
    assert len(plain) == 1 + rows[1][1]
    np.testing.assert_allclose(got.hidden[got.groups[:, 0] == 1][: len(plain)], plain, atol=1e-5)


@pytest.mark.parametrize("kind", ["thread", "process"])
def test_two_clips_at_once_give_the_features_of_one_at_a_time(tmp_path, kind):
    clips = [Clip(video("carving_ice_rpi.mp4"), "a", 0), Clip(video("eye_makeup.avi"), "b", 1)]
    extractor = FeatureExtractor(A0, 1)
    one = FeatureRun(extractor, FeatureCache(tmp_path / "one"), 2.0, 0, [], window=2.0)
    a = one.features(clips, "train", 1)
    # 9 and 13 frames at 2 fps, 4-frame windows: the clip and 2 windows, the clip and 3.
    assert a.groups.tolist() == [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2], [1, 3]]
    cache = FeatureCache(tmp_path / "two")
    jobs = [(c.path, [View()]) for c in clips]
    with ClipPool(extractor, cache, 2.0, at_once=2, kind=kind) as pool:
        got = dict(pool.run(jobs, window=2.0))
    b = np.concatenate([got[0].views[0][0], got[1].views[0][0]])
    np.testing.assert_array_equal(a.hidden, b)
    assert len(list(cache.folder.glob("*.npz"))) == 2  # cached by the threads or processes
