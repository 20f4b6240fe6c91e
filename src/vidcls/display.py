"""The live window: frames with the latest results drawn on them (OpenCV); q quits, r resets."""

from __future__ import annotations

import cv2
import numpy as np

from .capture import Captured
from .errors import VidclsError
from .media import to_rgb
from .overlay import draw_results
from .results import FrameResult

WINDOW_NAME = "vidcls"
MIN_DISPLAY_HEIGHT = 480


class LiveWindow:
    """Shows every captured frame with the latest result; ``show`` returns False to stop.

    ``on_reset`` is called when r is pressed.
    """

    def __init__(self, on_reset=None) -> None:
        self.on_reset = on_reset
        self.active_segment: str | None = None
        try:
            cv2.namedWindow(WINDOW_NAME, cv2.WINDOW_AUTOSIZE)
        except cv2.error:
            raise VidclsError(
                "cannot open a window: this OpenCV has no GUI (opencv-python-headless) or there "
                "is no display; use --headless, or install opencv-python"
            ) from None

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
