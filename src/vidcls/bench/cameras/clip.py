"""The camera clip: an IP camera's substream made from real clips."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from ...errors import VidclsError


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
    from ... import zoo
    from ...writers import atomic_path

    if width < 16 or height < 16 or width % 2 or height % 2 or fps < 1 or seconds * fps < 1:
        raise VidclsError(f"no camera clip of {width}x{height} at {fps} fps for {seconds:g} s")
    if sources is None:
        from ..clips import shared_clips

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
    import cv2

    from ...media import VideoFile, read_clip

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


def _encode(path: Path, frames, width: int, height: int, fps: int) -> None:
    from ..clips import encode_h264

    options = {"preset": "veryfast", "crf": "26", "bf": "0", "g": str(2 * fps)}
    options["sc_threshold"] = "0"  # keyframes only every 2 s, as cameras send them
    encode_h264(path, frames, width, height, fps, options=options, container_format="mpegts")
