"""The camera clip: an IP camera's substream made from real clips."""

from __future__ import annotations

import hashlib
import sys
from fractions import Fraction
from pathlib import Path

from ..errors import VidclsError


def camera_clip(
    out: Path | None = None,
    width: int = 640,
    height: int = 360,
    fps: int = 30,
    seconds: float = 20,
    sources: list[Path] | None = None,
) -> Path:
    """An IP camera's substream made from real clips (default: the shared ones): H.264 at
    ``width`` x ``height`` and ``fps``, no B-frames, a keyframe every 2 s, in MPEG-TS. Made once
    into the model cache (or always into ``out``), atomically."""
    from .. import zoo
    from ..writers import atomic_path

    if width < 16 or height < 16 or width % 2 or height % 2 or fps < 1 or seconds * fps < 1:
        raise VidclsError(f"no camera clip of {width}x{height} at {fps} fps for {seconds:g} s")
    if sources is None:
        from ..training.benchmark import shared_clips

        sources = shared_clips()
    if out is None:
        key = hashlib.sha256(repr([(p.name, p.stat().st_size) for p in sources]).encode())
        name = f"camera-{width}x{height}-{fps}fps-{seconds:g}s-{key.hexdigest()[:8]}-v1.ts"
        out = zoo.cache_dir() / "cameras" / name
        if out.is_file():
            return out
    out.parent.mkdir(parents=True, exist_ok=True)
    print(
        f"making a {width}x{height} {fps} fps camera clip of {seconds:g} s in {out} (once)",
        file=sys.stderr,
        flush=True,
    )
    with atomic_path(out) as tmp:
        _encode(tmp, _frames(sources, width, height, fps, seconds), width, height, fps)
    return out


def _frames(sources: list[Path], width: int, height: int, fps: int, seconds: float):
    """``seconds`` of RGB frames at ``fps``: the sources in turn, each cropped to the aspect
    ratio and scaled, at its real speed (frames repeated or skipped); sources under 15 fps are
    left out when others move more smoothly."""
    import av
    import cv2

    from ..media import read_clip

    rates = {}
    for path in sources:
        with av.open(str(path)) as container:
            rates[path] = float(container.streams.video[0].average_rate or fps)
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


def _encode(path: Path, frames, width: int, height: int, fps: int) -> None:
    import av

    options = {"preset": "veryfast", "crf": "26", "bf": "0", "g": str(2 * fps)}
    options["sc_threshold"] = "0"  # keyframes only every 2 s, as cameras send them
    with av.open(str(path), "w", format="mpegts") as container:
        s = container.add_stream("libx264", rate=fps, options=options)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        s.codec_context.time_base = Fraction(1, fps)
        for n, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = n, Fraction(1, fps)
            for packet in s.encode(frame):
                container.mux(packet)
        for packet in s.encode():
            container.mux(packet)
