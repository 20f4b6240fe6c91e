"""Turn an RGB picture of any size into the model's input: float32 ``[H, W, 3]`` in [0, 1].

``resize="bilinear"`` (default) is OpenCV's INTER_LINEAR on the full RGB frame, the official
example's pipeline, so its logits are reproduced exactly. ``resize="area"`` lets FFmpeg scale
while it converts the decoded frame from YUV, which never builds a full-size RGB frame and is
much cheaper on large video (it averages pixels, so results differ slightly from bilinear).
``crop=True`` takes the centre square (the model's aspect) before scaling instead of squashing.
"""

from __future__ import annotations

import av
import cv2
import numpy as np

from .errors import VidclsError
from .media import reason, rotation_of, upright
from .options import RESIZES


class Preprocessor:
    """Reusable buffers for one input size; every call overwrites the returned array.
    ``pixels``: the uint8 buffer :meth:`pixels` fills (shared memory, say), else its own."""

    def __init__(
        self,
        height: int,
        width: int,
        resize: str = "bilinear",
        crop: bool = False,
        pixels: np.ndarray | None = None,
    ):
        if resize not in RESIZES:
            raise ValueError(f"resize must be one of {RESIZES}, not {resize!r}")
        self.height, self.width, self.resize, self.crop = height, width, resize, crop
        self._pixels = np.empty((height, width, 3), np.uint8) if pixels is None else pixels
        self._input = np.empty((height, width, 3), np.float32)
        self._reformatter = None  # av.video.reformatter.VideoReformatter, made on first use

    def from_array(self, rgb: np.ndarray) -> np.ndarray:
        """Prepare an RGB uint8 ``[h, w, 3]`` array (any size)."""
        if not self.crop and rgb.shape == self._input.shape and rgb.dtype == np.uint8:
            np.divide(rgb, np.float32(255), out=self._input, dtype=np.float32)  # no copy first
            return self._input
        self.fit(rgb)
        return self._to_float()

    def fit(self, rgb: np.ndarray) -> np.ndarray:
        """``rgb`` cropped and scaled to the model's size, into the uint8 buffer."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 HxWx3 array, got {rgb.dtype} {rgb.shape}")
        if self.crop:
            rgb = _centre_crop(rgb, self.width / self.height)
        if rgb.shape[:2] == (self.height, self.width):
            np.copyto(self._pixels, rgb)
        else:
            cv2.resize(rgb, (self.width, self.height), self._pixels, interpolation=cv2.INTER_LINEAR)
        return self._pixels

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
        if self.crop:  # scale the short side to the model size, then cut the centre
            s = max(self.width / w, self.height / h)
            w, h = max(self.width, round(w * s)), max(self.height, round(h * s))
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
