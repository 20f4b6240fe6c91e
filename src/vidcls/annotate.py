"""Write a copy of a video with the results drawn on every frame (PyAV in, PyAV out)."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av

from .errors import VidclsError
from .media import Timestamps, VideoFile, display_rotation, rotation_of, upright
from .overlay import draw_results
from .results import VideoResult
from .writers import atomic_path

MIN_HEIGHT = 360
# Audio codecs an MP4/MOV/MKV file can carry as they are; anything else is re-encoded to AAC.
# (MP3 is re-encoded: in AVI its packets carry timestamps an MP4 muxer refuses.)
_COPYABLE_AUDIO = {"aac", "ac3", "eac3", "opus", "alac", "flac"}


def annotate_video(
    result: VideoResult, out: str | os.PathLike, *, crf: int = 20, progress: bool = False
) -> Path:
    """Re-read ``result.source`` and write ``out`` (H.264, same frames and times, audio kept).

    Videos under 360 px tall are enlarged so the text is legible.

    Each frame shows the latest prediction at its time and, with segments, the current action.
    The file appears only when complete.
    """
    out = Path(out)
    try:
        with (
            VideoFile(result.source) as video,
            atomic_path(out) as tmp,
            av.open(str(tmp), "w") as dst,
        ):
            _transcode(video, dst, result, crf)
    except (av.FFmpegError, ValueError) as e:
        raise VidclsError(f"cannot write annotated video ({e})", out) from None
    return out


def _transcode(video: VideoFile, dst, result: VideoResult, crf: int) -> None:
    """Every frame of ``video`` with the result at its time drawn on it, and its audio."""
    inp, vin = video.container, video.stream
    ain = inp.streams.audio[0] if inp.streams.audio else None
    options = {"crf": str(crf), "preset": "veryfast"}  # x264 medium: several times slower
    vout = dst.add_stream("libx264", rate=vin.average_rate or 25, options=options)
    rotation = display_rotation(video.path)  # phone videos: written upright
    width, height = (vin.height, vin.width) if rotation % 180 else (vin.width, vin.height)
    grow = max(1.0, MIN_HEIGHT / height)  # small clips are enlarged so text reads
    vout.width = round(width * grow) // 2 * 2
    vout.height = round(height * grow) // 2 * 2
    vout.pix_fmt = "yuv420p"
    stored = (vout.height, vout.width) if rotation % 180 else (vout.width, vout.height)
    # A fine time base: a frame nudged past a repeated timestamp moves 11 µs, not a frame.
    time_base = Fraction(1, 90000)
    vout.codec_context.time_base = time_base
    aout, resampler = _audio_output(dst, ain)
    clock = Timestamps(vin.time_base, float(vin.average_rate or 25))
    times, segments = result.times, result.segments or []
    start, last_pts, index, k = None, None, 0, -1
    for packet in inp.demux(*(s for s in (vin, ain) if s is not None)):
        if packet.stream is ain:
            _mux_audio(dst, packet, aout, resampler)
            continue
        for frame in packet.decode():
            t = clock(frame, index)
            index += 1
            start = t if start is None else start
            t -= start
            while k + 1 < len(times) and times[k + 1] <= t + 1e-6:
                k += 1
            rgb = frame.to_ndarray(format="rgb24", width=stored[0], height=stored[1])
            rgb = upright(rgb, rotation_of(frame))
            top = result.frames[k].top if k >= 0 else []
            current = next((s.label for s in segments if s.start <= t < s.end), None)
            draw_results(rgb, top[:3], segment=current)
            new = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            pts = round(t / time_base)
            pts = pts if last_pts is None or pts > last_pts else last_pts + 1
            new.pts, new.time_base, last_pts = pts, time_base, pts
            for p in vout.encode(new):
                dst.mux(p)
    for p in vout.encode():
        dst.mux(p)
    if resampler is not None:
        _mux_audio(dst, None, aout, resampler)


def _audio_output(dst, ain):
    """An output stream for ``ain``: a copy when the codec fits, else AAC (with a resampler)."""
    if ain is None:
        return None, None
    if ain.codec_context.name in _COPYABLE_AUDIO:
        return dst.add_stream_from_template(ain), None
    aout = dst.add_stream("aac", rate=ain.rate or 44100)
    return aout, _Resampler(aout.rate)


class _Resampler:
    """Decoded audio to AAC's sample format, with timestamps counted in samples."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.samples = 0
        self._resampler = av.AudioResampler(format="fltp", layout="stereo", rate=rate)

    def __call__(self, frame):
        for converted in self._resampler.resample(frame):
            converted.pts, converted.time_base = self.samples, Fraction(1, self.rate)
            self.samples += converted.samples
            yield converted


def _mux_audio(dst, packet, aout, resampler) -> None:
    if resampler is None:  # stream copy
        if packet.dts is not None:
            packet.stream = aout
            dst.mux(packet)
        return
    frames = packet.decode() if packet is not None else [None]
    for frame in frames:
        for converted in resampler(frame):
            for p in aout.encode(converted):
                dst.mux(p)
    if packet is None:
        for p in aout.encode(None):
            dst.mux(p)
