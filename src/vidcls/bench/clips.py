"""Clips the benchmarks run on: the shared real clips, and H.264 clips made here with PyAV.

Every clip a benchmark makes goes through :func:`encode_h264` (PyAV writing; reading is
:mod:`vidcls.media`'s job, as everywhere).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import numpy as np

SOURCE_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv")


def shared_folder() -> Path:
    """The shared assets' videos: ``$VIDCLS_SHARED/assets/videos``, by default ``../shared``
    beside the checkout."""
    here = Path(__file__).resolve().parents[3]
    return Path(os.environ.get("VIDCLS_SHARED", here.parent / "shared")) / "assets" / "videos"


def shared_clips() -> list[Path]:
    """The shared clips; SystemExit naming the folder when there are none."""
    folder = shared_folder()
    clips = sorted(p for p in folder.glob("*") if p.suffix in SOURCE_SUFFIXES)
    if not clips:
        raise SystemExit(f"no clips in {folder} (set VIDCLS_SHARED)")
    return clips


def real_frames(sources: list[Path], width: int, height: int, fps: int, seconds: float):
    """``seconds`` of RGB frames at ``fps`` and ``width`` x ``height`` made of real clips:
    the sources in turn, each cropped to the aspect ratio and scaled, at its real speed
    (frames repeated or skipped); sources under 15 fps are left out when others move more
    smoothly."""
    import cv2

    from ..media import VideoFile, read_clip

    rates = {}
    for path in sources:
        with VideoFile(path) as v:
            rates[path] = v.info.fps or fps
    smooth = [p for p in sources if rates[p] >= 15] or sources
    wanted, made, decoded = round(seconds * fps), 0, {}
    while made < wanted:
        for path in smooth:
            if path not in decoded:  # decoded when first needed, once
                decoded[path] = read_clip(path)[0]
            frames, rate = decoded[path], rates[path]
            h, w = frames[0].shape[:2]
            cw, ch = min(w, round(h * width / height)), min(h, round(w * height / width))
            x, y = (w - cw) // 2, (h - ch) // 2
            for n in range(max(1, int(len(frames) / rate * fps))):
                if made == wanted:
                    return
                picture = frames[min(int(n * rate / fps), len(frames) - 1)]
                yield cv2.resize(picture[y : y + ch, x : x + cw], (width, height), cv2.INTER_AREA)
                made += 1


def encode_h264(
    path: Path,
    frames: Iterable[np.ndarray],
    width: int,
    height: int,
    fps: int = 30,
    *,
    options: dict[str, str] | None = None,
    container_format: str | None = None,
    rotation: int = 0,
) -> Path:
    """Write RGB uint8 ``frames`` (``height`` x ``width``) as H.264 at ``fps`` with x264
    ``options`` (default: preset veryfast, crf 23), optionally in ``container_format`` and
    with a display matrix turning the picture by ``rotation`` degrees (as phones store
    portrait video)."""
    import av

    with av.open(str(path), "w", format=container_format) as container:
        s = container.add_stream("libx264", rate=fps, options=options or {"preset": "veryfast"})
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        s.codec_context.time_base = Fraction(1, fps)
        if rotation:
            s.set_display_rotation(rotation)
        for n, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts, frame.time_base = n, Fraction(1, fps)
            for packet in s.encode(frame):
                container.mux(packet)
        for packet in s.encode():
            container.mux(packet)
    return path


def moving_shapes(width: int, height: int, count: int) -> Iterable[np.ndarray]:
    """``count`` frames of colour ramps and a bright bar sweeping across (cheap, never still)."""
    xs, ys = np.arange(width), np.arange(height)
    img = np.empty((height, width, 3), np.uint8)
    for i in range(count):  # one row and one column per frame, broadcast: not a full grid
        img[..., 0] = ((xs + 4 * i) % 256).astype(np.uint8)
        img[..., 1] = ((ys + 2 * i) % 256).astype(np.uint8)[:, None]
        img[..., 2] = 128
        cx = int((0.5 + 0.4 * np.sin(i / 15)) * width)
        img[max(0, height // 3) : height // 2, max(0, cx - 60) : cx + 60] = 255
        yield img


def synthetic_video(
    path: Path, width: int = 1280, height: int = 720, seconds: float = 10.0
) -> Path:
    """An H.264 clip of moving shapes at 30 fps (the latency benchmark's default input)."""
    frames = moving_shapes(width, height, int(seconds * 30))
    return encode_h264(path, frames, width, height, 30, options={"preset": "veryfast", "crf": "23"})
