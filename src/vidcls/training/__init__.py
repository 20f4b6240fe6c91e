"""Customization: train new action classes on a frozen stream model, and measure accuracy.

- :mod:`.dataset`: folders of labelled clips and their train/validation split
- :mod:`.augment`: augmented views of a clip
- :mod:`.features`: the head's features after a clip, on the stream engine, cached
- :mod:`.fit`: the new classifier (softmax regression, L2 by cross-validation)
- :mod:`.head`: finding and replacing the classifier in the TFLite graph
- :mod:`.export`: the trained classifier written into a copy of the model
- :mod:`.trainer`: :func:`train`, the whole run; :mod:`.options`: :class:`TrainOptions`
- :mod:`.evaluation`: :func:`evaluate`, accuracy on labelled clips, as ``vidcls classify`` runs
- :mod:`.report`: the training report
"""

from .evaluation import Evaluation, Prediction, evaluate, plot_confusion
from .options import TrainOptions
from .report import write_report
from .trainer import TrainResult, train

__all__ = [
    "Evaluation",
    "Prediction",
    "TrainOptions",
    "TrainResult",
    "evaluate",
    "plot_confusion",
    "train",
    "write_report",
]
