"""Video files: opened with every check, frames picked by timestamp at a target rate."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator

import av
import numpy as np

from ..errors import VidclsError
from ..files import check_regular
from ..results import VideoInfo
from .fetch import FILE_SCHEMES, download, is_url, local_path, temporary_folder
from .pictures import reason, rotation_of, to_rgb

# FFmpeg's "tty" demuxer reads any text file as ANSI art; that is never a video to classify.
_NOT_VIDEO_FORMATS = {"tty"}
# A stream is cut short when more than this many frames (or 2 %) of those its header counts
# are missing at the end.
_TRUNCATED_SLACK = 2


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


class VideoFile:
    """An opened video file: ``info`` and ``frames(fps)``. Use as a context manager.

    ``container`` and ``stream`` are the PyAV objects, for readers that need packets (the
    annotated-video writer copies the audio).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)
        self._download = None
        local = self._local_file()
        try:
            self.container = av.open(local, metadata_errors="ignore")
        except av.FFmpegError as e:
            self._cleanup()
            raise VidclsError(f"not a readable video ({reason(e)})", path) from None
        try:
            self.stream = self._video_stream()
            self.info = self._info()
        except BaseException:
            self.close()
            raise

    def _local_file(self) -> str:
        """The file to open: the path itself, or a URL's download."""
        if not is_url(self.path):
            check_regular(self.path, "video file", missing="file not found")
            return self.path
        scheme = self.path.split("://", 1)[0].lower()
        if scheme not in FILE_SCHEMES:
            raise VidclsError(
                f"'{scheme}://' is a stream, not a file: use `vidcls live` for it", self.path
            )
        local = local_path(self.path)
        if local is not None:
            return str(check_regular(local, "video file", missing="file not found"))
        self._download = temporary_folder()
        try:
            return str(download(self.path, self._download.name))
        except BaseException:
            self._cleanup()
            raise

    def _cleanup(self) -> None:
        if self._download is not None:
            self._download.cleanup()
            self._download = None

    def _video_stream(self):
        if self.container.format.name in _NOT_VIDEO_FORMATS or not self.container.streams.video:
            raise VidclsError("no video stream in this file", self.path)
        stream = self.container.streams.video[0]
        if stream.codec_context is None:
            raise VidclsError("unknown or unsupported video codec", self.path)
        stream.thread_type = "AUTO"
        return stream

    def _info(self) -> VideoInfo:
        s, c = self.stream, self.container
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
            self.stream.codec_context.skip_frame = "NONREF"
        sampler = FrameSampler(fps)
        clock = Timestamps(self.stream.time_base, self.info.fps or 30.0)
        start = None
        decoded = 0
        try:
            for index, frame in enumerate(self.container.decode(self.stream)):
                decoded += 1
                t = clock(frame, index)
                if start is None:
                    start = t
                t -= start
                if sampler.keep(t):
                    yield t, frame
        except av.FFmpegError as e:
            if decoded == 0:
                raise VidclsError(f"no decodable video frames ({reason(e)})", self.path) from None
            raise VidclsError(
                f"decoding failed after {decoded} frames ({reason(e)}); the file may be "
                "truncated or corrupt",
                self.path,
            ) from None
        if decoded == 0:
            raise VidclsError("no decodable video frames", self.path)
        self._check_complete(decoded, t)

    def _check_complete(self, decoded: int, last_time: float) -> None:
        """Raise if decoding stopped short of the frames and duration the headers promise.

        The duration is the longer of the container's and frames / rate: an AVI cut short
        reports the duration of what is left, but its header still counts every frame.
        """
        expected, fps = self.stream.frames, self.info.fps
        if not expected or self.stream.codec_context.skip_frame != "DEFAULT":
            return
        duration = max(self.info.duration or 0.0, expected / fps if fps else 0.0)
        slack = max(_TRUNCATED_SLACK, round(0.02 * expected))  # frames a decoder may drop
        step = 1.0 / fps if fps else 0.0
        if decoded < expected - slack and last_time < duration - (slack + 1) * step:
            raise VidclsError(
                f"truncated: only {decoded} of {expected} frames decoded "
                f"({last_time:.1f} s of {duration:.1f} s)",
                self.path,
            )

    def close(self) -> None:
        self.container.close()
        self._cleanup()

    def __enter__(self) -> VideoFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_frames(
    path: str | os.PathLike, fps: float | None = None, short_side: int | None = None
) -> list[np.ndarray]:
    """All frames of a (short) clip, or those at ``fps``, as RGB uint8 arrays; with
    ``short_side``, scaled down (never up) to that short side (see :func:`read_clip`)."""
    return read_clip(path, fps, short_side)[0]


def read_clip(
    path: str | os.PathLike,
    fps: float | None = None,
    short_side: int | None = None,
    skip_nonref: bool = False,
) -> tuple[list[np.ndarray], float | None]:
    """The frames of a clip at ``fps`` (None: all) as upright RGB uint8 arrays, and the
    video's own frame rate. With ``short_side``, frames whose short side is longer are scaled
    down to it (area filter, aspect kept) as they are converted from the decoder's format, in
    one pass; only the frames kept at ``fps`` are converted at all. ``skip_nonref``: as
    :meth:`VideoFile.frames`."""
    from av.video.reformatter import VideoReformatter

    with VideoFile(path) as v:
        scaler = VideoReformatter()
        try:
            frames = [
                to_rgb(f, working_size(f.width, f.height, short_side), scaler)
                for _, f in v.frames(fps, skip_nonref=skip_nonref)
            ]
            return frames, v.info.fps
        except VidclsError as e:
            raise VidclsError(e.message, e.path or v.path) from None


def working_size(width: int, height: int, short_side: int | None) -> tuple[int, int] | None:
    """``(width, height)`` with the short side scaled down to ``short_side`` (even sizes,
    aspect kept), or None when the picture is no larger than that already."""
    if not short_side or not width or not height or min(width, height) <= short_side:
        return None
    s = short_side / min(width, height)
    return max(2, round(width * s / 2) * 2), max(2, round(height * s / 2) * 2)


def display_rotation(path: str | os.PathLike) -> int:
    """Degrees counter-clockwise a video's first frame is turned for display."""
    with VideoFile(path) as v:
        for _, frame in v.frames():
            return rotation_of(frame)
    return 0


def duration(path: str | os.PathLike) -> float | None:
    """A video's duration in seconds from its container, or None if it cannot be read."""
    try:
        with VideoFile(path) as v:
            return v.info.duration
    except VidclsError:
        return None
