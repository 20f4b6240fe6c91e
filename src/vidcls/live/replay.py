"""A file played on a virtual clock: frames decoded when the engine asks, none lost to speed.

:class:`ReplayedFile` is the :class:`~vidcls.live.capture.FrameSource` of a file when the
engine runs on a :class:`~vidcls.live.clock.VirtualClock`. It has no thread: when the engine
asks for the freshest frame, the frames that have come due by the clock's time are decoded
(every one: a video's frames depend on those before) and the last of them is handed over, so
what the engine sees is what a machine that keeps up would see, on any machine. Event clips
get the file's packets at the times they stand for on the same clock.
"""

from __future__ import annotations

import av

from ..errors import VidclsError
from ..media import open_source
from .capture import Arrivals, Captured, FrameGrabber, FrameSource
from .clock import Clock


def frame_source(source: str, loop: bool, record=None, replay: Clock | None = None):
    """What reads ``source`` live: a capture thread (decoding on one thread: no frame of
    decoder delay), or with a virtual clock, its replay on ``replay``."""
    opened = open_source(source, True, loop, 1, record)
    return FrameGrabber(opened) if replay is None else ReplayedFile(opened, replay)


class ReplayedFile(FrameSource):
    """A file source (:class:`vidcls.media.live.AvSource`, played on ``clock``) read on
    demand. Its first frame is due when it starts; a looping file plays again from the start
    a frame after its last, the same generation (one long video to the model)."""

    def __init__(self, source, clock: Clock) -> None:
        if source.camera or source.network:
            raise VidclsError(
                "only files can be replayed on a virtual clock (cameras and streams are live)",
                source.name,
            )
        self.source, self.clock, self.name = source, clock, source.name
        source.clock = clock
        self._latest: Captured | None = None
        self._next: tuple[av.VideoFrame, float] | None = None  # read ahead, with its due time
        self._arrivals = Arrivals()
        self._started = False

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        try:
            self.source.open()
        except VidclsError as e:
            self._end(e)
            return
        except OSError as e:
            self._end(VidclsError(f"cannot open ({e})", self.name))
            return
        self.online = True
        self._next = self._read()  # due now: the file starts when its source does

    def latest(self, after: int = -1) -> Captured | None:
        self._catch_up(self.clock())
        got = self._latest
        return got if got is not None and got.index > after else None

    def clip(self, path: str, start: float, end: float | None = None) -> bool:
        recorder = self.source.recorder
        if recorder is None:
            return False
        recorder.request(path, start, end)
        return True

    def stop(self) -> None:
        if self.online:
            self.source.close()
            self._end(None)
        if self.source.recorder is not None:
            self.source.recorder.close()  # the clips asked for, with what there is

    def _catch_up(self, now: float) -> None:
        """Take every frame due by ``now``; the last one is the freshest."""
        while self.online:
            if self._next is None:
                self._next = self._read()
                if self._next is None:
                    return
            frame, due = self._next
            if due > now:
                return
            self._latest = Captured(frame, due, self.captured, 0)
            self.captured += 1
            self.input_fps = self._arrivals.add(due)
            self._next = None

    def _read(self) -> tuple[av.VideoFrame, float] | None:
        """The next frame and when it is due; None at the end (which ends the source unless
        it loops) or on a read error (which ends it with the reason)."""
        source = self.source
        try:
            frame = source.read(wait=False)
            if frame is None and source.loop and self._latest is not None:
                last = self._latest.captured_at
                source.close()
                source.open()  # from the start again, a frame after the last
                source.resume_at = last + (1.0 / self.input_fps if self.input_fps else 0.0)
                frame = source.read(wait=False)
        except (OSError, VidclsError) as e:
            source.close()
            self._end(VidclsError(f"reading failed ({e})", self.name))
            return None
        if frame is None:
            source.close()
            self._end(None)
            return None
        return frame, source.due(frame.time)

    def _end(self, error: VidclsError | None) -> None:
        self.online, self.ended = False, True
        self.error = self.error or error
        if self.source.recorder is not None:
            self.source.recorder.finish()
