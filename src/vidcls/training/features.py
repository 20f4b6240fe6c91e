"""Frozen-backbone features of clips: the head's pooled and hidden activations after the last
frame of each clip and of each window of it, computed on the stream engine and cached on disk.

The extractor runs a copy of the model whose signature also outputs the head's two feature
tensors (:func:`~vidcls.training.graph.with_outputs`), as an ordinary
:class:`~vidcls.model.StreamModel` stream fed through the same
:class:`~vidcls.preprocess.Preprocessor` as classification.
"""

from __future__ import annotations

import copy
import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import media
from ..errors import VidclsError
from ..model import StreamModel
from ..modelcheck import vet
from ..preprocess import Preprocessor
from ..writers import atomic_path, write_bytes
from .augment import View, apply_view
from .graph import find_head, load, quantization, with_outputs

HIDDEN, POOLED = "vidcls_hidden", "vidcls_pooled"  # the extra outputs' names
# How clips are decoded and sampled for features (part of the cache key; v4: an augmented view
# of a long clip gives one window of it): PyAV, frames picked by timestamp
# (B-frames not decoded when at most half the frames are fed: each step gets the nearest
# decoded frame), scaled down to the working size by swscale's area filter while converted.
DECODING = "pyav-nonref-area-v4"
EXACT = "pyav-exact-v4"  # every frame fed decoded and converted at full size


class FeatureExtractor:
    """Runs a stream model over frames from a zero state; returns the head's features.

    ``short_side``: the working size clips are decoded at (twice the model's input side),
    so augmentation runs on small frames and the model's own resize stays a downscale.
    ``fit``: how pictures meet the model's shape (see :data:`~vidcls.options.FITS`).
    """

    def __init__(
        self,
        model_path: str | os.PathLike,
        threads: int = 1,
        *,
        checked: bool = False,
        fit: str = "squash",
    ) -> None:
        self.path = Path(model_path)
        if not checked:
            vet(self.path, threads=threads)  # a bad base model fails here, before it is parsed
        data = self.path.read_bytes()
        parsed = load(data)
        self.head = find_head(parsed, str(self.path))
        self.hidden_quant = quantization(parsed, self.head.hidden)
        self.pooled_quant = quantization(parsed, self.head.pooled)
        self.fit = fit
        # The cache key's model part; features of other fits are other features.
        self.digest = hashlib.sha256(data).hexdigest()[:16] + ("" if fit == "squash" else fit)
        extra = {HIDDEN: self.head.hidden, POOLED: self.head.pooled}
        self.featured = with_outputs(data, self.head.signature_key, extra)
        self._load(threads)

    def _load(self, threads: int) -> None:
        """The featured model loaded on ``threads`` LiteRT threads, its streams and
        preprocessor."""
        # LiteRT maps the file it loads: it may go once loaded (POSIX keeps the mapping).
        with tempfile.TemporaryDirectory(prefix="vidcls-", ignore_cleanup_errors=True) as tmp:
            path = write_bytes(Path(tmp) / self.path.name, self.featured)
            self.model = StreamModel(path, threads, extra_outputs=(HIDDEN, POOLED))
        self.stream = self.model.new_stream()
        self.window_stream = self.model.new_stream()
        lay = self.model.layout
        self.preprocessor = Preprocessor(lay.height, lay.width, fit=self.fit)
        self.short_side = 2 * max(lay.height, lay.width)

    def another(self, threads: int = 1) -> FeatureExtractor:
        """An extractor of the same model and fit with its own model instance and streams
        (for another thread), on ``threads`` LiteRT threads; the featured model is not built
        again."""
        other = copy.copy(self)
        other._load(threads)
        return other

    def __call__(self, frames: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """``(hidden, pooled)`` float features after the last of ``frames`` (RGB uint8)."""
        hidden, pooled = self.samples(frames, 0)
        return hidden[0], pooled[0]

    def samples(
        self, frames: list[np.ndarray], window: int, whole: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(hidden, pooled)`` rows: the whole of ``frames`` (unless ``whole`` is False and
        there are windows), then (``window`` > 0, fewer frames than the clip) each run of
        ``window`` consecutive frames from the first, each from a zero state, as
        ``vidcls classify --window`` streams them. One pass: every frame is prepared once and
        fed to the whole-clip stream and the window stream."""
        if not frames:
            raise ValueError("no frames")
        windowed = 0 < window < len(frames)
        whole = whole or not windowed
        rows: list[tuple[np.ndarray, np.ndarray]] = []
        if whole:
            self.stream.reset()
        if windowed:
            self.window_stream.reset()
        for f in frames:
            image = self.preprocessor.from_array(f)
            if whole:
                self.stream.step(image)
            if windowed:
                self.window_stream.step(image)
                if self.window_stream.frames == window:
                    rows.append(self._read(self.window_stream))
                    self.window_stream.reset()
        if whole:
            rows.insert(0, self._read(self.stream))
        hidden, pooled = zip(*rows, strict=True)
        return np.stack(hidden), np.stack(pooled)

    def _read(self, stream) -> tuple[np.ndarray, np.ndarray]:
        hidden = dequantize(stream.output(HIDDEN), self.hidden_quant)
        return hidden, dequantize(stream.output(POOLED), self.pooled_quant)


def dequantize(x: np.ndarray, q: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """A tensor's float values, flat (``q``: its scale and zero point, None if float)."""
    x = x.reshape(-1)
    if q is None:
        return x.astype(np.float32)
    return ((x.astype(np.float32) - q[1][0]) * q[0][0]).astype(np.float32)


class FeatureCache:
    """Features per (model, clip file, view, rate, working size, window) in one .npz per
    entry under ``folder``."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)

    def key(
        self,
        model_digest: str,
        clip: Path,
        view: View,
        fps: float | None,
        short_side: int | None = None,
        window: float = 0.0,
    ) -> str:
        """The entry's name: changes with the model, the clip file, the view, the rate, the
        working size (None: decoded as classification decodes), the window, or the way clips
        are decoded (:data:`DECODING`)."""
        st = clip.stat()
        text = f"{model_digest}|{clip.resolve()}|{st.st_size}|{st.st_mtime_ns}|{view.key()}|{fps}"
        text += f"|{short_side}|{window}|{DECODING if short_side else EXACT}"
        return hashlib.sha1(text.encode()).hexdigest()

    def get(self, key: str) -> tuple[np.ndarray, np.ndarray] | None:
        """``(hidden, pooled)`` stored under ``key``, or None."""
        p = self.folder / f"{key}.npz"
        if not p.is_file():
            return None
        try:
            with np.load(p) as z:
                return z["hidden"], z["pooled"]
        except (OSError, ValueError, KeyError, EOFError):
            return None

    def put(self, key: str, hidden: np.ndarray, pooled: np.ndarray) -> None:
        """Store ``(hidden, pooled)`` under ``key`` (atomically)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.folder / f"{key}.npz") as tmp, open(tmp, "wb") as f:
            np.savez(f, hidden=hidden, pooled=pooled)


def clip_error(path: Path, e: Exception) -> VidclsError:
    """``e`` as a VidclsError naming the clip."""
    return e if isinstance(e, VidclsError) else VidclsError(f"cannot read clip ({e})", path)


@dataclass
class ClipSamples:
    """One clip's features: ``(hidden, pooled)`` rows per view (the whole view, then its
    windows), how many views were computed and read from the cache, or why it was skipped."""

    views: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    computed: int = 0
    cached: int = 0
    error: str | None = None


def clip_samples(
    extractor: FeatureExtractor,
    cache: FeatureCache,
    path: Path,
    views: list[View],
    fps: float | None,
    window: float = 0.0,
    working: bool = True,
) -> ClipSamples:
    """Features of each view of the clip at ``path`` fed at ``fps`` (None: every frame), with
    windows of ``window`` seconds (0: none) at that rate (the video's own rate without
    ``fps``), as :func:`view_samples` takes them. The clip is decoded once, at the working
    size (``working``; else every frame fed at full size, as classification decodes), only
    when a view is not cached; each view computed is cached at once. An unreadable clip
    gives ``error``."""
    out = ClipSamples()
    frames, rate = None, None
    short_side = extractor.short_side if working else None
    try:
        for view in views:
            key = cache.key(extractor.digest, path, view, fps, short_side, window)
            got = cache.get(key)
            if got is None:
                if frames is None:
                    frames, native = media.read_clip(path, fps, short_side, working)
                    rate = fps or native or 30.0
                frames_per_window = max(2, round(window * rate)) if window else 0
                got = view_samples(extractor, apply_view(frames, view), view, frames_per_window)
                cache.put(key, *got)
                out.computed += 1
            else:
                out.cached += 1
            out.views.append((np.atleast_2d(got[0]), np.atleast_2d(got[1])))
    except Exception as e:  # noqa: BLE001 - any unreadable clip is skipped, named
        return ClipSamples(error=str(clip_error(path, e)))
    return out


def view_samples(
    extractor: FeatureExtractor, frames: list[np.ndarray], view: View, window: int
) -> tuple[np.ndarray, np.ndarray]:
    """The rows of one view's ``frames``: the plain view whole and each of its windows of
    ``window`` frames; an augmented view longer than a window, one window of it at a place
    drawn from the view (what windowed classification sees, at a fraction of the cost);
    a shorter one, whole."""
    if view == View() or not 0 < window < len(frames):
        return extractor.samples(frames, window)
    rng = np.random.default_rng(int(hashlib.sha1(view.key().encode()).hexdigest()[:12], 16))
    start = int(rng.integers(0, len(frames) - window + 1))
    return extractor.samples(frames[start : start + window], 0)


@dataclass
class Features:
    """One row per sample: hidden and pooled features, class, and (clip number, sample);
    sample 0 is the clip itself, the others its windows and augmented views."""

    hidden: np.ndarray
    pooled: np.ndarray
    labels: np.ndarray
    groups: np.ndarray

    @property
    def plain(self) -> np.ndarray:
        """Rows of the whole clips themselves (sample 0), not augmentations or windows."""
        return self.groups[:, 1] == 0
