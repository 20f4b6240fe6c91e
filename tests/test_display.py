"""The mosaic: a tile per source with its frame, top result and open segment."""

from __future__ import annotations

import numpy as np

from vidcls.display import Mosaic
from vidcls.results import Category, FrameResult, Segment, SegmentEvent


def test_mosaic_tiles_each_source_in_a_grid_with_its_results():
    mosaic = Mosaic(["a", "b", "c"], tile=(160, 90))
    grey = np.full((90, 160, 3), 100, np.uint8)
    segment = Segment("carving ice", 72, 0.0, 1.0, 0.9)
    mosaic.update("a", FrameResult(1.0, [Category("carving ice", 72, 0.9)]))
    mosaic.update("a", FrameResult(1.2, [], events=[SegmentEvent("start", 1.2, segment)]))
    image = mosaic.compose({"a": grey, "b": grey, "c": None})
    assert image.shape == (2 * 90, 2 * 160, 3)  # 3 sources: a 2x2 grid
    tile_a, tile_b = image[:90, :160], image[:90, 160:]
    assert not np.array_equal(tile_a, tile_b)  # a has results and a segment drawn, b only a name
    assert image[90:, :160].max() > 0  # c has no frame yet, but its name is written
    assert image[90:, 160:].max() == 0  # no fourth source
    mosaic.update("a", FrameResult(2.0, [], events=[SegmentEvent("end", 2.0, segment)]))
    assert mosaic.segments["a"] is None
