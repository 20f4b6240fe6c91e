"""Augmented views of a clip: flip, crop, brightness, start offset and playback speed, all in
uint8 on frames already at the working size (slicing, and a lookup table for brightness)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

MIN_FRAMES = 4  # shorter clips are padded by repeating their frames


@dataclass(frozen=True)
class View:
    """One augmentation of a clip: flip, crop box (fractions), first frame, frame step."""

    flip: bool = False
    crop: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)  # x0, y0, x1, y1
    start: int = 0
    step: float = 1.0  # 2: every other frame (faster motion); 0.5: each frame twice
    brightness: float = 1.0

    def key(self) -> str:
        """A stable text naming this view (part of the feature cache key)."""
        return repr(
            (
                self.flip,
                tuple(round(c, 4) for c in self.crop),
                self.start,
                self.step,
                round(self.brightness, 3),
            )
        )


def random_views(rng: np.random.Generator, n: int) -> list[View]:
    """The plain clip plus ``n - 1`` random augmentations."""
    views = [View()]
    for _ in range(n - 1):
        scale = rng.uniform(0.7, 1.0)
        aspect = rng.uniform(0.85, 1.15)
        w, h = min(1.0, scale * aspect), min(1.0, scale / aspect)
        x0, y0 = rng.uniform(0, 1 - w), rng.uniform(0, 1 - h)
        views.append(
            View(
                flip=bool(rng.integers(2)),
                crop=(x0, y0, x0 + w, y0 + h),
                start=int(rng.integers(0, 3)),
                step=float(rng.choice([0.5, 1.0, 1.0, 1.5, 2.0])),
                brightness=float(rng.uniform(0.8, 1.2)),
            )
        )
    return views


def apply_view(frames: list[np.ndarray], view: View) -> list[np.ndarray]:
    """The frames of ``view``: temporal offset and speed, crop, flip, brightness; clips under
    ``MIN_FRAMES`` frames are looped to that length."""
    n = len(frames)
    start = min(view.start, max(0, n - MIN_FRAMES))
    idx = np.arange(start, n, view.step).astype(int)
    if len(idx) < MIN_FRAMES:  # too short after the speed change: keep the plain timing
        idx = np.arange(start, n)
    table = None if view.brightness == 1.0 else brightness_table(view.brightness)
    out = [_picture(frames[i], view, table) for i in idx]
    while len(out) < MIN_FRAMES:  # pad a very short clip by looping it
        out += out[: MIN_FRAMES - len(out)]
    return out


def brightness_table(brightness: float) -> np.ndarray:
    """The 256-entry uint8 lookup table that scales a level by ``brightness`` and clips it:
    level for level what ``np.clip(frame * brightness, 0, 255).astype(np.uint8)`` gives."""
    return np.clip(np.arange(256) * float(brightness), 0, 255).astype(np.uint8)


def _picture(f: np.ndarray, view: View, table: np.ndarray | None) -> np.ndarray:
    """One frame cropped and flipped (slicing, one copy) and brightened (``table``) as
    ``view`` says; all in uint8."""
    h, w = f.shape[:2]
    x0, y0, x1, y1 = view.crop
    f = f[
        int(y0 * h) : max(int(y1 * h), int(y0 * h) + 1),
        int(x0 * w) : max(int(x1 * w), int(x0 * w) + 1),
    ]
    if view.flip:
        f = f[:, ::-1]
    if table is None:
        return np.ascontiguousarray(f)
    return cv2.LUT(np.ascontiguousarray(f) if view.flip else f, table)  # a new array
