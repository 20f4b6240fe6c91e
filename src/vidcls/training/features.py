"""Frozen-backbone features of clips: the head's pooled and hidden activations after the last
frame, computed on the stream engine and cached on disk.

The extractor runs a copy of the model whose signature also outputs the head's two feature
tensors (:func:`~vidcls.training.head.with_outputs`), as an ordinary
:class:`~vidcls.model.StreamModel` stream fed through the same
:class:`~vidcls.preprocess.Preprocessor` as classification.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

from ..errors import VidclsError
from ..model import StreamModel, check_model_file
from ..preprocess import Preprocessor
from ..writers import atomic_path, write_bytes
from . import head as heads
from .augment import View

HIDDEN, POOLED = "vidcls_hidden", "vidcls_pooled"  # the extra outputs' names


class FeatureExtractor:
    """Runs a stream model over frames from a zero state; returns the head's features."""

    def __init__(self, model_path: str | os.PathLike, threads: int = 1) -> None:
        self.path = Path(model_path)
        check_model_file(self.path)
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
