"""Fine-tune the last K backbone blocks and the head of an int8 stream model, through the
streamed frames, in JAX; write the result back into the same int8 graph.

LiteRT runs the original model once per clip view and hands over, per frame, the activation
entering the last K blocks (:mod:`.blocks`). The replica of the rest (:mod:`.replica`) is
trained through each clip's frames from zero states (backpropagation through time,
:mod:`.tuner`) with a class-balanced softmax cross-entropy on the logits after the last frame.
The number of epochs is chosen by contiguous cross-validation over the training clips (epoch 0:
the fitted softmax classifier alone). The weights are then written back per channel in int8
with refitted activation grids (:mod:`.requant`) and the written file is checked against its
replica.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import jax
import numpy as np

from ... import media
from ...errors import VidclsError
from ...model import StreamModel
from ...preprocess import Preprocessor
from ..dataset import Clip, Dataset
from ..fit import choose_l2, cv_splits, fit_softmax
from ..graph import replace_classifier
from ..progress import Phase
from .blocks import BoundaryExtractor, cut
from .replica import Graph, stream_replica
from .requant import fit_grids, write_back
from .tuner import Sequences, Settings, Tuner, logits_of, run_epochs, sequences

log = logging.getLogger("vidcls")

CHECK_TOLERANCE = 2.5  # max |logit| difference, as measured between LiteRT and the replica


@dataclass
class Figures:
    """What a fine-tuning run measured."""

    k: int
    cv_by_epoch: list[float]  # mean contiguous-CV accuracy after 0..E epochs (0: classifier)
    epochs: int  # the chosen number
    l2: float
    seconds: dict[str, float] = field(default_factory=dict)
    written_max_diff: float = 0.0  # written file in LiteRT vs its int8 replica, max |logit|


def classifier_params(
    g: Graph, s: Sequences, rows: np.ndarray, classes: int, l2: float, seed: int
) -> dict[int, np.ndarray]:
    """The classifier conv's params fitted as a softmax on the base head's hidden features."""
    h = fit_softmax(s.hidden[rows], s.labels[rows], classes, l2, seed=seed)
    w_t, b_t = g.head.weight, g.head.bias
    return {
        w_t: np.asarray(h.weight, np.float32).reshape(classes, *g.shape(w_t)[1:]),
        b_t: np.asarray(h.bias, np.float32).reshape(classes),
    }


def cross_validate(
    tuner: Tuner, s: Sequences, classes: int, l2: float, st: Settings, seed: int, phase: Phase
) -> list[float]:
    """Mean accuracy over contiguous folds after each epoch (index 0: before training)."""
    splits = cv_splits(s.labels, s.groups, classes, st.folds)
    accs = np.zeros((len(splits), st.epochs + 1))
    for f, (tr, te) in enumerate(splits):
        params = tuner.init_params()
        fitted = classifier_params(tuner.cut.graph, s, tr, classes, l2, seed)
        params.update({t: jax.device_put(v) for t, v in fitted.items()})

        def score(p, epoch, f=f, te=te):
            accs[f, epoch] = (logits_of(tuner, p, s, te).argmax(1) == s.labels[te]).mean()
            phase.advance()

        score(params, 0)
        run_epochs(tuner, params, s, tr, st, seed, st.epochs, score)
    return accs.mean(axis=0).tolist()


def phase_steps(dataset: Dataset, views: int, settings: Settings | None = None) -> int:
    """How many times :func:`fine_tune` advances its phase at most (a progress bar's total)."""
    st = settings or Settings()
    return len(dataset.train) * views + st.folds * (st.epochs + 1) + st.epochs


def fine_tune(
    base_path: Path,
    dataset: Dataset,
    k: int,
    views: int = 4,
    seed: int = 0,
    fps: float | None = None,
    phase: Phase | None = None,
    settings: Settings | None = None,
) -> tuple[bytes, Figures]:
    """A new int8 .tflite (bytes, no labels packed) for ``dataset``'s classes: ``base_path``'s
    graph with its last ``k`` blocks and head fine-tuned on the training clips (``views``
    views each, fed at ``fps``, None: every frame), and the :class:`Figures` measured.

    ``phase.advance()`` is called per clip view extracted and per epoch trained (cross-
    validation folds included). Same ops, inputs, states and signature as the base model.
    """
    st, phase = settings or Settings(), phase or Phase()
    classes = len(dataset.classes)
    data, t0 = Path(base_path).read_bytes(), time.monotonic()
    ext = BoundaryExtractor(data, cut(Graph(data, str(base_path)), k))
    s = sequences(ext, dataset.train, "train", views, seed, fps, phase)
    secs = {"extract": time.monotonic() - t0}
    l2, _ = choose_l2(s.hidden, s.labels, s.groups, classes, 400, seed)
    rows = np.ones(len(s.labels), bool)
    g0 = Graph(data, str(base_path))
    head = classifier_params(g0, s, rows, classes, l2, seed)
    w, b = head[g0.head.weight].reshape(classes, -1), head[g0.head.bias]
    z = s.hidden @ w.T + b
    data2 = replace_classifier(data, w, b, output_range=(float(z.min()), float(z.max())))
    tuner = Tuner(cut(Graph(data2, str(base_path)), k))
    t1 = time.monotonic()
    cv = cross_validate(tuner, s, classes, l2, st, seed, phase)
    epochs = int(np.argmax(cv))
    secs["cross-validate"] = time.monotonic() - t1
    t2 = time.monotonic()
    params = tuner.init_params()
    params.update({t: jax.device_put(v) for t, v in head.items()})
    params = run_epochs(tuner, params, s, rows, st, seed, epochs, lambda p, e: phase.advance())
    secs["train"] = time.monotonic() - t2
    out = write_tuned(tuner, params, s)
    figs = Figures(k, cv, epochs, l2, secs)
    figs.written_max_diff = check_written(out, dataset.train[:2], fps, str(base_path))
    secs["total"] = time.monotonic() - t0
    log.info("blocks %d: cv by epoch %s, chose %d", k, np.round(cv, 3).tolist(), epochs)
    return out, figs


def run_written(
    data: bytes,
    clips: list[Clip],
    fps: float | None,
    path: str,
    replica_clips: int | None = None,
    phase: Phase | None = None,
) -> tuple[np.ndarray, float]:
    """The written file run in LiteRT on each of ``clips`` frame by frame from a zero state:
    its logits after each clip's last frame, and their largest difference (over every frame)
    from its int8 replica on the first ``replica_clips`` clips (None: all). ``phase``
    advances per clip."""
    with tempfile.TemporaryDirectory(prefix="vidcls-", ignore_cleanup_errors=True) as tmp:
        written = Path(tmp) / "tuned.tflite"
        written.write_bytes(data)
        model = StreamModel(written, 1)
    replica = stream_replica(data, path)  # compiled once for the checks of one file
    pre, worst, last = Preprocessor(model.layout.height, model.layout.width), 0.0, []
    stream = model.new_stream()
    for i, clip in enumerate(clips):
        images = [pre.from_array(f).copy() for f in media.read_frames(clip.path, fps)]
        stream.reset()
        lite = np.array([stream.step(im).copy() for im in images])
        last.append(lite[-1])
        if replica_clips is None or i < replica_clips:
            worst = max(worst, float(np.abs(replica.run(images) - lite).max()))
        if phase is not None:
            phase.advance()
    return np.array(last), worst


def check_written(data: bytes, clips: list[Clip], fps: float | None, path: str) -> float:
    """Max |logit difference| between the written file in LiteRT and its int8 replica on
    ``clips``, frame by frame; VidclsError when over :data:`CHECK_TOLERANCE`."""
    worst = run_written(data, clips, fps, path)[1]
    if worst > CHECK_TOLERANCE:
        raise VidclsError(f"the written model differs from its replica by {worst:.2f}", path)
    return worst


def write_tuned(tuner: Tuner, params: dict, s: Sequences) -> bytes:
    """The cut graph's file with ``params`` and activation grids refitted on ``s``."""
    lo, hi = {}, {}
    rows = np.arange(len(s.labels))
    for b in np.array_split(rows, max(1, len(rows) // 64)):
        blo, bhi = tuner.ranges(params, {t: a[b] for t, a in s.x.items()}, s.mask[b])
        for t in blo:
            lo[t] = min(lo.get(t, np.inf), float(np.min(blo[t])))
            hi[t] = max(hi.get(t, -np.inf), float(np.max(bhi[t])))
    ranges = {t: (lo[t], hi[t]) for t in lo}
    grids = fit_grids(tuner.cut.graph, tuner.cut.ops, ranges)
    return write_back(tuner.cut.graph, {t: np.asarray(v) for t, v in params.items()}, grids)
