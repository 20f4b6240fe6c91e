"""Test media made here with PyAV: clips joined end to end, turned as phones store them, and
short clips of moving shapes."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def join_clips(paths: list[Path], out: Path, size: int = 256, fps: int = 25) -> list[float]:
    """Decode ``paths`` and encode them one after another (H.264, ``size``², ``fps``).

    Frames are resampled to ``fps`` by timestamp. Returns each clip's start time in ``out``.
    """
    starts = []
    with av.open(str(out), "w") as dst:
        s = dst.add_stream("libx264", rate=fps, options={"preset": "veryfast", "crf": "20"})
        s.width = s.height = size
        s.pix_fmt = "yuv420p"
        s.codec_context.time_base = Fraction(1, fps)
        n = 0
        for path in paths:
            starts.append(n / fps)
            with av.open(str(path)) as src:
                frames = [
                    (f.time, f.to_ndarray(format="rgb24", width=size, height=size))
                    for f in src.decode(video=0)
                ]
            t0, t_end = frames[0][0], frames[-1][0]
            times = np.array([t for t, _ in frames]) - t0
            for k in range(int((t_end - t0) * fps) + 1):
                i = int(np.searchsorted(times, k / fps, side="right")) - 1
                frame = av.VideoFrame.from_ndarray(frames[max(i, 0)][1], format="rgb24")
                frame.pts = n
                n += 1
                for packet in s.encode(frame):
                    dst.mux(packet)
        for packet in s.encode():
            dst.mux(packet)
    return starts


def rotated_copy(src: Path, out: Path, degrees: int = 90) -> Path:
    """``src`` as a phone stores it: pixels turned ``degrees`` clockwise, with a display
    matrix saying to turn them back (FFmpeg reports ``frame.rotation == degrees``)."""
    with av.open(str(src)) as inp, av.open(str(out), "w") as dst:
        vin = inp.streams.video[0]
        s = dst.add_stream("libx264", rate=vin.average_rate, options={"crf": "18"})
        turns = (degrees // 90) % 4
        s.width, s.height = (vin.height, vin.width) if turns % 2 else (vin.width, vin.height)
        s.pix_fmt = "yuv420p"
        s.set_display_rotation(degrees)
        for frame in inp.decode(vin):
            rgb = np.ascontiguousarray(np.rot90(frame.to_ndarray(format="rgb24"), -turns))
            for packet in s.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                dst.mux(packet)
        for packet in s.encode():
            dst.mux(packet)
    return out


def tiny_clip(out: Path, frames: int = 10, fps: int = 10, size: int = 64) -> Path:
    """A short H.264 clip of a moving square: ``frames`` frames at ``fps``, ``size``²."""
    with av.open(str(out), "w") as dst:
        s = dst.add_stream("libx264", rate=fps, options={"preset": "veryfast"})
        s.width = s.height = size
        s.pix_fmt = "yuv420p"
        for i in range(frames):
            rgb = np.full((size, size, 3), 40, np.uint8)
            x = (i * 5) % (size - 16)
            rgb[16:32, x : x + 16] = 220
            for packet in s.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                dst.mux(packet)
        for packet in s.encode():
            dst.mux(packet)
    return out


def side_by_side(left: Path, right: Path, out: Path, size: int = 192, fps: int = 15) -> Path:
    """``left`` and ``right`` scaled to ``size``² and shown side by side (H.264, ``fps``), as
    long as the shorter one."""

    def frames(path: Path) -> list[np.ndarray]:
        with av.open(str(path)) as src:
            decoded = [
                (f.time, f.to_ndarray(format="rgb24", width=size, height=size))
                for f in src.decode(video=0)
            ]
        times = np.array([t for t, _ in decoded]) - decoded[0][0]
        picks = [
            int(np.searchsorted(times, k / fps, side="right")) - 1
            for k in range(int(times[-1] * fps) + 1)
        ]
        return [decoded[max(i, 0)][1] for i in picks]

    a, b = frames(left), frames(right)
    with av.open(str(out), "w") as dst:
        s = dst.add_stream("libx264", rate=fps, options={"preset": "veryfast", "crf": "20"})
        s.width, s.height, s.pix_fmt = 2 * size, size, "yuv420p"
        s.codec_context.time_base = Fraction(1, fps)
        for k in range(min(len(a), len(b))):
            frame = av.VideoFrame.from_ndarray(np.concatenate([a[k], b[k]], axis=1), "rgb24")
            frame.pts = k
            for packet in s.encode(frame):
                dst.mux(packet)
        for packet in s.encode():
            dst.mux(packet)
    return out


if __name__ == "__main__":  # python tests/media.py [--side-by-side] OUT.mp4 CLIP [CLIP ...]
    import sys

    args = sys.argv[1:]
    if args[0] == "--side-by-side":  # OUT.mp4 LEFT RIGHT
        print(side_by_side(Path(args[2]), Path(args[3]), Path(args[1])))
    else:
        out, *clips = args
        starts = join_clips([Path(c) for c in clips], Path(out))
        for start, clip in zip(starts, clips, strict=True):
            print(f"{start:7.2f} s  {clip}")
