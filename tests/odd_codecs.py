"""Event clips in codecs browsers do not play, made here: the recorder's stream copy of an
AVI's MPEG-4 Part 2 packets, and a clip encoded again as HEVC or MJPEG with PyAV's encoders."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import pytest

from vidcls.media import write_clip


def has_encoder(name: str) -> bool:
    """Whether PyAV's FFmpeg has the encoder ``name``."""
    try:
        av.codec.Codec(name, "w")
    except (av.FFmpegError, ValueError):
        return False
    return True


def stream_copy(source: Path, out: Path, most: int | None = None) -> Path:
    """``source``'s video packets (the first ``most``) remuxed into the MP4 ``out`` as the
    clip recorder writes them (:func:`vidcls.media.write_clip`): the camera's codec, nothing
    encoded."""
    with av.open(str(source)) as c:
        stream = c.streams.video[0]
        packets = [p for p in c.demux(stream) if p.size]
        return write_clip(stream, packets[:most], out)


def reencoded(source: Path, out: Path, codec: str, fps: int = 30) -> Path:
    """``source``'s pictures encoded again with ``codec`` (``libx265`` or ``mjpeg``) into the
    MP4 ``out``; skips the test, saying why, when PyAV has no such encoder."""
    if not has_encoder(codec):
        pytest.skip(f"PyAV's FFmpeg has no {codec} encoder (av.codecs_available)")
    pix = "yuvj420p" if codec == "mjpeg" else "yuv420p"
    options = (
        {"preset": "ultrafast", "x265-params": "log-level=error"} if codec == "libx265" else {}
    )
    with av.open(str(source)) as src, av.open(str(out), "w") as dst:
        s = src.streams.video[0]
        o = dst.add_stream(codec, rate=fps, options=options)
        o.width, o.height, o.pix_fmt = s.width, s.height, pix
        o.codec_context.time_base = Fraction(1, fps)
        for i, frame in enumerate(src.decode(s)):
            picture = frame.reformat(format=pix)
            picture.pts, picture.time_base = i, Fraction(1, fps)
            for p in o.encode(picture):
                dst.mux(p)
        for p in o.encode(None):
            dst.mux(p)
    return out
