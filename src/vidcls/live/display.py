"""Live windows (OpenCV): one source's frames with its latest results, or a mosaic of many.

Both are :class:`~vidcls.live.outputs.Output` s (they draw the results and segments they are
given) that a :class:`~vidcls.live.watch.Watch` shows every ``period`` seconds from the
calling thread, with each source's freshest picture (decoded in a child process or not).
q quits; in the single-source window r resets the state.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np

from ..errors import VidclsError
from ..overlay import draw_results
from ..results import FrameResult, SegmentEvent
from .capture import FrameSource
from .outputs import Output

WINDOW_NAME = "vidcls"
MIN_DISPLAY_HEIGHT = 480


def open_window() -> None:
    """Open the window; VidclsError where OpenCV has no GUI or there is no display."""
    try:
        cv2.namedWindow(WINDOW_NAME, cv2.WINDOW_AUTOSIZE)
    except cv2.error:
        raise VidclsError(
            "cannot open a window: this OpenCV has no GUI (opencv-python-headless) or there "
            "is no display; use --headless, or install opencv-python"
        ) from None


class _Board(Output):
    """The latest result and open segment of each source, as a window draws them."""

    period = 0.2  # seconds between refreshes

    def __init__(self) -> None:
        self.latest: dict[str, FrameResult] = {}
        self.segments: dict[str, str | None] = {}
        self.on_reset: Callable[[str], None] | None = None  # r pressed (single-source window)

    def result(self, source: str, result: FrameResult) -> None:
        self.latest[source] = result

    def event(self, source: str, event: SegmentEvent) -> None:
        self.segments[source] = event.segment.label if event.kind == "start" else None


class LiveWindow(_Board):
    """One source's frames at about 30 per second with its latest result; ``on_reset(name)``
    is called when r is pressed."""

    period = 1 / 30

    def __init__(self) -> None:
        super().__init__()
        open_window()

    def show(self, sources: dict[str, FrameSource]) -> bool:
        """Show the first source's freshest frame; False when q was pressed."""
        name, source = next(iter(sources.items()))
        rgb = source.picture()
        if rgb is not None:
            cv2.imshow(WINDOW_NAME, cv2.cvtColor(self.compose(name, rgb), cv2.COLOR_RGB2BGR))
        key = cv2.waitKey(1) & 0xFF
        if key == ord("r") and self.on_reset is not None:
            self.on_reset(name)
            self.segments[name] = None
        return key != ord("q")

    def compose(self, name: str, rgb: np.ndarray) -> np.ndarray:
        """``rgb`` (enlarged when small, so the text reads) with the results drawn (RGB)."""
        h, w = rgb.shape[:2]
        if h < MIN_DISPLAY_HEIGHT:
            size = (round(w * MIN_DISPLAY_HEIGHT / h), MIN_DISPLAY_HEIGHT)
            rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR)
        else:
            rgb = rgb.copy()
        result = self.latest.get(name)
        top, status = [], None
        if result is not None:
            top = result.top[:3]
            status = f"{result.infer_ms or 0:.1f} ms  {result.input_fps or 0:.1f} fps in"
        return draw_results(rgb, top, segment=self.segments.get(name), status=status)

    def close(self, timeout: float = 5.0) -> None:
        cv2.destroyAllWindows()


class Mosaic(_Board):
    """One window for several sources: a tile each with its freshest frame, top result and
    open segment; q quits. ``compose`` builds the picture (no window needed)."""

    def __init__(self, names: list[str], tile: tuple[int, int] = (320, 180)) -> None:
        super().__init__()
        self.names = list(names)
        self.tile = tile
        self.columns = max(1, math.ceil(math.sqrt(len(self.names))))
        self.window = False

    def open(self) -> Mosaic:
        """Open the window; VidclsError where OpenCV has no GUI or there is no display."""
        open_window()
        self.window = True
        return self

    def compose(self, frames: dict[str, np.ndarray | None]) -> np.ndarray:
        """The mosaic (RGB) of ``frames`` (each tile-sized, or None for a source with none)."""
        w, h = self.tile
        rows = math.ceil(len(self.names) / self.columns)
        canvas = np.zeros((rows * h, self.columns * w, 3), np.uint8)
        for i, name in enumerate(self.names):
            y, x = (i // self.columns) * h, (i % self.columns) * w
            tile = canvas[y : y + h, x : x + w]
            frame = frames.get(name)
            if frame is not None:
                tile[:] = frame[:h, :w]
            result = self.latest.get(name)
            draw_results(
                tile,
                result.top[:2] if result is not None else [],
                segment=self.segments.get(name),
                status=name,
            )
        return canvas

    def show(self, sources: dict[str, FrameSource]) -> bool:
        """Show every source's freshest picture; False when q was pressed."""
        frames = {name: source.picture(self.tile) for name, source in sources.items()}
        image = self.compose(frames)
        cv2.imshow(WINDOW_NAME, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        return cv2.waitKey(1) & 0xFF != ord("q")

    def close(self, timeout: float = 5.0) -> None:
        if self.window:
            cv2.destroyAllWindows()
