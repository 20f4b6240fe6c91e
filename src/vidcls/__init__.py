"""vidcls: streaming video classification (human action recognition) on ordinary CPUs.

import vidcls
result = vidcls.classify_video("clip.mp4")           # a whole file
for frame in vidcls.iter_video("clip.mp4"): ...      # frame by frame, as computed
for frame in vidcls.classify_live("0"): ...          # a camera or stream; break to stop
vidcls.watch(["door=rtsp://...", "yard=rtsp://..."], print)  # many sources, one model
"""

from .classifier import ClassifierOptions, VideoClassifier
from .errors import VidclsError
from .pipeline import (
    Pipeline,
    classify_live,
    classify_video,
    iter_video,
    load_classifier,
)
from .results import Category, FrameResult, Segment, SegmentEvent, VideoInfo, VideoResult
from .segments import SegmentOptions
from .watch import Watch, watch
from .zoo import available_models

__version__ = "0.2.0"

__all__ = [
    "Category",
    "ClassifierOptions",
    "FrameResult",
    "Pipeline",
    "Segment",
    "SegmentEvent",
    "SegmentOptions",
    "VidclsError",
    "VideoClassifier",
    "VideoInfo",
    "VideoResult",
    "Watch",
    "available_models",
    "classify_live",
    "classify_video",
    "evaluate",
    "iter_video",
    "load_classifier",
    "train",
    "watch",
]


def train(data_dir, out, **options):
    """Train new action classes from a folder of clips into a streaming .tflite at ``out``;
    ``options`` are :class:`vidcls.training.TrainOptions` fields. Returns a TrainResult."""
    from .training import train as _train

    return _train(data_dir, out, **options)


def evaluate(data_dir, model="a0", **options):
    """Top-1, top-5, per-class accuracy and confusion of ``model`` on a folder of labelled
    clips (see :func:`vidcls.training.evaluate`). Returns an Evaluation."""
    from .training import evaluate as _evaluate

    return _evaluate(data_dir, model, **options)
