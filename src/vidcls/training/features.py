"""Frozen-backbone features of clips: the head's pooled and hidden activations after the last
frame, computed on the stream engine and cached on disk.

The extractor runs a copy of the model whose signature also outputs the head's two feature
tensors (:func:`~vidcls.training.head.with_outputs`), as an ordinary
:class:`~vidcls.model.StreamModel` stream fed through the same
:class:`~vidcls.preprocess.Preprocessor` as classification.
"""

from __future__ import annotations

import hashlib
import logging
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
from . import head as heads
from .augment import View, apply_view, random_views
from .dataset import Clip
from .progress import Phase

log = logging.getLogger("vidcls")

HIDDEN, POOLED = "vidcls_hidden", "vidcls_pooled"  # the extra outputs' names


class FeatureExtractor:
    """Runs a stream model over frames from a zero state; returns the head's features."""

    def __init__(self, model_path: str | os.PathLike, threads: int = 1) -> None:
        self.path = Path(model_path)
        vet(self.path, threads=threads)  # a bad base model fails here, before it is parsed
        data = self.path.read_bytes()
        graph = heads.load(data)
        self.head = heads.find_head(graph, str(self.path))
        self.hidden_quant = heads.quantization(graph, self.head.hidden)
        self.pooled_quant = heads.quantization(graph, self.head.pooled)
        self.digest = hashlib.sha256(data).hexdigest()[:16]
        extra = {HIDDEN: self.head.hidden, POOLED: self.head.pooled}
        featured = heads.with_outputs(data, self.head.signature_key, extra)
        # LiteRT maps the file it loads: it may go once loaded (POSIX keeps the mapping).
        with tempfile.TemporaryDirectory(prefix="vidcls-", ignore_cleanup_errors=True) as tmp:
            copy = write_bytes(Path(tmp) / self.path.name, featured)
            self.model = StreamModel(copy, threads, extra_outputs=tuple(extra))
        self.stream = self.model.new_stream()
        lay = self.model.layout
        self.preprocessor = Preprocessor(lay.height, lay.width)

    def __call__(self, frames: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """``(hidden, pooled)`` float features after the last of ``frames`` (RGB uint8)."""
        if not frames:
            raise ValueError("no frames")
        self.stream.reset()
        for f in frames:
            self.stream.step(self.preprocessor.from_array(f))
        hidden = dequantize(self.stream.output(HIDDEN), self.hidden_quant)
        return hidden, dequantize(self.stream.output(POOLED), self.pooled_quant)


def dequantize(x: np.ndarray, q: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """A tensor's float values, flat (``q``: its scale and zero point, None if float)."""
    x = x.reshape(-1)
    if q is None:
        return x.astype(np.float32)
    return ((x.astype(np.float32) - q[1][0]) * q[0][0]).astype(np.float32)


class FeatureCache:
    """Features per (model, clip file, view, rate) in one .npz per entry under ``folder``."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)

    def key(self, model_digest: str, clip: Path, view: View, fps: float | None) -> str:
        """The entry's name: changes with the model, the clip file, the view or the rate."""
        st = clip.stat()
        text = f"{model_digest}|{clip.resolve()}|{st.st_size}|{st.st_mtime_ns}|{view.key()}|{fps}"
        return hashlib.sha1(text.encode()).hexdigest()

    def get(self, key: str) -> tuple[np.ndarray, np.ndarray] | None:
        """``(hidden, pooled)`` stored under ``key``, or None."""
        p = self.folder / f"{key}.npz"
        if not p.is_file():
            return None
        try:
            with np.load(p) as z:
                return z["hidden"], z["pooled"]
        except (OSError, ValueError, KeyError):
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
class Features:
    """One row per clip view: hidden and pooled features, class, and (clip number, view)."""

    hidden: np.ndarray
    pooled: np.ndarray
    labels: np.ndarray
    groups: np.ndarray

    @property
    def plain(self) -> np.ndarray:
        """Rows of the clips themselves (view 0), not augmentations."""
        return self.groups[:, 1] == 0


@dataclass
class FeatureRun:
    """Features of clips fed at ``fps`` (None: every frame), from the cache when there.

    Unreadable clips are named in ``skipped``; ``phase`` advances once per clip view;
    ``computed`` and ``cached`` count the views run through the model and read from the cache.
    """

    extractor: FeatureExtractor
    cache: FeatureCache
    fps: float | None
    seed: int
    skipped: list[str]
    phase: Phase = field(default_factory=Phase)
    computed: int = 0
    cached: int = 0

    def features(self, clips: list[Clip], part: str, views: int) -> Features | None:
        """``views`` views of each clip (the first the clip itself; the others seeded by the
        seed, the clip number and ``part``); None if no clip could be read."""
        rows: list[tuple[np.ndarray, np.ndarray, int, tuple[int, int]]] = []
        for number, clip in enumerate(clips):
            rng = np.random.default_rng([self.seed, number, len(part)])
            got = self.clip_views(clip, random_views(rng, views))
            rows += [(h, p, clip.index, (number, v)) for v, (h, p) in enumerate(got)]
        if not rows:
            return None
        hidden, pooled, labels, groups = zip(*rows, strict=True)
        return Features(
            np.array(hidden, np.float32),
            np.array(pooled, np.float32),
            np.array(labels),
            np.array(groups),
        )

    def clip_views(self, clip: Clip, views: list[View]) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(hidden, pooled)`` of each view of ``clip``; none if it cannot be read (the clip
        is then added to ``skipped``). The clip is decoded only when a view is not cached."""
        out, frames = [], None
        for view in views:
            try:
                key = self.cache.key(self.extractor.digest, clip.path, view, self.fps)
                got = self.cache.get(key)
                if got is None and frames is None:
                    frames = media.read_frames(clip.path, self.fps)
            except Exception as e:  # noqa: BLE001 - any unreadable clip is skipped, named
                self.skipped.append(str(clip_error(clip.path, e)))
                log.warning("skipping %s", self.skipped[-1])
                self.phase.advance(len(views) - len(out))
                return []
            if got is None:
                got = self.extractor(apply_view(frames, view))
                self.cache.put(key, *got)
                self.computed += 1
            else:
                self.cached += 1
            out.append(got)
            self.phase.advance()
        return out
