"""How a classifier and its action segments are set up: :class:`ClassifierOptions`,
:class:`SegmentOptions`, and the choices their fields take.

Light on purpose (no numpy, OpenCV, PyAV or LiteRT): the command line builds its flags from
here before anything heavy is imported.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from .errors import OptionError, VidclsError

DEFAULT_MODEL = "a0"
RESIZES = ("bilinear", "area")  # --resize: OpenCV bilinear (the official pipeline) or FFmpeg area
BACKENDS = ("auto", "compiled", "interpreter")  # LiteRT CompiledModel or Interpreter
WINDOW_MODES = ("two", "decay")  # --window-mode: how a window forgets (see vidcls.window)
# --fit: how a picture of another shape meets the model's: stretched to it (the official
# pipeline), its centre cut to the model's aspect, or scaled whole and padded with black.
FITS = ("squash", "crop", "letterbox")
MIN_FPS, MAX_FPS = 0.01, 1000.0  # frames fed a second: one every 100 s to a thousand


@dataclass
class ClassifierOptions:
    """How to build a :class:`VideoClassifier`; checked when made (VidclsError if invalid).

    ``model`` is a zoo name (``a0``, ``a1``, ``a2``, ...) or a .tflite path. ``labels`` is a
    label file, a list, or None (labels embedded in or beside the model, else Kinetics-600).
    Filters apply in the official example's order: ``deny``, ``allow``, ``threshold``,
    ``top_k`` (0 keeps all). ``window`` (seconds) makes predictions follow the content of long
    videos (see :mod:`vidcls.window`); None is cumulative, as the model is. ``window_mode``:
    how the window forgets: ``"two"``, two staggered streams reset in turn (exactly the last
    ``window/2`` to ``window`` seconds; two model runs per frame), or ``"decay"``, one stream
    whose older frames fade geometrically (one run per frame; ``"two"`` for a model without
    pool sums to decay). ``fit``: how a picture of another shape meets the model's (see
    :data:`FITS`); None: what a model trained by vidcls records, else ``"squash"``;
    ``crop=True`` is ``fit="crop"``. Each field is the CLI flag of the same name (``top_k`` is
    ``--top-k``).
    """

    model: str | os.PathLike = DEFAULT_MODEL
    labels: str | os.PathLike | list[str] | None = None
    top_k: int = 5
    threshold: float = 0.0
    allow: list[str] | None = None
    deny: list[str] | None = None
    threads: int = 1
    resize: str = "bilinear"
    crop: bool = False
    backend: str = "auto"
    window: float | None = None
    window_mode: str = "two"
    fit: str | None = None

    def __post_init__(self) -> None:
        if self.crop and self.fit not in (None, "crop"):
            raise OptionError("crop", f"contradicts fit={self.fit!r}")
        if self.crop:
            self.fit = "crop"
        if self.fit is not None:
            check_fit(self.fit)
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 0:
            raise OptionError("top_k", f"must be 0 (all) or more, not {self.top_k!r}")
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1:
            raise OptionError("threads", f"must be 1 or more, not {self.threads!r}")
        if not 0 <= self.threshold <= 1:
            raise OptionError("threshold", f"must be from 0 to 1, not {self.threshold!r}")
        if self.resize not in RESIZES:
            raise VidclsError(f"unknown resize '{self.resize}' (choose from {', '.join(RESIZES)})")
        if self.backend not in BACKENDS:
            raise VidclsError(
                f"unknown backend '{self.backend}' (choose from {', '.join(BACKENDS)})"
            )
        check_window(self.window)
        if self.window_mode not in WINDOW_MODES:
            choices = " or ".join(WINDOW_MODES)
            raise OptionError("window_mode", f"must be {choices}, not {self.window_mode!r}")


def check_fit(fit: object) -> None:
    """VidclsError unless ``fit`` is one of :data:`FITS`."""
    if fit not in FITS:
        raise OptionError("fit", f"must be one of {', '.join(FITS)}, not {fit!r}")


def check_window(window: float | None) -> None:
    """VidclsError unless ``window`` is None or a finite positive number of seconds."""
    if window is not None and not (window > 0 and math.isfinite(window)):
        raise OptionError("window", f"must be a positive number of seconds, not {window}")


@dataclass(frozen=True)
class SegmentOptions:
    """Thresholds on smoothed probabilities; durations in seconds. Each field is the CLI flag
    of the same name (``min_duration`` is ``--min-duration``)."""

    enter: float = 0.3
    exit: float = 0.15
    min_duration: float = 1.0
    smoothing: float = 0.5  # time constant of the exponential moving average; 0: none

    def __post_init__(self) -> None:
        if not 0 <= self.enter <= 1:
            raise OptionError("enter", f"must be from 0 to 1, not {self.enter}")
        if not 0 <= self.exit <= self.enter:
            raise OptionError("exit", f"must be from 0 to enter ({self.enter}), not {self.exit}")
        for name in ("min_duration", "smoothing"):
            value = getattr(self, name)
            if not 0 <= value < math.inf:
                raise OptionError(name, f"must be a finite number of seconds, not {value}")
