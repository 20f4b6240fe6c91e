"""The int8 guard: the exported file run on real clips, against the float head in numpy.

A fine-tune can lose much of its accuracy in int8 (public MoViNet fine-tunes report F1 0.92 in
float and 0.31 in int8). After export, the written .tflite classifies the check clips as
``vidcls classify`` does (the validation clips, or without them up to :data:`CHECK_CLIPS`
training clips spread over the set), and its predictions are compared with the float head's on
the same clips' features, decoded the same way: how often the two agree on the top class, and
how far the int8 accuracy falls below the float one. A drop past the thresholds is a warning
saying what to try.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..pipeline import load_classifier
from .dataset import Clip, Dataset
from .evaluation import Evaluation, classify_clip
from .features import Features
from .methods import Fitted
from .progress import Progress, count

CHECK_CLIPS = 32  # training clips checked when there are no validation clips
MIN_AGREEMENT = 0.9  # top-1 agreement of int8 and float below this: a warning
MAX_DROP = 0.05  # accuracy lost to int8 above this: a warning


@dataclass
class Int8Check:
    """The exported model against the float head on ``clips`` clips of ``part``."""

    part: str  # "validation" or "training"
    clips: int
    agreement: float  # share of clips where int8 and float pick the same class
    float_accuracy: float
    int8_accuracy: float
    max_difference: float  # largest difference of any class probability

    @property
    def drop(self) -> float:
        return self.float_accuracy - self.int8_accuracy

    def warning(self) -> str | None:
        """What went wrong and what to try, if int8 lost too much; else None."""
        if self.agreement >= MIN_AGREEMENT and self.drop <= MAX_DROP:
            return None
        return (
            f"the int8 model agrees with the float head on {self.agreement:.0%} of "
            f"{self.clips} {self.part} clips and its accuracy is {self.drop:+.1%} lower "
            f"({self.int8_accuracy:.1%} vs {self.float_accuracy:.1%}): try a larger --l2 "
            "(smaller logits quantize better), --method classifier (fewer tensors re-quantized), "
            "or more clips of the confused classes"
        )

    def to_dict(self) -> dict:
        return {**asdict(self), "drop": self.drop, "warning": self.warning()}


def check_clips(dataset: Dataset) -> tuple[list[Clip], str]:
    """The clips to check the export on, and which part they are: the validation clips, else
    at most :data:`CHECK_CLIPS` training clips spread evenly over the set."""
    if dataset.val:
        return dataset.val, "validation"
    step = max(1, -(-len(dataset.train) // CHECK_CLIPS))
    return dataset.train[::step], "training"


def verify(
    model_path: Path,
    clips: list[Clip],
    part: str,
    classes: list[str],
    fitted: Fitted,
    features: Features | None,
    fps: float | None,
    threads: int = 1,
    phases: Progress | None = None,
) -> tuple[Evaluation, Int8Check | None]:
    """Run the written model on ``clips`` (whose float features are ``features``) as ``vidcls
    classify`` does, ``threads`` clips at once, each on one LiteRT thread; its evaluation, and
    the comparison with the float head (None without a readable clip). One phase, advancing
    per clip."""
    phases = phases or Progress(False)
    n = 0 if features is None else len(features.labels)
    first = load_classifier(model_path, top_k=0, threads=1)  # checked once, here
    evaluation = Evaluation(str(model_path), classes, labels=len(first.labels))
    local = threading.local()

    def classify(number: int):
        if not hasattr(local, "clf"):  # each thread its own stream state
            local.clf = load_classifier(model_path, top_k=0, threads=1)
        return classify_clip(local.clf, clips[number], 0 if fps is None else fps)

    detail = f"the exported model on {count(n, f'{part} clip')}, against the float head"
    with (
        phases.phase("verifying", detail, "verified", n, "clip") as phase,
        ThreadPoolExecutor(max(1, threads)) as pool,
    ):
        if features is None:
            return evaluation, None
        expected = fitted.probabilities(features)
        got = np.zeros_like(expected)
        for row, (prediction, result) in enumerate(pool.map(classify, features.groups[:, 0])):
            for c in result.summary:
                got[row, c.index] = c.score
            evaluation.clips.append(prediction)
            phase.advance()
        check = Int8Check(
            part=part,
            clips=n,
            agreement=float((got.argmax(1) == expected.argmax(1)).mean()),
            float_accuracy=float((expected.argmax(1) == features.labels).mean()),
            int8_accuracy=float((got.argmax(1) == features.labels).mean()),
            max_difference=float(np.abs(got - expected).max()),
        )
        phase.note = (
            f"int8 agrees with float on {check.agreement:.1%}, top-1 {check.int8_accuracy:.1%} "
            f"vs {check.float_accuracy:.1%}, largest probability difference "
            f"{check.max_difference:.4f}"
        )
    return evaluation, check
