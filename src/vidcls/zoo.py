"""The model zoo: published MoViNet stream models, fetched once into a cache.

``VIDCLS_MIRROR`` (a folder or a base URL) replaces the published locations: the file fetched
is ``<mirror>/movinet_<variant>_stream_<precision>.tflite``. ``VIDCLS_CACHE`` moves the cache
(default: ``$XDG_CACHE_HOME/vidcls`` or ``~/.cache/vidcls``).
"""

from __future__ import annotations

import hashlib
import os
import sys
import urllib.error
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from .errors import VidclsError
from .files import MODEL_LIMIT, check_regular
from .options import DEFAULT_MODEL as DEFAULT_MODEL  # the zoo model used when none is named
from .writers import atomic_path

_HUB = "https://tfhub.dev/tensorflow/lite-model/movinet/{v}/stream/kinetics-600/classification/tflite/{p}/1?lite-format=tflite"


@dataclass(frozen=True)
class ZooModel:
    """One published stream model."""

    name: str
    variant: str
    precision: str
    input_size: int
    size_bytes: int | None
    sha256: str | None = None
    fps: float = 5.0
    labels: str = "kinetics600"

    @property
    def filename(self) -> str:
        return f"movinet_{self.variant}_stream_{self.precision}.tflite"

    @property
    def url(self) -> str:
        return _HUB.format(v=self.variant, p=self.precision)


# Sizes: A0 int8 is exact; the others are the published sizes, rounded.
MODELS: dict[str, ZooModel] = {
    m.name: m
    for m in (
        ZooModel(
            "a0",
            "a0",
            "int8",
            172,
            3_276_048,
            "6125b36e2485eeb5cc1fd6206cf5e5d70235593fbc84610d1dce97fe3aa9c2ac",
        ),
        ZooModel("a1", "a1", "int8", 172, 4_500_000),
        ZooModel("a2", "a2", "int8", 224, 5_100_000),
        ZooModel("a0-float16", "a0", "float16", 172, None),
        ZooModel("a1-float16", "a1", "float16", 172, None),
        ZooModel("a2-float16", "a2", "float16", 224, None),
    )
}
# The published files, byte for byte, are known to load and run: no need to try them first.
KNOWN_GOOD = frozenset(m.sha256 for m in MODELS.values() if m.sha256)


def available_models() -> list[str]:
    """Names of the zoo models (``a0``, ``a1``, ...); any stream .tflite path works too."""
    return list(MODELS)


def cache_dir() -> Path:
    """Where fetched models are kept."""
    if os.environ.get("VIDCLS_CACHE"):
        return Path(os.environ["VIDCLS_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "vidcls"


def cached_path(model: ZooModel) -> Path:
    return cache_dir() / model.filename


def is_cached(model: ZooModel) -> bool:
    return cached_path(model).is_file()


def source_of(model: ZooModel) -> str:
    """Where ``model`` is fetched from: the mirror when one is set, else its published URL."""
    mirror = os.environ.get("VIDCLS_MIRROR")
    if not mirror:
        return model.url
    if "://" in mirror:
        return mirror.rstrip("/") + "/" + urllib.parse.quote(model.filename)
    return str(Path(mirror).expanduser() / model.filename)


def availability(model: ZooModel) -> str:
    """Whether ``model`` can be had now: ``cached``, ``in mirror``, ``not in mirror``,
    ``mirror URL`` (not checked) or ``download`` (from its published place)."""
    if is_cached(model):
        return "cached"
    mirror = os.environ.get("VIDCLS_MIRROR")
    if not mirror:
        return "download"
    if "://" in mirror and not mirror.startswith("file://"):
        return "mirror URL"
    return (
        "in mirror" if Path(source_of(model).removeprefix("file://")).is_file() else "not in mirror"
    )


def resolve_model(model: str | os.PathLike, progress: bool | None = None) -> Path:
    """A local .tflite path for a zoo name (fetched if needed) or an existing file path."""
    text = os.fspath(model)
    if text.lower() in MODELS:
        return fetch(MODELS[text.lower()], progress=progress)
    path = Path(text).expanduser()
    try:
        exists = path.exists()
    except (OSError, ValueError):  # a name too long for a file, a NUL: none exists
        exists = False
    if exists or os.sep in text or text.endswith(".tflite"):
        return path  # the loader reports a missing or invalid file
    raise VidclsError(
        f"unknown model '{text}' (zoo models: {', '.join(MODELS)}; or a .tflite path)"
    )


def fetch(model: ZooModel, progress: bool | None = None) -> Path:
    """The cached file for ``model``, downloading it first if it is not cached."""
    target = cached_path(model)
    if target.is_file():
        return target
    source = source_of(model)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise VidclsError(f"cannot create the model cache ({e.strerror})", target.parent) from None
    if progress is None:
        progress = sys.stderr.isatty()
    try:
        return _download(model, source, target, progress)
    except VidclsError as e:
        raise VidclsError(f"{e.message}; {_hint(model)}", e.path) from None


def _hint(model: ZooModel) -> str:
    """What to do when a zoo model cannot be fetched."""
    if os.environ.get("VIDCLS_MIRROR"):
        where = f"put {model.filename} in the mirror (VIDCLS_MIRROR)"
    else:
        where = f"set VIDCLS_MIRROR to a folder or URL holding {model.filename}"
    return f"{where}, or pass --model PATH to a .tflite file"


def _download(model: ZooModel, source: str, target: Path, progress: bool) -> Path:
    digest = hashlib.sha256()
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as out, _open_source(source) as (stream, total):
            bar = _progress_bar(total, f"fetching {model.name}", progress)
            try:
                while chunk := stream.read(1 << 16):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
            except OSError as e:
                reason = getattr(e, "strerror", None) or e
                raise VidclsError(f"download interrupted ({reason})", source) from None
            finally:
                bar.close()
        if model.sha256 and digest.hexdigest() != model.sha256:
            raise VidclsError(
                f"checksum mismatch for {model.name}: got sha256 {digest.hexdigest()}, "
                f"expected {model.sha256}",
                source,
            )
    return target


class _open_source:
    """Open a local path or URL for reading; yields ``(binary stream, size or None)``."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._handle = None

    def __enter__(self):
        src = self.source
        try:
            if "://" in src and not src.startswith("file://"):
                from urllib.request import Request, urlopen

                req = Request(src, headers={"User-Agent": "vidcls"})
                self._handle = urlopen(req, timeout=30)
                length = self._handle.headers.get("Content-Length")
                return self._handle, int(length) if length and length.isdigit() else None
            path = urllib.parse.unquote(urllib.parse.urlparse(src).path) if "://" in src else src
            check_regular(path, "model file", MODEL_LIMIT, missing="model not found in the mirror")
            self._handle = open(path, "rb")
            return self._handle, os.fstat(self._handle.fileno()).st_size
        except FileNotFoundError:
            raise VidclsError("model not found in the mirror", src) from None
        except urllib.error.HTTPError as e:
            raise VidclsError(f"cannot download model (HTTP {e.code} {e.reason})", src) from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", None) or getattr(e, "strerror", None) or e
            raise VidclsError(f"cannot download model ({reason})", src) from None

    def __exit__(self, *exc) -> None:
        if self._handle is not None:
            self._handle.close()


def _progress_bar(total: int | None, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(
        total=total, desc=desc, unit="B", unit_scale=True, disable=not enabled, file=sys.stderr
    )
