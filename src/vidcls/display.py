"""The live window: frames with the latest results drawn on them (OpenCV); q quits, r resets."""

from __future__ import annotations

import math

import cv2
import numpy as np

from .capture import Captured
from .errors import VidclsError
from .media import to_rgb
from .overlay import draw_results
from .results import FrameResult

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


class LiveWindow:
    """Shows every captured frame with the latest result; ``show`` returns False to stop.

    ``on_reset`` is called when r is pressed.
    """

    def __init__(self, on_reset=None) -> None:
        self.on_reset = on_reset
        self.active_segment: str | None = None
        open_window()

    def show(self, got: Captured, result: FrameResult | None) -> bool:
        frame = got.frame
        rgb = frame if isinstance(frame, np.ndarray) else to_rgb(frame)  # upright
        h, w = rgb.shape[:2]
        if h < MIN_DISPLAY_HEIGHT:  # small sources are enlarged so the text reads
            size = (round(w * MIN_DISPLAY_HEIGHT / h), MIN_DISPLAY_HEIGHT)
            rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR)
        else:
            rgb = rgb.copy()
        top, status = [], None
        if result is not None:
            top = result.top[:3]
            status = f"{result.infer_ms or 0:.1f} ms  {result.input_fps or 0:.1f} fps in"
            for e in result.events:
                self.active_segment = e.segment.label if e.kind == "start" else None
        draw_results(rgb, top, segment=self.active_segment, status=status)
        cv2.imshow(WINDOW_NAME, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        key = cv2.waitKey(1) & 0xFF
        if key == ord("q"):
            return False
        if key == ord("r") and self.on_reset is not None:
            self.on_reset()
            self.active_segment = None
        return True

    def close(self) -> None:
        cv2.destroyAllWindows()


class Mosaic:
    """One window for several sources: a tile each with its freshest frame, top result and
    open segment; q quits. ``compose`` builds the picture (no window needed)."""

    def __init__(self, names: list[str], tile: tuple[int, int] = (320, 180)) -> None:
        self.names = list(names)
        self.tile = tile
        self.columns = max(1, math.ceil(math.sqrt(len(self.names))))
        self.latest: dict[str, FrameResult] = {}
        self.segments: dict[str, str | None] = {}
        self.window = False

    def open(self) -> Mosaic:
        """Open the window; VidclsError where OpenCV has no GUI or there is no display."""
        open_window()
        self.window = True
        return self

    def update(self, name: str, result: FrameResult) -> None:
        """Note a source's latest result and segment events."""
        if result.top:
            self.latest[name] = result
        for e in result.events:
            self.segments[name] = e.segment.label if e.kind == "start" else None

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

    def show(self, grabbers: dict) -> bool:
        """Show every source's freshest frame; False when q was pressed."""
        frames = {}
        for name, grabber in grabbers.items():
            got = grabber.latest(-1, 0.0)
            if got is None:
                frames[name] = None
            elif isinstance(got.frame, np.ndarray):
                frames[name] = cv2.resize(got.frame, self.tile, interpolation=cv2.INTER_AREA)
            else:
                frames[name] = to_rgb(got.frame, self.tile)
            frame = frames[name]
            if frame is not None and frame.shape[1::-1] != self.tile:  # turned upright
                frames[name] = cv2.resize(frame, self.tile, interpolation=cv2.INTER_AREA)
        image = self.compose(frames)
        cv2.imshow(WINDOW_NAME, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        return cv2.waitKey(1) & 0xFF != ord("q")

    def close(self) -> None:
        if self.window:
            cv2.destroyAllWindows()
