"""vidcls: streaming video classification (human action recognition) on ordinary CPUs."""

from .classifier import Category, ClassifierOptions, VideoClassifier, softmax
from .classify import FrameResult, VideoResult, classify_video
from .errors import VidclsError
from .model import ModelLayout, Stream, StreamModel
from .zoo import MODELS

__version__ = "0.1.0"

__all__ = [
    "MODELS",
    "Category",
    "ClassifierOptions",
    "FrameResult",
    "ModelLayout",
    "Stream",
    "StreamModel",
    "VidclsError",
    "VideoClassifier",
    "VideoResult",
    "classify_video",
    "softmax",
]
