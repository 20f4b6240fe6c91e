"""Turn an RGB picture of any size into the model's input: float32 ``[H, W, 3]`` in [0, 1].

``resize="bilinear"`` (default) is OpenCV's INTER_LINEAR on the full RGB frame, the official
example's pipeline, so its logits are reproduced exactly. ``resize="area"`` lets FFmpeg scale
while it converts the decoded frame from YUV, which never builds a full-size RGB frame and is
much cheaper on large video (it averages pixels, so results differ slightly from bilinear).
``fit`` says how a picture of another shape meets the model's: ``"squash"`` stretches it (the
official pipeline), ``"crop"`` takes its centre at the model's aspect, ``"letterbox"`` scales
it whole and pads the rest with black.
"""

from __future__ import annotations

import av
import cv2
import numpy as np

from .errors import VidclsError
from .media import reason, rotation_of, upright
from .options import FITS, RESIZES


class Preprocessor:
    """Reusable buffers for one input size; every call overwrites the returned array.
    ``pixels``: the uint8 buffer :meth:`pixels` fills (shared memory, say), else its own."""

    def __init__(
        self,
        height: int,
        width: int,
        resize: str = "bilinear",
        fit: str = "squash",
        pixels: np.ndarray | None = None,
    ):
        if resize not in RESIZES:
            raise ValueError(f"resize must be one of {RESIZES}, not {resize!r}")
        if fit not in FITS:
            raise ValueError(f"fit must be one of {FITS}, not {fit!r}")
        self.height, self.width, self.resize, self.fit_mode = height, width, resize, fit
        self._pixels = np.empty((height, width, 3), np.uint8) if pixels is None else pixels
        self._input = np.empty((height, width, 3), np.float32)
        self._scaled = np.empty((0, 0, 3), np.uint8)  # letterbox: the picture before padding
        self._reformatter = None  # av.video.reformatter.VideoReformatter, made on first use

    def from_array(self, rgb: np.ndarray) -> np.ndarray:
        """Prepare an RGB uint8 ``[h, w, 3]`` array (any size)."""
        if rgb.shape == self._input.shape and rgb.dtype == np.uint8:  # every fit is a no-op
            np.divide(rgb, np.float32(255), out=self._input, dtype=np.float32)  # no copy first
            return self._input
        self.fit(rgb)
        return self._to_float()

    def fit(self, rgb: np.ndarray) -> np.ndarray:
        """``rgb`` cropped, padded and scaled to the model's size, into the uint8 buffer."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 HxWx3 array, got {rgb.dtype} {rgb.shape}")
        if self.fit_mode == "crop":
            rgb = _centre_crop(rgb, self.width / self.height)
        elif self.fit_mode == "letterbox":
            return self._letterbox(rgb)
        if rgb.shape[:2] == (self.height, self.width):
            np.copyto(self._pixels, rgb)
        else:
            cv2.resize(rgb, (self.width, self.height), self._pixels, interpolation=cv2.INTER_LINEAR)
        return self._pixels

    def _letterbox(self, rgb: np.ndarray) -> np.ndarray:
        """``rgb`` scaled whole to fit the model's size, centred on black."""
        h, w = rgb.shape[:2]
        x, y, sw, sh = letterbox_box(w, h, self.width, self.height)
        if (sh, sw) == (h, w):
            scaled = rgb
        else:
            if self._scaled.shape[:2] != (sh, sw):  # a new picture size: a new buffer, once
                self._scaled = np.empty((sh, sw, 3), np.uint8)
            scaled = cv2.resize(rgb, (sw, sh), self._scaled, interpolation=cv2.INTER_LINEAR)
        out = self._pixels
        out[:y], out[y + sh :], out[y : y + sh, :x], out[y : y + sh, x + sw :] = 0, 0, 0, 0
        out[y : y + sh, x : x + sw] = scaled
        return out

    def from_frame(self, frame) -> np.ndarray:
        """Prepare a decoded PyAV VideoFrame, turned upright as its display matrix says."""
        self.pixels(frame)
        return self._to_float()

    def pixels(self, frame) -> np.ndarray:
        """A decoded frame upright at the model's size, RGB uint8 (``from_frame`` before its
        scaling to [0, 1]; what a decoding process hands over)."""
        rotation = rotation_of(frame)
        if self.resize == "bilinear" or rotation:
            return self.fit(upright(self._reformat(frame, format="rgb24"), rotation))
        w, h = frame.width, frame.height
        if self.fit_mode == "crop":  # scale the short side to the model size, then cut the centre
            s = max(self.width / w, self.height / h)
            w, h = max(self.width, round(w * s)), max(self.height, round(h * s))
        elif self.fit_mode == "letterbox":  # scale the long side to the model size, then pad
            w, h = letterbox_box(w, h, self.width, self.height)[2:]
        else:
            w, h = self.width, self.height
        rgb = self._reformat(frame, format="rgb24", width=w, height=h, interpolation="AREA")
        return self.fit(rgb)

    def _reformat(self, frame, **kwargs) -> np.ndarray:
        if self._reformatter is None:
            from av.video.reformatter import VideoReformatter

            self._reformatter = VideoReformatter()
        try:
            return self._reformatter.reformat(frame, **kwargs).to_ndarray()
        except av.FFmpegError as e:
            raise VidclsError(f"cannot convert a decoded frame ({reason(e)})") from None

    def _to_float(self) -> np.ndarray:
        np.divide(self._pixels, np.float32(255), out=self._input, dtype=np.float32)
        return self._input


def letterbox_box(w: int, h: int, width: int, height: int) -> tuple[int, int, int, int]:
    """Where a ``w`` x ``h`` picture goes, scaled whole into ``width`` x ``height`` and
    centred: ``(x, y, scaled width, scaled height)``."""
    s = min(width / w, height / h)
    sw, sh = min(width, max(1, round(w * s))), min(height, max(1, round(h * s)))
    return (width - sw) // 2, (height - sh) // 2, sw, sh


def _centre_crop(rgb: np.ndarray, aspect: float) -> np.ndarray:
    """The largest centred region of ``rgb`` with width/height = ``aspect`` (a view)."""
    h, w = rgb.shape[:2]
    if w > h * aspect:
        cw = round(h * aspect)
        x = (w - cw) // 2
        return rgb[:, x : x + cw]
    ch = round(w / aspect)
    y = (h - ch) // 2
    return rgb[y : y + ch]
