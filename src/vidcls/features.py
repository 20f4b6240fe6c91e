"""Frozen-backbone features of clips: the head's pooled and hidden activations after the last
frame, with augmented views of each clip, cached on disk."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import head as heads
from ._native import quiet_stderr
from .errors import VidclsError
from .model import check_model_file
from .preprocess import Preprocessor
from .video import VideoFile

MIN_FRAMES = 4  # shorter clips are padded by repeating their frames


@dataclass(frozen=True)
class View:
    """One augmentation of a clip: flip, crop box (fractions), first frame, frame step."""

    flip: bool = False
    crop: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)  # x0, y0, x1, y1
    start: int = 0
    step: float = 1.0  # 2: every other frame (faster motion); 0.5: each frame twice
    brightness: float = 1.0

    def key(self) -> str:
        return repr(
            (
                self.flip,
                tuple(round(c, 4) for c in self.crop),
                self.start,
                self.step,
                round(self.brightness, 3),
            )
        )


def random_views(rng: np.random.Generator, n: int) -> list[View]:
    """The plain clip plus ``n - 1`` random augmentations."""
    views = [View()]
    for _ in range(n - 1):
        scale = rng.uniform(0.7, 1.0)
        aspect = rng.uniform(0.85, 1.15)
        w, h = min(1.0, scale * aspect), min(1.0, scale / aspect)
        x0, y0 = rng.uniform(0, 1 - w), rng.uniform(0, 1 - h)
        views.append(
            View(
                flip=bool(rng.integers(2)),
                crop=(x0, y0, x0 + w, y0 + h),
                start=int(rng.integers(0, 3)),
                step=float(rng.choice([0.5, 1.0, 1.0, 1.5, 2.0])),
                brightness=float(rng.uniform(0.8, 1.2)),
            )
        )
    return views


def read_clip(path: str | os.PathLike, fps: float | None = None) -> list[np.ndarray]:
    """All frames of a clip (or those at ``fps``) as RGB uint8 arrays."""
    with VideoFile(path) as v:
        return [f.to_ndarray(format="rgb24") for _, f in v.frames(fps)]


def apply_view(frames: list[np.ndarray], view: View) -> list[np.ndarray]:
    """The frames of ``view``: temporal offset and speed, crop, flip, brightness."""
    n = len(frames)
    start = min(view.start, max(0, n - MIN_FRAMES))
    idx = np.arange(start, n, view.step).astype(int)
    if len(idx) < MIN_FRAMES:  # too short after the speed change: keep the plain timing
        idx = np.arange(start, n)
    out = []
    for i in idx:
        f = frames[i]
        h, w = f.shape[:2]
        x0, y0, x1, y1 = view.crop
        f = f[
            int(y0 * h) : max(int(y1 * h), int(y0 * h) + 1),
            int(x0 * w) : max(int(x1 * w), int(x0 * w) + 1),
        ]
        if view.flip:
            f = f[:, ::-1]
        if view.brightness != 1.0:
            f = np.clip(f * view.brightness, 0, 255).astype(np.uint8)
        out.append(np.ascontiguousarray(f))
    while len(out) < MIN_FRAMES:  # pad a very short clip by looping it
        out += out[: MIN_FRAMES - len(out)]
    return out


class FeatureExtractor:
    """Runs a stream model over frames from a zero state; returns the head's features."""

    def __init__(self, model_path: str | os.PathLike, num_threads: int = 1) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.path = Path(model_path)
        check_model_file(self.path)
        data = self.path.read_bytes()
        self.model_t = heads.load(data)
        self.head = heads.find_head(self.model_t, str(self.path))
        self.hidden_quant = heads.quantization(self.model_t, self.head.hidden)
        self.pooled_quant = heads.quantization(self.model_t, self.head.pooled)
        with quiet_stderr():
            self._it = Interpreter(
                model_content=_with_feature_outputs(data, self.head), num_threads=num_threads
            )
            self._it.allocate_tensors()  # the delegate logs when it is made
        self._runner = self._it.get_signature_runner(self.head.signature_key)
        details = self._runner.get_input_details()
        self.image_name = next(n for n, d in details.items() if len(d["shape"]) == 5)
        h, w = details[self.image_name]["shape"][2:4]
        self.preprocessor = Preprocessor(int(h), int(w))
        self._zeros = {
            n: np.zeros(d["shape"], d["dtype"]) for n, d in details.items() if n != self.image_name
        }
        self.digest = hashlib.sha256(data).hexdigest()[:16]

    def __call__(self, frames: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """``(hidden, pooled)`` float features after the last of ``frames`` (RGB uint8)."""
        if not frames:
            raise ValueError("no frames")
        states = self._zeros
        for f in frames:
            image = self.preprocessor.from_array(f)[None, None]
            out = self._runner(**states, **{self.image_name: image})
            hidden, pooled = out.pop("vidcls_hidden"), out.pop("vidcls_pooled")
            states = {k: v for k, v in out.items() if k in self._zeros}
        return _dequantize(hidden, self.hidden_quant), _dequantize(pooled, self.pooled_quant)


def _dequantize(x: np.ndarray, q) -> np.ndarray:
    x = x.reshape(-1)
    if q is None:
        return x.astype(np.float32)
    return ((x.astype(np.float32) - q[1][0]) * q[0][0]).astype(np.float32)


def _with_feature_outputs(data: bytes, head: heads.Head) -> bytes:
    """The model with the head's hidden and pooled tensors as extra signature outputs."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = heads.load(data)
    sg = model.subgraphs[0]
    sig = next(
        s for s in model.signatureDefs if heads._decode(s.signatureKey) == head.signature_key
    )
    for name, index in (("vidcls_hidden", head.hidden), ("vidcls_pooled", head.pooled)):
        m = schema.TensorMapT()
        m.name, m.tensorIndex = name, int(index)
        sig.outputs.append(m)
        sg.outputs = np.append(np.asarray(sg.outputs, np.int32), np.int32(index))
    builder = flatbuffers.Builder(len(data) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


class FeatureCache:
    """Features per (model, clip file, view) in one .npz per entry under ``folder``."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)

    def key(self, model_digest: str, clip: Path, view: View, fps: float | None) -> str:
        st = clip.stat()
        text = f"{model_digest}|{clip.resolve()}|{st.st_size}|{st.st_mtime_ns}|{view.key()}|{fps}"
        return hashlib.sha1(text.encode()).hexdigest()

    def get(self, key: str) -> tuple[np.ndarray, np.ndarray] | None:
        p = self.folder / f"{key}.npz"
        if not p.is_file():
            return None
        try:
            with np.load(p) as z:
                return z["hidden"], z["pooled"]
        except (OSError, ValueError, KeyError):
            return None

    def put(self, key: str, hidden: np.ndarray, pooled: np.ndarray) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".{key}.{os.getpid()}.npz"
        np.savez(tmp, hidden=hidden, pooled=pooled)
        os.replace(tmp, self.folder / f"{key}.npz")


def clip_error(path: Path, e: Exception) -> VidclsError:
    return e if isinstance(e, VidclsError) else VidclsError(f"cannot read clip ({e})", path)
