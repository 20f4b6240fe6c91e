"""One clip cut out of a longer video, from ``start`` to ``end`` seconds, as an MP4.

Where ``start`` falls on a keyframe (within half a frame) and the video has no B-frames, the
clip is a stream copy of the packets from that keyframe to ``end`` (nothing decoded or
encoded). Otherwise the frames from ``start`` to ``end`` are decoded and encoded again as H.264
(CRF 18), so the clip starts and ends where the annotation says, to within one frame
interval. ``copy=True`` always stream-copies, from the keyframe at or before ``start``: no
re-encoding, but the clip may start up to one keyframe interval (GOP) early. The clip is
written under a temporary name and renamed; audio is left out.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from ..errors import VidclsError
from .pictures import reason
from .record import write_clip
from .video import VideoFile

CRF = "18"  # x264 quality of re-encoded clips: visually lossless for training
MAX_SECONDS = 1e8  # about three years: later than any video's end (and than a seek can go)


@dataclass(frozen=True)
class Cut:
    """A clip written: where, how (``copy`` or ``encode``), its frames and their span."""

    path: Path
    mode: str
    frames: int
    start: float  # time of its first frame in the source video, seconds
    end: float  # time after its last frame in the source video (last frame + one interval)


def cut_clip(
    video: str | os.PathLike, start: float, end: float, out: str | os.PathLike, copy: bool = False
) -> Cut:
    """Write the part of ``video`` from ``start`` to ``end`` seconds to ``out`` (see the module
    description); VidclsError naming the video when it cannot be read or the span is empty."""
    if not 0 <= start < end <= MAX_SECONDS:
        raise VidclsError(
            f"a cut needs 0 <= start < end <= {MAX_SECONDS:g}, not {start:g} to {end:g}", video
        )
    with VideoFile(video) as v:  # every check a video file gets
        path = v.path
    try:
        with av.open(os.fspath(path)) as container:
            stream = container.streams.video[0]
            interval = 1 / float(stream.average_rate or stream.guessed_rate or 30)
            key = _keyframe_at_or_before(container, stream, start)
            on_key = key is not None and abs(key - start) <= interval / 2
            no_b_frames = not stream.codec_context.has_b_frames
            if copy or (on_key and no_b_frames):
                return _copy(container, stream, start, end, Path(out), interval)
            return _encode(container, stream, start, end, Path(out), interval)
    except av.FFmpegError as e:
        raise VidclsError(f"cannot cut ({reason(e)})", path) from None
    except OSError as e:  # the clip's folder: not a folder, full, read-only, ...
        raise VidclsError(f"cannot write the clip ({e.strerror or e})", out) from None


def _keyframe_at_or_before(container, stream, t: float) -> float | None:
    """The time of the last keyframe at or before ``t`` (demuxing only), or None."""
    _seek(container, stream, t)
    for packet in container.demux(stream):
        if packet.pts is not None and packet.is_keyframe:
            return float(packet.pts * packet.time_base)
        if packet.pts is not None:
            return None
    return None


def _seek(container, stream, t: float) -> None:
    container.seek(max(0, int(t / stream.time_base)), backward=True, any_frame=False, stream=stream)


def _copy(container, stream, start: float, end: float, out: Path, interval: float) -> Cut:
    """Packets from the keyframe at or before ``start`` up to ``end``, remuxed."""
    _seek(container, stream, start)
    packets, first = [], None
    for packet in container.demux(stream):
        if packet.pts is None or packet.dts is None:
            continue
        t = float(packet.pts * packet.time_base)
        if first is None:
            if not packet.is_keyframe:
                continue
            first = t
        if float(packet.dts * packet.time_base) >= end:
            break
        packets.append(packet)  # by decode time: B-frames keep the frames they refer to
    if not packets:
        raise VidclsError(f"nothing to cut from {start:g} s to {end:g} s", container.name)
    times = sorted(float(p.pts * p.time_base) for p in packets)
    write_clip(stream, packets, out)
    return Cut(out, "copy", len(packets), times[0], times[-1] + interval)


def _encode(container, stream, start: float, end: float, out: Path, interval: float) -> Cut:
    """The frames shown from ``start`` to ``end``, encoded again as H.264."""
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(f".{out.name}.part")
    rate = Fraction(stream.average_rate or stream.guessed_rate or 30)
    times: list[float] = []
    try:
        with av.open(os.fspath(part), "w", format="mp4") as target:
            encoder = None
            _seek(container, stream, start)
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                t = float(frame.pts * frame.time_base)
                if t < start - interval / 2:
                    continue
                if t >= end - interval / 2:
                    break
                if encoder is None:
                    encoder = target.add_stream("libx264", rate=rate)
                    encoder.width, encoder.height = frame.width // 2 * 2, frame.height // 2 * 2
                    encoder.pix_fmt = "yuv420p"
                    encoder.options = {"crf": CRF, "preset": "veryfast"}
                picture = frame.reformat(encoder.width, encoder.height, "yuv420p")
                picture.pts, picture.time_base = len(times), Fraction(1) / rate
                target.mux(encoder.encode(picture))
                times.append(t)
            if encoder is None:
                raise VidclsError(f"no frames from {start:g} s to {end:g} s", container.name)
            target.mux(encoder.encode(None))
        os.replace(part, out)
    except BaseException:
        with contextlib.suppress(OSError):
            part.unlink(missing_ok=True)
        raise
    return Cut(out, "encode", len(times), times[0], times[-1] + interval)
