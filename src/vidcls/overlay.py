"""Draw results on a picture with OpenCV: the top categories, a segment label, status text."""

from __future__ import annotations

import cv2
import numpy as np

from .results import Category

_FONT = cv2.FONT_HERSHEY_SIMPLEX


def draw_results(
    image: np.ndarray,
    top: list[Category],
    *,
    segment: str | None = None,
    status: str | None = None,
) -> np.ndarray:
    """Write the top categories (with score bars) onto ``image`` in place and return it.

    Text size follows the picture's height, so a 172 px clip and a 1080p frame both read well.
    """
    h, w = image.shape[:2]
    scale = max(0.35, h / 720)
    line = int(30 * scale) + 4
    thick = max(1, round(scale * 1.5))
    rows = [(f"{c.label} {c.score:.2f}", c.score) for c in top]
    if segment:
        rows.insert(0, (f"> {segment}", None))
    if status:
        rows.append((status, None))
    if not rows:
        return image
    width = max(cv2.getTextSize(text, _FONT, 0.6 * scale, thick)[0][0] for text, _ in rows)
    box_w, box_h = min(w, width + 2 * line // 2 + 8), min(h, line * len(rows) + line // 3)
    roi = image[:box_h, :box_w]
    roi[:] = (roi * 0.45).astype(image.dtype)  # darken behind the text
    for i, (text, score) in enumerate(rows):
        y = line * (i + 1) - line // 4
        if score is not None:
            bar = int((box_w - 8) * float(score))
            cv2.rectangle(image, (4, y + 3), (4 + bar, y + 3 + max(2, thick)), (80, 200, 120), -1)
        color = (255, 220, 90) if score is None else (255, 255, 255)
        cv2.putText(image, text, (6, y), _FONT, 0.6 * scale, color, thick, cv2.LINE_AA)
    return image
