"""Fine-tune the last K backbone blocks and the head of an int8 stream model, through the
streamed frames, in JAX; write the result back into the same int8 graph.

LiteRT runs the original model once per clip view and hands over, per frame, the activation
entering the last K blocks (:mod:`.blocks`). The replica of the rest (:mod:`.replica`) is
trained through each clip's frames from zero states (backpropagation through time) with a
class-balanced softmax cross-entropy on the logits after the last frame. The number of epochs
is chosen by contiguous cross-validation over the training clips (epoch 0: the fitted softmax
classifier alone). The weights are then written back per channel in int8 with refitted
activation grids (:mod:`.requant`) and the written file is checked against the replica.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import media
from . import graph as heads
from .augment import apply_view, random_views
from .blocks import BoundaryExtractor, Cut, cut
from .dataset import Dataset
from .fit import choose_l2, cv_splits, fit_softmax
from .progress import Phase
from .replica import Graph, Replica, require_jax, weights
from .requant import fit_grids, write_back

log = logging.getLogger("vidcls")


@dataclass
class Sequences:
    """Clip views as padded frame sequences of boundary activations."""

    x: dict[int, np.ndarray]  # tensor -> [views, frames, *shape]
    mask: np.ndarray  # [views, frames] True where a frame is real
    hidden: np.ndarray  # [views, hidden]: the base head's features after the last frame
    labels: np.ndarray
    groups: np.ndarray  # [views, 2]: clip number, view number (0: the clip itself)


def sequences(ext: BoundaryExtractor, clips, part: str, views: int, seed: int, fps, phase):
    """:class:`Sequences` of ``views`` views per clip (seeded as the feature extractor's)."""
    rows = []
    for number, clip in enumerate(clips):
        frames = media.read_frames(clip.path, fps)
        rng = np.random.default_rng([seed, number, len(part)])
        for v, view in enumerate(random_views(rng, views)):
            x, hidden = ext(apply_view(frames, view))
            rows.append((x, hidden, clip.index, (number, v)))
            phase.advance()
    length = max(len(next(iter(r[0].values()))) for r in rows)
    x = {}
    for t in rows[0][0]:
        shape = rows[0][0][t].shape[1:]
        x[t] = np.zeros((len(rows), length, *shape), np.float32)
        for i, r in enumerate(rows):
            x[t][i, : len(r[0][t])] = r[0][t]
    mask = np.array([[j < len(next(iter(r[0].values()))) for j in range(length)] for r in rows])
    return Sequences(
        x,
        mask,
        np.array([r[1] for r in rows]),
        np.array([r[2] for r in rows]),
        np.array([r[3] for r in rows]),
    )


class Tuner:
    """The trainable part of a cut graph as batched, jitted JAX functions."""

    def __init__(self, c: Cut) -> None:
        import jax
        import jax.numpy as jnp

        self.jax, self.jnp, self.cut = jax, jnp, c
        g = c.graph
        self.float = Replica(g, c.ops, quantize=False)
        self.fixed = weights(g)
        self.logits_t = g.outputs[g.logits]
        self.int8 = sorted({t for i in c.ops for t in g.ops[i].outputs if t in self.float.grid})
        self.batch_logits = jax.jit(jax.vmap(self._seq, in_axes=(None, 0, 0)))
        self.grad = jax.jit(jax.value_and_grad(self._loss))
        self.ranges = jax.jit(jax.vmap(self._seq_ranges, in_axes=(None, 0, 0)))

    def init_params(self) -> dict:
        return {t: self.jnp.asarray(self.cut.graph.constants[t]) for t in self.cut.params}

    def _scan(self, params, x, mask, collect: bool):
        jnp, g = self.jnp, self.cut.graph
        states = {}
        for n in self.cut.states:
            shape, dtype = g.state_shape(n)
            states[n] = jnp.zeros(shape, dtype)
        n_cls = g.shape(self.logits_t)[-1]
        lo = {t: jnp.inf for t in self.int8} if collect else {}
        hi = {t: -jnp.inf for t in self.int8} if collect else {}

        def body(carry, inp):
            states, last, lo, hi = carry
            xt, m = inp
            values = {g.inputs[n]: states[n] for n in self.cut.states}
            values.update(xt)
            env = self.float({**self.fixed, **params}, values)
            new = {n: jnp.where(m, env[g.outputs[n]], states[n]) for n in self.cut.states}
            last = jnp.where(m, env[self.logits_t].reshape(-1), last)
            if collect:
                lo = {t: jnp.where(m, jnp.minimum(lo[t], env[t].min()), lo[t]) for t in lo}
                hi = {t: jnp.where(m, jnp.maximum(hi[t], env[t].max()), hi[t]) for t in hi}
            return (new, last, lo, hi), None

        init = (states, jnp.zeros(n_cls), lo, hi)
        (_, last, lo, hi), _ = self.jax.lax.scan(body, init, (x, mask))
        return last, lo, hi

    def _seq(self, params, x, mask):
        return self._scan(params, x, mask, False)[0]

    def _seq_ranges(self, params, x, mask):
        return self._scan(params, x, mask, True)[1:]

    def _loss(self, params, p0, x, mask, y, w, decay):
        jnp = self.jnp
        z = self.jax.vmap(self._seq, in_axes=(None, 0, 0))(params, x, mask)
        logp = self.jax.nn.log_softmax(z)
        ce = -(w * jnp.take_along_axis(logp, y[:, None], axis=1)[:, 0]).sum() / w.sum()
        reg = sum(((params[t] - p0[t]) ** 2).sum() for t in params)
        return ce + decay * reg


@dataclass
class Settings:
    """Training settings: epochs at most, Adam step size, batch size, pull to the start."""

    epochs: int = 12
    lr: float = 3e-4
    batch: int = 32
    decay: float = 1e-4
    folds: int = 3


def train(
    tuner: Tuner,
    params: dict,
    s: Sequences,
    rows: np.ndarray,
    st: Settings,
    seed: int,
    epochs: int,
    on_epoch=None,
) -> dict:
    """Adam on ``rows`` of ``s`` for ``epochs`` epochs from ``params``; ``on_epoch(params,
    epoch)`` after each."""
    jnp, jax = tuner.jnp, tuner.jax
    idx = np.flatnonzero(rows)
    counts = np.bincount(s.labels[idx], minlength=s.labels.max() + 1).astype(np.float64)
    w_all = (len(idx) / (len(counts) * np.maximum(counts, 1)))[s.labels]
    p0 = dict(params)
    m = jax.tree_util.tree_map(jnp.zeros_like, params)
    v = jax.tree_util.tree_map(jnp.zeros_like, params)
    rng, step = np.random.default_rng(seed), 0
    for epoch in range(1, epochs + 1):
        for b in batches(s, rng.permutation(idx), st.batch):
            n = _padded(s, b)
            x = {t: jnp.asarray(a[b, :n]) for t, a in s.x.items()}
            _, g = tuner.grad(
                params,
                p0,
                x,
                jnp.asarray(s.mask[b, :n]),
                jnp.asarray(s.labels[b]),
                jnp.asarray(w_all[b], jnp.float32),
                st.decay,
            )
            step += 1
            m = jax.tree_util.tree_map(lambda a, b: 0.9 * a + 0.1 * b, m, g)
            v = jax.tree_util.tree_map(lambda a, b: 0.999 * a + 0.001 * b * b, v, g)
            c1, c2 = 1 - 0.9**step, 1 - 0.999**step
            params = jax.tree_util.tree_map(
                lambda p, a, b, c1=c1, c2=c2: p - st.lr * (a / c1) / (jnp.sqrt(b / c2) + 1e-8),
                params,
                m,
                v,
            )
        if on_epoch is not None:
            on_epoch(params, epoch)
    return params


def batches(s: Sequences, order: np.ndarray, size: int) -> list[np.ndarray]:
    """``order`` cut into batches of about ``size`` rows of similar length (less padding),
    the batches in random order when ``order`` is."""
    lengths = s.mask[order].sum(axis=1)
    by_length = order[np.argsort(lengths, kind="stable")]
    parts = np.array_split(by_length, max(1, len(order) // size))
    rank = np.argsort([order.tolist().index(p[0]) for p in parts])
    return [parts[i] for i in rank]


def _padded(s: Sequences, rows: np.ndarray, step: int = 4) -> int:
    """Frames to keep for ``rows``: their longest, rounded up to ``step`` (few compilations)."""
    n = int(s.mask[rows].sum(axis=1).max())
    return min(s.mask.shape[1], -(-n // step) * step)


def logits_of(tuner: Tuner, params: dict, s: Sequences, rows: np.ndarray) -> np.ndarray:
    """Logits after the last frame of each of ``rows``, in row order."""
    idx = np.flatnonzero(rows)
    out = np.zeros((len(idx), tuner.cut.graph.shape(tuner.logits_t)[-1]), np.float32)
    pos = {r: i for i, r in enumerate(idx)}
    for b in batches(s, idx, 64):
        n = _padded(s, b)
        x = {t: tuner.jnp.asarray(a[b, :n]) for t, a in s.x.items()}
        z = np.asarray(tuner.batch_logits(params, x, tuner.jnp.asarray(s.mask[b, :n])))
        out[[pos[r] for r in b]] = z
    return out


@dataclass
class Figures:
    """What a fine-tuning run measured."""

    k: int
    cv_by_epoch: list[float]  # mean contiguous-CV accuracy after 0..E epochs (0: head only)
    epochs: int  # the chosen number
    l2: float
    seconds: dict[str, float] = field(default_factory=dict)
    verify_max_diff: float = 0.0  # written file in LiteRT vs the int8 replica, max |logit|


def _classifier(g: Graph, s: Sequences, rows: np.ndarray, classes: int, l2: float, seed: int):
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
    import jax.numpy as jnp

    splits = cv_splits(s.labels, s.groups, classes, st.folds)
    accs = np.zeros((len(splits), st.epochs + 1))
    for f, (tr, te) in enumerate(splits):
        params = tuner.init_params()
        params.update(
            {
                t: jnp.asarray(v)
                for t, v in _classifier(tuner.cut.graph, s, tr, classes, l2, seed).items()
            }
        )

        def score(p, epoch, f=f, te=te):
            accs[f, epoch] = (logits_of(tuner, p, s, te).argmax(1) == s.labels[te]).mean()
            phase.advance()

        score(params, 0)
        train(tuner, params, s, tr, st, seed, st.epochs, score)
    return accs.mean(axis=0).tolist()


def steps(dataset: Dataset, views: int, settings: Settings | None = None) -> int:
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
    require_jax()
    st, phase = settings or Settings(), phase or Phase()
    classes = len(dataset.classes)
    data, t0 = Path(base_path).read_bytes(), time.monotonic()
    base_cut = cut(Graph(data, str(base_path)), k)
    ext = BoundaryExtractor(data, base_cut)
    s = sequences(ext, dataset.train, "train", views, seed, fps, phase)
    secs = {"extract": time.monotonic() - t0}
    l2, _ = choose_l2(s.hidden, s.labels, s.groups, classes, 400, seed)
    rows = np.ones(len(s.labels), bool)
    g0 = Graph(data, str(base_path))
    head = _classifier(g0, s, rows, classes, l2, seed)
    w, b = head[g0.head.weight].reshape(classes, -1), head[g0.head.bias]
    z = s.hidden @ w.T + b
    data2 = heads.replace_classifier(data, w, b, output_range=(float(z.min()), float(z.max())))
    c = cut(Graph(data2, str(base_path)), k)
    tuner = Tuner(c)
    t1 = time.monotonic()
    cv = cross_validate(tuner, s, classes, l2, st, seed, phase)
    epochs = int(np.argmax(cv))
    secs["cross-validate"] = time.monotonic() - t1
    t2 = time.monotonic()
    params = tuner.init_params()
    params.update({t: tuner.jnp.asarray(v) for t, v in head.items()})
    params = train(tuner, params, s, rows, st, seed, epochs, lambda p, e: phase.advance())
    secs["train"] = time.monotonic() - t2
    out = export(tuner, params, s)
    figs = Figures(k, cv, epochs, l2, secs)
    figs.verify_max_diff = verify(out, dataset.train[:2], fps, str(base_path))
    secs["total"] = time.monotonic() - t0
    log.info("blocks %d: cv by epoch %s, chose %d", k, np.round(cv, 3).tolist(), epochs)
    return out, figs


VERIFY_TOLERANCE = 2.5  # max |logit| difference, as measured between LiteRT and the replica


def verify(data: bytes, clips, fps, path: str) -> float:
    """Max |logit difference| between the written file in LiteRT and its int8 replica on
    ``clips``, frame by frame; VidclsError when over :data:`VERIFY_TOLERANCE`."""
    import tempfile

    from ..errors import VidclsError
    from ..model import StreamModel
    from ..preprocess import Preprocessor
    from .replica import StreamReplica

    with tempfile.TemporaryDirectory(prefix="vidcls-", ignore_cleanup_errors=True) as tmp:
        written = Path(tmp) / "tuned.tflite"
        written.write_bytes(data)
        model = StreamModel(written, 1)
    replica = StreamReplica(Graph(data, path))
    pre, worst = Preprocessor(model.layout.height, model.layout.width), 0.0
    for clip in clips:
        images = [pre.from_array(f).copy() for f in media.read_frames(clip.path, fps)]
        stream = model.new_stream()
        lite = np.array([stream.step(im).copy() for im in images])
        worst = max(worst, float(np.abs(replica.run(images) - lite).max()))
    if worst > VERIFY_TOLERANCE:
        raise VidclsError(f"the written model differs from its replica by {worst:.2f}", path)
    return worst


def export(tuner: Tuner, params: dict, s: Sequences) -> bytes:
    """The cut graph's file with ``params`` and activation grids refitted on ``s``."""
    lo, hi = {}, {}
    rows = np.arange(len(s.labels))
    for b in np.array_split(rows, max(1, len(rows) // 64)):
        x = {t: tuner.jnp.asarray(a[b]) for t, a in s.x.items()}
        blo, bhi = tuner.ranges(params, x, tuner.jnp.asarray(s.mask[b]))
        for t in blo:
            lo[t] = min(lo.get(t, np.inf), float(np.min(blo[t])))
            hi[t] = max(hi.get(t, -np.inf), float(np.max(bhi[t])))
    ranges = {t: (lo[t], hi[t]) for t in lo}
    grids = fit_grids(tuner.cut.graph, tuner.cut.ops, ranges)
    return write_back(tuner.cut.graph, {t: np.asarray(v) for t, v in params.items()}, grids)
