"""Browser-playable copies of clips: which clips browsers play as they are, and an H.264 copy
of the others.

Event clips keep the camera's own packets (see :mod:`vidcls.media.record`), and browsers
decode only a few codecs: H.264, VP8, VP9 and AV1, in 8-bit 4:2:0 (not MPEG-4 Part 2, not
MJPEG, and HEVC only in some builds, with a hardware decoder). :func:`make_copy` decodes a
clip and encodes it again with libx264 (through PyAV, no ``ffmpeg`` program needed) into an
MP4 that starts playing before it is all read, with a bounded cost: one thread, a fast
preset, pictures scaled down to ``max_side``, clips longer than ``max_seconds`` refused. The
copy is :func:`copy_path`, a hidden file beside the clip, written under a temporary name and
then renamed, so a half-written copy never has the copy's name.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from ..errors import VidclsError
from .pictures import reason

BROWSER_CODECS = frozenset({"h264", "vp8", "vp9", "av1"})
BROWSER_PIXELS = frozenset({"yuv420p", "yuvj420p"})
SUFFIX = ".web.mp4"


@dataclass(frozen=True)
class CopyLimits:
    """What a copy may cost: the longest clip copied (seconds), the largest (bytes), the
    copy's longest side (pixels, larger pictures are scaled down), x264's preset and quality
    (CRF), and the threads decoding and encoding."""

    max_seconds: float = 600.0
    max_bytes: int = 1 << 30
    max_side: int = 1280
    preset: str = "superfast"  # 1.4x the speed of veryfast, 1.6x the size (20 s of 720p)
    crf: int = 23
    threads: int = 1


@dataclass(frozen=True)
class Probe:
    """A clip's video stream: codec, pixel format, size and duration (seconds, 0 unknown)."""

    codec: str
    pix_fmt: str
    width: int
    height: int
    seconds: float

    @property
    def plays_in_browsers(self) -> bool:
        """Whether browsers decode this video as it is."""
        return self.codec in BROWSER_CODECS and self.pix_fmt in BROWSER_PIXELS


def copy_path(clip: str | os.PathLike) -> Path:
    """Where a clip's browser copy goes: ``.<name>.web.mp4`` beside it (hidden)."""
    clip = Path(clip)
    return clip.with_name(f".{clip.stem}{SUFFIX}")


def clip_of(copy: str | os.PathLike) -> Path | None:
    """The clip a browser copy was made of (None: not a copy's name)."""
    copy = Path(copy)
    name = copy.name
    if not (name.startswith(".") and name.endswith(SUFFIX)) or len(name) <= len(SUFFIX) + 1:
        return None
    return copy.with_name(name[1 : -len(SUFFIX)] + ".mp4")


def probe(clip: str | os.PathLike) -> Probe:
    """The clip's video stream; VidclsError naming the clip when it has none or cannot be
    read."""
    try:
        with av.open(os.fspath(clip)) as container:
            if not container.streams.video:
                raise VidclsError("has no video stream", clip)
            stream = container.streams.video[0]
            ctx = stream.codec_context
            seconds = 0.0
            if stream.duration is not None and stream.time_base is not None:
                seconds = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                seconds = container.duration / av.time_base
            return Probe(ctx.name, ctx.pix_fmt or "", ctx.width, ctx.height, seconds)
    except (av.FFmpegError, OSError, ValueError) as e:
        raise VidclsError(f"not a video that can be read ({reason(e)})", clip) from None


def make_copy(
    clip: str | os.PathLike,
    limits: CopyLimits = CopyLimits(),
    progress: Callable[[float], None] | None = None,
    stop: threading.Event | None = None,
) -> Path:
    """Encode ``clip`` again as H.264 into :func:`copy_path`; the copy's path. ``progress``
    gets the fraction done now and then; ``stop`` set ends the work (VidclsError). Anything
    that cannot be copied: VidclsError naming the clip, and no copy left behind."""
    clip = Path(clip)
    try:
        size = clip.stat().st_size
    except OSError as e:
        raise VidclsError(f"cannot read the clip ({reason(e)})", clip) from None
    if size > limits.max_bytes:
        raise VidclsError(
            f"is {size / 1e6:.0f} MB, over the {limits.max_bytes / 1e6:.0f} MB a copy is made of",
            clip,
        )
    info = probe(clip)
    if info.seconds > limits.max_seconds:
        raise VidclsError(
            f"lasts {info.seconds:.0f} s, over the {limits.max_seconds:.0f} s a copy is made of",
            clip,
        )
    if info.width <= 0 or info.height <= 0:  # FFmpeg found no picture to take it from
        raise VidclsError("no picture in it can be decoded", clip)
    target = copy_path(clip)
    part = target.with_name(target.name + ".part")
    try:
        frames = _transcode(clip, part, info, limits, progress, stop)
        if frames == 0:
            raise VidclsError("no picture in it can be decoded", clip)
        os.replace(part, target)
    except (av.FFmpegError, OSError, ValueError) as e:
        _remove(part)
        raise VidclsError(f"cannot make a copy browsers play ({reason(e)})", clip) from None
    except BaseException:
        _remove(part)
        raise
    return target


def _transcode(
    clip: Path,
    part: Path,
    info: Probe,
    limits: CopyLimits,
    progress: Callable[[float], None] | None,
    stop: threading.Event | None,
) -> int:
    """Decode ``clip`` and write its pictures as H.264 to ``part``; how many were written."""
    width, height = _fit(info.width, info.height, limits.max_side)
    written = 0
    with av.open(str(clip)) as src:
        stream = src.streams.video[0]
        stream.codec_context.thread_count = limits.threads
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        base = stream.time_base or Fraction(1, int(rate) or 25)
        step = max(1, round(1 / (rate * base)))  # one frame, in the stream's time units
        horizon = (limits.max_seconds + 1) / base  # past it: the clip's header lied
        with av.open(
            str(part), "w", format="mp4", container_options={"movflags": "+faststart"}
        ) as out:
            video = out.add_stream("libx264", rate=rate)
            video.width, video.height, video.pix_fmt = width, height, "yuv420p"
            video.codec_context.time_base = base
            video.codec_context.thread_count = limits.threads
            video.options = {
                "preset": limits.preset,
                "crf": str(limits.crf),
                "threads": str(limits.threads),
            }
            last = None
            for frame in src.decode(stream):
                if stop is not None and stop.is_set():
                    raise VidclsError("stopped before the copy was made", clip)
                pts = frame.pts
                if pts is None or (last is not None and pts <= last):
                    pts = 0 if last is None else last + step
                if pts > horizon:
                    break
                last = pts
                picture = frame.reformat(width=width, height=height, format="yuv420p")
                picture.pts, picture.time_base = pts, base
                for packet in video.encode(picture):
                    out.mux(packet)
                written += 1
                if progress is not None and info.seconds > 0:
                    progress(min(1.0, float(pts * base) / info.seconds))
            for packet in video.encode(None):
                out.mux(packet)
    return written


def _fit(width: int, height: int, most: int) -> tuple[int, int]:
    """``width`` x ``height`` scaled down to fit ``most`` on its longest side, both even
    (H.264 in 4:2:0 needs it)."""
    scale = min(1.0, most / max(width, height))
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)
