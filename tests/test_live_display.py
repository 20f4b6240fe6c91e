"""Live windows: the mosaic (a tile per source with its frame, top result and open segment)
and the single-source window's picture, composed without a screen."""

from __future__ import annotations

import numpy as np

from vidcls.live.display import Mosaic
from vidcls.results import Category, FrameResult, Segment, SegmentEvent


def test_mosaic_tiles_each_source_in_a_grid_with_its_results():
    mosaic = Mosaic(["a", "b", "c"], tile=(160, 90))
    grey = np.full((90, 160, 3), 100, np.uint8)
    segment = Segment("carving ice", 72, 0.0, 1.0, 0.9)
    mosaic.result("a", FrameResult(1.0, [Category("carving ice", 72, 0.9)]))
    mosaic.event("a", SegmentEvent("start", 1.2, segment))
    image = mosaic.compose({"a": grey, "b": grey, "c": None})
    assert image.shape == (2 * 90, 2 * 160, 3)  # 3 sources: a 2x2 grid
    tile_a, tile_b = image[:90, :160], image[:90, 160:]
    assert not np.array_equal(tile_a, tile_b)  # a has results and a segment drawn, b only a name
    assert image[90:, :160].max() > 0  # c has no frame yet, but its name is written
    assert image[90:, 160:].max() == 0  # no fourth source
    mosaic.event("a", SegmentEvent("end", 2.0, segment))
    assert mosaic.segments["a"] is None


def test_the_window_enlarges_small_frames_and_draws_the_latest_result():
    from vidcls.live.display import LiveWindow

    window = LiveWindow.__new__(LiveWindow)  # no screen here: compose only
    super(LiveWindow, window).__init__()
    small = np.full((172, 172, 3), 100, np.uint8)
    plain = window.compose("cam", small)
    assert plain.shape == (480, 480, 3)
    window.result("cam", FrameResult(1.0, [Category("carving ice", 72, 0.9)], infer_ms=4.0))
    drawn = window.compose("cam", small)
    assert not np.array_equal(plain, drawn) and small.max() == 100  # drawn on a copy
