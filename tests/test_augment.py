"""Augmented views of a clip, on synthetic frames whose pixels name their frame number."""

from __future__ import annotations

import numpy as np
import pytest

from vidcls.training.augment import MIN_FRAMES, View, apply_view, random_views


def numbered(n: int, h: int = 20, w: int = 40) -> list[np.ndarray]:
    """``n`` RGB frames; frame i is filled with i, and its left half is brighter."""
    frames = []
    for i in range(n):
        f = np.full((h, w, 3), 10 * i, np.uint8)
        f[:, : w // 2] += 5
        frames.append(f)
    return frames


def ids(frames: list[np.ndarray]) -> list[int]:
    return [int(f.min()) // 10 for f in frames]


def test_the_plain_view_is_the_clip_itself():
    frames = numbered(7)
    out = apply_view(frames, View())
    assert len(out) == 7
    for a, b in zip(out, frames, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_clip_under_four_frames_is_looped():
    assert ids(apply_view(numbered(2), View())) == [0, 1, 0, 1]
    assert ids(apply_view(numbered(1), View())) == [0] * MIN_FRAMES


def test_speed_offset_crop_flip_brightness():
    frames = numbered(12)
    assert ids(apply_view(frames, View(step=2.0))) == [0, 2, 4, 6, 8, 10]
    assert ids(apply_view(frames, View(step=0.5)))[:4] == [0, 0, 1, 1]
    assert ids(apply_view(frames, View(start=2)))[0] == 2
    # Too short after the speed change: the plain timing instead.
    assert ids(apply_view(numbered(6), View(step=2.0))) == [0, 1, 2, 3, 4, 5]
    (f,) = apply_view(frames, View(crop=(0.0, 0.0, 0.5, 0.5)))[:1]
    assert f.shape == (10, 20, 3) and f.flags.c_contiguous
    flipped = apply_view(frames, View(flip=True))[0]
    assert flipped[0, -1, 0] == 5 and flipped[0, 0, 0] == 0  # the bright half moved right
    bright = apply_view(frames, View(brightness=1.2))[3]
    assert bright.dtype == np.uint8 and bright[0, -1, 0] == 36


def test_random_views_are_seeded_and_start_with_the_clip():
    a = random_views(np.random.default_rng([0, 1, 5]), 8)
    b = random_views(np.random.default_rng([0, 1, 5]), 8)
    assert a == b and len(a) == 8 and a[0] == View()
    assert len({v.key() for v in a}) == 8
    for v in a[1:]:
        x0, y0, x1, y1 = v.crop
        assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1
        assert 0.8 <= v.brightness <= 1.2 and v.step in (0.5, 1.0, 1.5, 2.0)
    assert random_views(np.random.default_rng([1, 1, 5]), 8) != a


@pytest.mark.parametrize("n", [1, 3, 4, 9])
def test_every_view_has_at_least_four_frames(n):
    for view in random_views(np.random.default_rng(n), 6):
        assert len(apply_view(numbered(n), view)) >= MIN_FRAMES


def float_reference(f: np.ndarray, view: View) -> np.ndarray:
    """The view's picture computed in float: crop by fractions, mirror, scale and clip."""
    h, w = f.shape[:2]
    x0, y0, x1, y1 = view.crop
    f = f[
        int(y0 * h) : max(int(y1 * h), int(y0 * h) + 1),
        int(x0 * w) : max(int(x1 * w), int(x0 * w) + 1),
    ]
    f = f[:, ::-1] if view.flip else f
    return np.clip(f.astype(np.float64) * view.brightness, 0, 255)


def test_uint8_views_equal_the_float_reference_within_one_level():
    rng = np.random.default_rng(3)
    frames = [rng.integers(0, 256, (36, 64, 3), np.uint8) for _ in range(6)]
    source = [f.copy() for f in frames]
    for view in random_views(np.random.default_rng(7), 12)[1:]:
        view = View(view.flip, view.crop, 0, 1.0, view.brightness)  # every frame, in order
        for got, f in zip(apply_view(frames, view), frames, strict=True):
            want = float_reference(f, view)
            assert got.dtype == np.uint8 and got.shape == want.shape and got.flags.c_contiguous
            assert np.abs(got.astype(np.float64) - want).max() <= 1.0
            # ... and level for level what the float code gave before (cached features stay).
            np.testing.assert_array_equal(got, want.astype(np.uint8))
    for a, b in zip(frames, source, strict=True):  # the decoded frames are never changed
        np.testing.assert_array_equal(a, b)
