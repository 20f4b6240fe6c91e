"""Simulated IP cameras on loopback, for measuring many live streams on one box.

:func:`camera_clip` makes (once) a camera substream from the shared real clips: 640x360,
30 fps H.264 without B-frames, a keyframe every 2 s, in MPEG-TS. :class:`CameraServer` plays
it from a child process (``python -m vidcls.bench.cameras serve CLIP --port 0``) as any number of
live cameras over HTTP on 127.0.0.1, ``/cam/<i>.ts``.

Each camera ``i`` is a live clock running since the server started, ``i`` golden-ratio steps
into the clip, looped forever with its timestamps and continuity counters carried on (a real
camera's never jump back). A client that connects gets at once the frames from the last
keyframe up to the camera's present (as a restreaming server's GOP cache gives), then each
frame at its real time; so cameras neither show the same content nor send keyframes at the
same moments.
"""

from .clip import camera_clip
from .server import CameraServer

__all__ = ["CameraServer", "camera_clip"]
