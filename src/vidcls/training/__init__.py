"""Customization: train new action classes on a frozen stream model, and measure accuracy.

"Head" here is the model's classification head: the two 1x1 convs after the pooled features
(what ``--method head`` trains); the classifier is its last conv (``--method classifier``).

- :mod:`.dataset`: folders of labelled clips and their train/validation split
- :mod:`.augment`: augmented views of a clip
- :mod:`.features`: the head's features after a clip, on the stream engine, cached
- :mod:`.pool`: clips' features several clips at once (threads), and a run over a clip list
- :mod:`.fit`: the new classifier (softmax regression, L2 by cross-validation)
- :mod:`.head`: the head, both convs trained in numpy (``--method head``)
- :mod:`.methods`: what each ``--method`` fits, chosen by cross-validation
- :mod:`.graph`: the TFLite graph: finding the head, replacing the classifier or the head
- :mod:`.export`: the trained head written into a copy of the model
- :mod:`.trainer`: :func:`train`, the whole run; :mod:`.options`: :class:`TrainOptions`
- :mod:`.evaluation`: :func:`evaluate`, accuracy on labelled clips, as ``vidcls classify`` runs
- :mod:`.report`: the training report; :mod:`.progress`: progress through a run's phases
- :mod:`.benchmark`: ``vidcls bench --train``
- :mod:`.tune` (the ``tune`` extra, JAX; never imported by the above): fine-tuning the last
  backbone blocks and the head through the streamed frames, ``python -m vidcls.training.tune``
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
