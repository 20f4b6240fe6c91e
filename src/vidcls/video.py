"""Read video files with PyAV (FFmpeg) and pick the frames to feed at a target frame rate."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av

from .errors import VidclsError


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about its first video stream."""

    path: str
    codec: str
    width: int
    height: int
    fps: float | None
    duration: float | None
    frames: int | None


# FFmpeg's "tty" demuxer reads any text file as ANSI art; that is never a video to classify.
_NOT_VIDEO_FORMATS = {"tty"}
# A stream that ends before this share of its indexed frames and duration was cut short.
_TRUNCATED_BELOW = 0.9


class FrameSampler:
    """Picks, by timestamp, the frame nearest each point of a ``1/fps`` grid; ``fps=None``: all.

    The grid starts at the first frame. A frame takes the grid points up to half its
    preceding frame interval after it (at most half a grid step), the ones it is nearer to than
    the next frame is likely to be. So 30 fps video at 5 fps keeps frames 0.2 s apart, a source
    already at 5 fps keeps every frame even with jittery timestamps, and a slower source keeps
    every frame once: frames are never repeated.
    """

    def __init__(self, fps: float | None) -> None:
        if fps is not None and not (fps > 0 and math.isfinite(fps)):
            raise ValueError(f"fps must be a positive number, not {fps}")
        self.fps = fps
        self._start: float | None = None
        self._previous = 0.0
        self._last_slot = -1

    def keep(self, t: float) -> bool:
        """Whether the frame presented at ``t`` seconds is fed to the model."""
        if self.fps is None:
            return True
        if self._start is None:
            self._start = self._previous = t
        reach = 0.5 * min(max(t - self._previous, 0.0), 1.0 / self.fps)
        self._previous = t
        slot = math.floor((t - self._start + reach) * self.fps + 1e-9)
        if slot > self._last_slot:
            self._last_slot = slot
            return True
        return False


class Timestamps:
    """Presentation times as FFmpeg's best-effort timestamp guesses them.

    Use pts unless it has gone backwards more often than dts (AVI files with packed B-frames
    carry permuted pts), and never report a time earlier than the previous one.
    """

    def __init__(self, time_base, rate: float) -> None:
        self.time_base = float(time_base) if time_base else None
        self.rate = rate
        self.pts_faults = self.dts_faults = 0
        self.last_pts = self.last_dts = None
        self.last = None

    def __call__(self, frame, index: int) -> float:
        pts, dts = frame.pts, frame.dts
        if dts is not None:
            self.dts_faults += self.last_dts is not None and dts <= self.last_dts
            self.last_dts = dts
        if pts is not None:
            self.pts_faults += self.last_pts is not None and pts <= self.last_pts
            self.last_pts = pts
        best = (
            pts if pts is not None and (dts is None or self.pts_faults <= self.dts_faults) else dts
        )
        t = index / self.rate if best is None or self.time_base is None else best * self.time_base
        if self.last is not None and t < self.last:
            t = self.last
        self.last = t
        return t


def check_readable(path: str | os.PathLike, missing: str = "file not found") -> Path:
    """The path, if it is a readable file; else VidclsError naming it."""
    p = Path(path)
    if not p.exists():
        raise VidclsError(missing, path)
    if p.is_dir():
        raise VidclsError("is a directory, not a video file", path)
    if not os.access(p, os.R_OK):
        raise VidclsError("permission denied", path)
    return p


class VideoFile:
    """An opened video file: ``info`` and ``frames(fps)``. Use as a context manager."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = str(path)
        p = check_readable(path)
        if p.stat().st_size == 0:
            raise VidclsError("file is empty", path)
        try:
            self._container = av.open(self.path, metadata_errors="ignore")
        except av.FFmpegError as e:
            raise VidclsError(f"not a readable video ({_reason(e)})", path) from None
        if self._container.format.name in _NOT_VIDEO_FORMATS or not self._container.streams.video:
            self._container.close()
            raise VidclsError("no video stream in this file", path)
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        self.info = self._info()

    def _info(self) -> VideoInfo:
        s, c = self._stream, self._container
        rate = s.average_rate or s.guessed_rate
        fps = float(rate) if rate else None
        duration = None
        if s.duration is not None and s.time_base is not None:
            duration = float(s.duration * s.time_base)
        elif c.duration is not None:
            duration = c.duration / av.time_base
        frames = s.frames or (round(duration * fps) if duration and fps else None)
        name = s.codec_context.name if s.codec_context else "unknown"
        return VideoInfo(self.path, name, s.width, s.height, fps, duration, frames)

    def frames(
        self, fps: float | None = None, skip_nonref: bool = False
    ) -> Iterator[tuple[float, av.VideoFrame]]:
        """Decoded frames at ``fps`` (None: every frame), as ``(seconds from start, frame)``.

        Frames that are skipped are decoded (the codec needs them) but never converted.
        ``skip_nonref`` does not even decode the frames no other frame depends on (B-frames,
        mostly): faster, and each step then gets the nearest frame that was decoded. It applies
        only when the video's rate is at least twice ``fps``, where most frames are dropped.
        """
        if skip_nonref and fps is not None and (self.info.fps or 0) >= 2 * fps:
            self._stream.codec_context.skip_frame = "NONREF"
        sampler = FrameSampler(fps)
        clock = Timestamps(self._stream.time_base, self.info.fps or 30.0)
        start = None
        decoded = 0
        try:
            for index, frame in enumerate(self._container.decode(self._stream)):
                decoded += 1
                t = clock(frame, index)
                if start is None:
                    start = t
                t -= start
                if sampler.keep(t):
                    yield t, frame
        except av.FFmpegError as e:
            if decoded == 0:
                raise VidclsError(f"no decodable video frames ({_reason(e)})", self.path) from None
            raise VidclsError(
                f"decoding failed after {decoded} frames ({_reason(e)}); the file may be "
                "truncated or corrupt",
                self.path,
            ) from None
        if decoded == 0:
            raise VidclsError("no decodable video frames", self.path)
        self._check_complete(decoded, t)

    def _check_complete(self, decoded: int, last_time: float) -> None:
        """Raise if decoding stopped well short of the frames and duration the index promises."""
        expected, duration = self._stream.frames, self.info.duration
        if not expected or not duration or self._stream.codec_context.skip_frame != "DEFAULT":
            return
        if decoded < _TRUNCATED_BELOW * expected and last_time < _TRUNCATED_BELOW * duration:
            raise VidclsError(
                f"truncated: only {decoded} of {expected} frames decoded "
                f"({last_time:.1f} s of {duration:.1f} s)",
                self.path,
            )

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> VideoFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _reason(e: Exception) -> str:
    text = getattr(e, "strerror", None) or str(e)
    return text.split(":")[0].strip() if ": '" in text else text.strip()
