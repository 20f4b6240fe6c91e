"""Pictures: error reasons, upright turning by the display matrix, JPEG frames."""

from __future__ import annotations

import av
import cv2
import numpy as np
from av.video.reformatter import VideoReformatter

from ..errors import VidclsError

MAX_FRAME_SIDE = 4096  # largest JPEG side accepted from a browser


def reason(e: BaseException) -> str:
    """The short reason FFmpeg or the OS gives for an error, without the file name."""
    text = getattr(e, "strerror", None) or str(e)
    return text.split(":")[0].strip() if ": '" in text else text.strip()


def upright(rgb: np.ndarray, rotation: int) -> np.ndarray:
    """A picture turned as its display matrix says (``rotation``: degrees counter-clockwise,
    as FFmpeg reports it for phone videos); the picture itself when it is 0."""
    turns = round(rotation / 90) % 4
    return np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb


def rotation_of(frame: av.VideoFrame) -> int:
    """Degrees counter-clockwise the frame is turned for display (0 for most videos)."""
    return int(round(getattr(frame, "rotation", 0) or 0))


def to_rgb(frame: av.VideoFrame, size: tuple[int, int] | None = None, scaler=None) -> np.ndarray:
    """A decoded frame as an upright RGB uint8 array, scaled to ``size`` (width, height; area
    filter, in the same pass) when given, by ``scaler`` (a reused ``VideoReformatter``) if
    given; VidclsError if it cannot be converted."""
    try:
        if size is None:
            return upright(frame.to_ndarray(format="rgb24"), rotation_of(frame))
        scaler = scaler or VideoReformatter()
        rgb = scaler.reformat(frame, size[0], size[1], format="rgb24", interpolation="AREA")
        return upright(rgb.to_ndarray(), rotation_of(frame))
    except av.FFmpegError as e:
        raise VidclsError(f"cannot convert a decoded frame ({reason(e)})") from None


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's frame header, or None if ``data`` is not a JPEG."""
    if data[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 9 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF or marker == 0x01 or 0xD0 <= marker <= 0xD8:
            i += 1 if marker == 0xFF else 2  # fill byte or a marker without a length
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # start of frame
            height = int.from_bytes(data[i + 5 : i + 7], "big")
            width = int.from_bytes(data[i + 7 : i + 9], "big")
            return width, height
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return None


def decode_jpeg(data: bytes) -> np.ndarray:
    """RGB uint8 ``[h, w, 3]`` from JPEG bytes; VidclsError when they are not a usable JPEG.

    The size is read from the header first, so a forged header cannot make the decoder
    allocate gigabytes.
    """
    size = jpeg_size(data)
    if size is None:
        raise VidclsError("frame is not a JPEG image (send canvas.toBlob(..., 'image/jpeg'))")
    if not (0 < size[0] <= MAX_FRAME_SIDE and 0 < size[1] <= MAX_FRAME_SIDE):
        raise VidclsError(f"frame is {size[0]}x{size[1]}; at most {MAX_FRAME_SIDE} px a side")
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise VidclsError("frame is a corrupt JPEG that cannot be decoded")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
