"""vidcls: streaming video classification (human action recognition) on ordinary CPUs.

    import vidcls
    result = vidcls.classify_video("clip.mp4")              # a whole file
    results, info = vidcls.iter_video("clip.mp4")           # frame by frame, as computed
    for frame in vidcls.iter_live("0"): ...                 # a camera or stream; break to stop
    vidcls.watch(["door=rtsp://...", "yard=rtsp://..."], print)  # many sources, one model
    classifier = vidcls.load_classifier("a0", top_k=3)      # a model loaded once, reused
    vidcls.train("clips/", "my_actions.tflite")             # new actions from labelled clips

The result types are in :mod:`vidcls.results`, webhook and MQTT outputs in
:mod:`vidcls.sinks`, the live engine in :mod:`vidcls.live`. Names load on first use, so
``import vidcls`` (and ``vidcls --help``) stays quick.
"""

from __future__ import annotations

import importlib
import warnings
from typing import TYPE_CHECKING

__version__ = "0.3.0"

__all__ = [
    "ClassifierOptions",
    "SegmentOptions",
    "VidclsError",
    "VideoClassifier",
    "available_models",
    "classify_video",
    "evaluate",
    "iter_live",
    "iter_video",
    "load_classifier",
    "train",
    "watch",
]

_HOME = {  # name -> module that defines it
    "ClassifierOptions": ".options",
    "SegmentOptions": ".options",
    "VidclsError": ".errors",
    "VideoClassifier": ".classifier",
    "available_models": ".zoo",
    "classify_video": ".pipeline",
    "evaluate": ".training",
    "iter_live": ".live.watch",
    "iter_video": ".pipeline",
    "load_classifier": ".pipeline",
    "train": ".training",
    "watch": ".live.watch",
}
_MOVED = {  # names of 0.2 kept for one release, with where they are now
    "Pipeline": (".pipeline", "Pipeline", "vidcls.pipeline.Pipeline"),
    "Watch": (".live.watch", "Watch", "vidcls.live.Watch"),
    "classify_live": (".live.watch", "iter_live", "vidcls.iter_live"),
    "Category": (".results", "Category", "vidcls.results.Category"),
    "FrameResult": (".results", "FrameResult", "vidcls.results.FrameResult"),
    "Segment": (".results", "Segment", "vidcls.results.Segment"),
    "SegmentEvent": (".results", "SegmentEvent", "vidcls.results.SegmentEvent"),
    "VideoInfo": (".results", "VideoInfo", "vidcls.results.VideoInfo"),
    "VideoResult": (".results", "VideoResult", "vidcls.results.VideoResult"),
}

if TYPE_CHECKING:
    from .classifier import VideoClassifier
    from .errors import VidclsError
    from .live.watch import iter_live, watch
    from .options import ClassifierOptions, SegmentOptions
    from .pipeline import classify_video, iter_video, load_classifier
    from .training import evaluate, train
    from .zoo import available_models


def __getattr__(name: str):
    if name in _HOME:
        value = getattr(importlib.import_module(_HOME[name], __name__), name)
    elif name in _MOVED:
        module, attr, now = _MOVED[name]
        warnings.warn(f"vidcls.{name} is now {now}", DeprecationWarning, stacklevel=2)
        value = getattr(importlib.import_module(module, __name__), attr)
    else:
        raise AttributeError(f"module 'vidcls' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*__all__, "__version__"])
