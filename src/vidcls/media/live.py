"""Live sources: cameras through OpenCV, network streams and files at real speed through PyAV."""

from __future__ import annotations

import time

import av
import cv2
import numpy as np

from ..errors import VidclsError
from ..files import check_regular
from .fetch import download, is_file_url, temporary_folder
from .pictures import reason
from .record import ClipRecorder, RecordOptions

NETWORK_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "srt")


class AvSource:
    """A network stream or a file, decoded with PyAV; files are paced to their real speed
    on ``clock`` (a virtual clock's reader asks :meth:`due` and reads with ``wait=False``)."""

    camera = False

    def __init__(
        self, url: str, realtime: bool, loop: bool, threads: int = 0, clock=time.monotonic
    ) -> None:
        self.url, self.realtime, self.loop = url, realtime, loop
        self.clock = clock
        self.threads = threads  # decoder threads; 0: FFmpeg's choice
        self.name = url
        self.keep = None  # what must live as long as the source (a downloaded file)
        self.network = url.split("://", 1)[0].lower() in NETWORK_SCHEMES
        self._container = None
        self.recorder: ClipRecorder | None = None  # keeps packets for event clips

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
        if self.threads == 1:  # no frame threading: no frame of delay, no thread per stream
            stream.codec_context.thread_count = 1
        else:
            stream.thread_type = "AUTO"
            stream.codec_context.thread_count = self.threads
        self._wall0 = self._t0 = None
        self.resume_at: float | None = None  # when a looping file's next first frame is due
        if self.recorder is None:
            self._frames = self._container.decode(stream)
        else:
            self.recorder.begin(stream)
            self._frames = self._recorded(stream)

    def _recorded(self, stream):
        """The frames of ``stream``, each packet handed to the recorder on the way."""
        for packet in self._container.demux(stream):
            if packet.size:
                self.recorder.add(packet, self._packet_time(packet))
            yield from packet.decode()

    def _packet_time(self, packet: av.Packet) -> float:
        """The clock time a packet stands for: when it came, or for a file played at its
        real speed, when its frame is due."""
        if not self.realtime or packet.pts is None:
            return self.clock()
        return self.due(float(packet.pts * packet.time_base))

    def due(self, t: float | None) -> float:
        """The clock time the frame at stream time ``t`` (seconds) is due: the first one when
        it is read (or at ``resume_at``), the others as far after it as in the stream."""
        now = self.clock()
        if t is None:
            return now
        if self._t0 is None:
            self._wall0, self._t0 = (now if self.resume_at is None else self.resume_at), t
        return self._wall0 + (t - self._t0)

    def read(self, wait: bool = True) -> av.VideoFrame | None:
        """The next frame, or None at the end of the input; a file played at its real speed
        waits until the frame is due, unless ``wait`` is False."""
        try:
            frame = next(self._frames)
        except StopIteration:
            return None
        except av.FFmpegError as e:
            raise OSError(reason(e)) from None
        if wait and self.realtime and frame.time is not None:
            delay = self.due(frame.time) - self.clock()
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


def open_source(
    spec: str,
    realtime: bool = True,
    loop: bool = False,
    threads: int = 0,
    record: RecordOptions | None = None,
    clock=time.monotonic,
) -> AvSource | CameraSource:
    """The live source for a camera index, device path, URL or file path.

    An http(s) URL of a file (the server gives its length) is fetched first and played at its
    real speed like a local file, ending at its end; other URLs are live streams, reopened when
    they drop. ``threads``: decoder threads (0: FFmpeg's choice; 1 when many run at once).
    ``record``: keep packets for event clips (streams and files; not cameras, whose frames
    come decoded). ``clock``: the time a file is played on.
    """
    source = _open_source(spec, realtime, loop, threads)
    if isinstance(source, AvSource):
        source.clock = clock
    if record is not None and isinstance(source, AvSource):
        source.recorder = ClipRecorder(record)
    return source


def _open_source(spec: str, realtime: bool, loop: bool, threads: int) -> AvSource | CameraSource:
    if spec.isdigit():
        return CameraSource(int(spec))
    if spec.startswith("/dev/video"):
        return CameraSource(spec)
    if "://" not in spec:
        path = check_regular(spec, "video file", missing="no such file, camera or stream")
        return AvSource(str(path), realtime, loop, threads)
    scheme = spec.split("://", 1)[0].lower()
    if scheme not in (*NETWORK_SCHEMES, "file"):
        raise VidclsError(f"unsupported stream scheme '{scheme}://'", spec)
    if scheme in ("http", "https") and is_file_url(spec):
        folder = temporary_folder()
        source = AvSource(str(download(spec, folder.name)), realtime, loop, threads)
        source.name, source.keep = spec, folder  # the download lives as long as the source
        return source
    return AvSource(spec, scheme == "file" and realtime, loop, threads)
