"""Every way vidcls reads pictures: video files, live sources, and JPEG frames from a browser.

This is the only module that opens media for reading. Files get every check (readable, not
empty, a real video stream, complete); live sources are cameras (through OpenCV), network
streams and files played at their real speed (through PyAV); JPEG frames are size-checked
before decoding. Errors become :class:`VidclsError` with one reason, from :func:`reason`.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import numpy as np

from .errors import VidclsError
from .results import VideoInfo

# FFmpeg's "tty" demuxer reads any text file as ANSI art; that is never a video to classify.
_NOT_VIDEO_FORMATS = {"tty"}
# A stream that ends before this share of its indexed frames and duration was cut short.
_TRUNCATED_BELOW = 0.9
NETWORK_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "srt")
MAX_FRAME_SIDE = 4096  # largest JPEG side accepted from a browser


def reason(e: BaseException) -> str:
    """The short reason FFmpeg or the OS gives for an error, without the file name."""
    text = getattr(e, "strerror", None) or str(e)
    return text.split(":")[0].strip() if ": '" in text else text.strip()


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
        self.path = str(path)
        p = check_readable(path)
        if p.stat().st_size == 0:
            raise VidclsError("file is empty", path)
        try:
            self.container = av.open(self.path, metadata_errors="ignore")
        except av.FFmpegError as e:
            raise VidclsError(f"not a readable video ({reason(e)})", path) from None
        if self.container.format.name in _NOT_VIDEO_FORMATS or not self.container.streams.video:
            self.container.close()
            raise VidclsError("no video stream in this file", path)
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        self.info = self._info()

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
        """Raise if decoding stopped well short of the frames and duration the index promises."""
        expected, duration = self.stream.frames, self.info.duration
        if not expected or not duration or self.stream.codec_context.skip_frame != "DEFAULT":
            return
        if decoded < _TRUNCATED_BELOW * expected and last_time < _TRUNCATED_BELOW * duration:
            raise VidclsError(
                f"truncated: only {decoded} of {expected} frames decoded "
                f"({last_time:.1f} s of {duration:.1f} s)",
                self.path,
            )

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> VideoFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_frames(path: str | os.PathLike, fps: float | None = None) -> list[np.ndarray]:
    """All frames of a (short) clip, or those at ``fps``, as RGB uint8 arrays."""
    with VideoFile(path) as v:
        return [f.to_ndarray(format="rgb24") for _, f in v.frames(fps)]


def duration(path: str | os.PathLike) -> float | None:
    """A video's duration in seconds from its container, or None if it cannot be read."""
    try:
        with VideoFile(path) as v:
            return v.info.duration
    except VidclsError:
        return None


# -- live sources ------------------------------------------------------------------------------


class AvSource:
    """A network stream or a file, decoded with PyAV; files are paced to their real speed."""

    camera = False

    def __init__(self, url: str, realtime: bool, loop: bool) -> None:
        self.url, self.realtime, self.loop = url, realtime, loop
        self.name = url
        self.network = url.split("://", 1)[0].lower() in NETWORK_SCHEMES
        self._container = None

    def open(self) -> None:
        """Open (or reopen) the input; OSError when it cannot be reached."""
        options = {}
        if self.network:
            options = {"fflags": "nobuffer", "flags": "low_delay", "analyzeduration": "1000000"}
            if self.url.lower().startswith("rtsp"):
                options["rtsp_transport"] = "tcp"
        try:
            self._container = av.open(self.url, options=options, timeout=(10.0, 5.0))
        except av.FFmpegError as e:
            raise OSError(reason(e)) from None
        if not self._container.streams.video:
            self._container.close()
            raise VidclsError("no video stream", self.url)
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        self._frames = self._container.decode(stream)
        self._wall0 = self._t0 = None

    def read(self) -> av.VideoFrame | None:
        """The next frame, or None at the end of the input."""
        try:
            frame = next(self._frames)
        except StopIteration:
            return None
        except av.FFmpegError as e:
            raise OSError(reason(e)) from None
        if self.realtime and frame.time is not None:
            now = time.monotonic()
            if self._t0 is None:
                self._wall0, self._t0 = now, frame.time
            delay = self._wall0 + (frame.time - self._t0) - now
            if delay > 0:
                time.sleep(delay)
        return frame

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None


class CameraSource:
    """A camera through OpenCV: every frame is grabbed, only wanted ones are decoded."""

    camera = True
    network = False
    loop = False

    def __init__(self, device: int | str) -> None:
        self.device = device
        self.name = str(device)
        self._cap = None

    def open(self) -> None:
        self._cap = cv2.VideoCapture(self.device)
        if not self._cap.isOpened():
            self._cap.release()
            raise OSError(f"cannot open camera {self.device}")

    def grab(self) -> bool:
        return bool(self._cap.grab())

    def retrieve(self) -> np.ndarray | None:
        """The grabbed frame as an RGB array, or None."""
        ok, bgr = self._cap.retrieve()
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if ok else None

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


def open_source(spec: str, realtime: bool = True, loop: bool = False) -> AvSource | CameraSource:
    """The live source for a camera index, device path, URL or file path."""
    if spec.isdigit():
        return CameraSource(int(spec))
    if spec.startswith("/dev/video"):
        return CameraSource(spec)
    if "://" in spec:
        scheme = spec.split("://", 1)[0].lower()
        if scheme not in (*NETWORK_SCHEMES, "file"):
            raise VidclsError(f"unsupported stream scheme '{scheme}://'", spec)
        return AvSource(spec, realtime=scheme == "file" and realtime, loop=loop)
    path = check_readable(spec, missing="no such file, camera or stream")
    if path.stat().st_size == 0:
        raise VidclsError("file is empty", spec)
    return AvSource(str(path), realtime=realtime, loop=loop)


# -- JPEG frames -------------------------------------------------------------------------------


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
