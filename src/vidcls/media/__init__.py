"""Every way vidcls reads pictures: video files, live sources, and JPEG frames from a browser.

This package is the only place that opens media for reading. Files get every check (a regular
file, not empty, a real video stream with a known codec, complete); URLs of video files are
fetched first; live sources are cameras (through OpenCV), network streams and files played at
their real speed (through PyAV); JPEG frames are size-checked before decoding; pictures are
turned upright as their display matrix says. Errors become :class:`VidclsError` with one
reason, from :func:`reason`.
"""

from .fetch import download, is_url
from .live import NETWORK_SCHEMES, AvSource, CameraSource, open_source
from .pictures import MAX_FRAME_SIDE, decode_jpeg, jpeg_size, reason, rotation_of, to_rgb, upright
from .record import ClipRecorder, RecordOptions, write_clip
from .video import (
    FrameSampler,
    Timestamps,
    VideoFile,
    display_rotation,
    duration,
    read_clip,
    read_frames,
    working_size,
)

__all__ = [
    "MAX_FRAME_SIDE",
    "NETWORK_SCHEMES",
    "AvSource",
    "CameraSource",
    "ClipRecorder",
    "FrameSampler",
    "RecordOptions",
    "Timestamps",
    "VideoFile",
    "decode_jpeg",
    "display_rotation",
    "download",
    "duration",
    "is_url",
    "jpeg_size",
    "open_source",
    "read_clip",
    "read_frames",
    "reason",
    "rotation_of",
    "to_rgb",
    "upright",
    "working_size",
    "write_clip",
]
