"""The camera clip: an IP camera's substream made from real clips."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from ...errors import VidclsError
from ..clips import encode_h264, real_frames, shared_clips


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
        _encode(tmp, real_frames(sources, width, height, fps, seconds), width, height, fps)
    return out


def _encode(path: Path, frames, width: int, height: int, fps: int) -> None:
    options = {"preset": "veryfast", "crf": "26", "bf": "0", "g": str(2 * fps)}
    options["sc_threshold"] = "0"  # keyframes only every 2 s, as cameras send them
    encode_h264(path, frames, width, height, fps, options=options, container_format="mpegts")
