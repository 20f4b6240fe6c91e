"""The classifier API: softmax, filters in the official order, frames of any size, streams."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SHARED, needs_shared

from vidcls import ClassifierOptions, VidclsError, VideoClassifier
from vidcls.classifier import _Filter, softmax
from vidcls.preprocess import Preprocessor

LABELS = ["a", "b", "c", "d", "e"]


def test_softmax_is_stable_and_normalised():
    x = np.array([1000.0, 1001.0, 999.0, -1e4], np.float32)
    p = softmax(x)
    assert np.all(np.isfinite(p)) and p.sum() == pytest.approx(1.0, abs=1e-6)
    ref = np.exp(x.astype(np.float64) - 1001.0)
    np.testing.assert_allclose(p, ref / ref.sum(), rtol=1e-5)
    out = np.empty(4, np.float32)
    assert softmax(x, out=out) is out


def _filter(**kw) -> _Filter:
    return _Filter.from_options(ClassifierOptions(**kw), LABELS)


def test_filters_apply_deny_allow_threshold_then_max_results():
    p = np.array([0.05, 0.4, 0.3, 0.15, 0.1], np.float32)
    assert [c.label for c in _filter(top_k=0).top(p, LABELS)] == ["b", "c", "d", "e", "a"]
    assert [c.label for c in _filter(top_k=2).top(p, LABELS)] == ["b", "c"]
    assert [c.label for c in _filter(deny=["b"], top_k=2).top(p, LABELS)] == [
        "c",
        "d",
    ]
    f = _filter(allow=["a", "b", "e"], deny=["b"], top_k=5)
    assert [c.label for c in f.top(p, LABELS)] == ["e", "a"]
    f = _filter(threshold=0.12, top_k=0)
    assert [c.label for c in f.top(p, LABELS)] == ["b", "c", "d"]
    # Threshold before max_results: fewer than max_results may come back.
    f = _filter(threshold=0.35, top_k=3)
    assert [(c.label, c.index) for c in f.top(p, LABELS)] == [("b", 1)]
    assert f.top(p, LABELS)[0].score == pytest.approx(0.4)


def test_unknown_labels_in_lists_are_errors():
    with pytest.raises(VidclsError, match="unknown label.*allow list: zz"):
        _filter(allow=["a", "zz"])
    with pytest.raises(VidclsError, match="deny list"):
        _filter(deny=["nope"])


def test_centre_crop_keeps_the_middle():
    pre = Preprocessor(4, 4, fit="crop")
    wide = np.zeros((4, 12, 3), np.uint8)
    wide[:, 4:8] = 255  # the centre square is white, the sides black
    assert pre.from_array(wide).min() == 1.0
    tall = np.zeros((10, 4, 3), np.uint8)
    tall[3:7] = 255
    assert pre.from_array(tall).min() == 1.0
    squash = Preprocessor(4, 4)
    assert squash.from_array(wide).min() == 0.0


def test_letterbox_keeps_the_whole_picture_on_black():
    pre = Preprocessor(8, 8, fit="letterbox")
    tall = np.full((16, 8, 3), 200, np.uint8)  # half as wide as tall: 4 columns of 8
    got = pre.fit(tall)
    assert (got[:, 2:6] == 200).all()
    assert (got[:, :2] == 0).all() and (got[:, 6:] == 0).all()
    wide = np.full((4, 16, 3), 90, np.uint8)
    got = pre.fit(wide)  # the same buffer: the old bars and picture are all overwritten
    assert (got[3:5] == 90).all() and (got[:3] == 0).all() and (got[5:] == 0).all()
    same = np.full((8, 8, 3), 7, np.uint8)
    assert (pre.fit(same) == 7).all()


@needs_shared
def test_letterbox_from_decoded_frames_matches_both_resizes():
    """Frames from the decoder (area) and from arrays (bilinear) are boxed the same way."""
    import av

    with av.open(str(SHARED / "assets/videos/carving_ice_android.mp4")) as c:
        frames = c.decode(video=0)
        for _ in range(30):  # past the black opening frames
            next(frames)
        frame = next(frames).reformat(width=180, height=360)
    a = Preprocessor(172, 172, "area", "letterbox").pixels(frame).copy()
    b = Preprocessor(172, 172, "bilinear", "letterbox").pixels(frame).copy()
    for got in (a, b):
        assert (got[:, :43] == 0).all() and (got[:, 129:] == 0).all()
        assert got[:, 43:129].mean() > 20
    assert np.abs(a.astype(int) - b.astype(int))[:, 43:129].mean() < 12


def test_preprocessor_rejects_wrong_arrays():
    pre = Preprocessor(8, 8)
    with pytest.raises(ValueError, match="RGB uint8"):
        pre.from_array(np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match="RGB uint8"):
        pre.from_array(np.zeros((8, 8, 3), np.float32))


@needs_shared
def test_classify_numpy_frames_of_any_size_and_reset():
    clf = VideoClassifier.create_from_options(ClassifierOptions(top_k=3))
    rng = np.random.default_rng(0)
    frames = [
        rng.integers(0, 256, (h, w, 3), np.uint8) for h, w in [(240, 320), (172, 172), (90, 60)]
    ]
    first = [clf.classify(f) for f in frames]
    assert all(len(c) == 3 for c in first)
    assert clf.frames_seen == 3
    clf.reset()
    assert clf.frames_seen == 0
    assert clf.classify(frames[0]) == first[0]


@needs_shared
def test_new_stream_shares_the_model_not_the_state():
    a = VideoClassifier.create_from_options(ClassifierOptions(top_k=0))
    b = a.new_stream()
    assert b.model is a.model
    rng = np.random.default_rng(1)
    f1, f2 = (rng.integers(0, 256, (172, 172, 3), np.uint8) for _ in range(2))
    a.classify(f1)
    a.classify(f2)
    alone = a.new_stream()
    expected = alone.classify(f2)
    assert b.classify(f2) == expected  # b never saw f1: it matches a fresh stream


@needs_shared
def test_bad_options_are_clear_errors():
    with pytest.raises(VidclsError, match="unknown model 'a9'"):
        VideoClassifier.create_from_options(ClassifierOptions(model="a9"))
    with pytest.raises(VidclsError, match="unknown resize"):
        VideoClassifier.create_from_options(ClassifierOptions(resize="lanczos"))
