"""The trainable part of a cut graph in JAX, and Adam on it through the streamed frames.

Clip views are :class:`Sequences` of the activations entering the cut, one per frame, taken by
LiteRT (:mod:`.blocks`). A :class:`Tuner` runs the float replica of the trainable part over
them from zero states (backpropagation through time) and scores the logits after the last
frame with a class-balanced softmax cross-entropy, pulled towards the starting weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ... import media
from ..augment import apply_view, random_views
from ..progress import Phase
from .blocks import BoundaryExtractor, Cut
from .replica import Replica, weights


@dataclass
class Sequences:
    """Clip views as padded frame sequences of boundary activations."""

    x: dict[int, np.ndarray]  # tensor -> [views, frames, *shape]
    mask: np.ndarray  # [views, frames] True where a frame is real
    hidden: np.ndarray  # [views, hidden]: the base head's features after the last frame
    labels: np.ndarray
    groups: np.ndarray  # [views, 2]: clip number, view number (0: the clip itself)


def sequences(
    ext: BoundaryExtractor, clips, part: str, views: int, seed: int, fps, phase: Phase
) -> Sequences:
    """:class:`Sequences` of ``views`` views per clip (seeded as the feature extractor's);
    ``phase`` advances per view."""
    rows = []
    for number, clip in enumerate(clips):
        frames = media.read_frames(clip.path, fps)
        rng = np.random.default_rng([seed, number, len(part)])
        for v, view in enumerate(random_views(rng, views)):
            x, hidden = ext(apply_view(frames, view))
            rows.append((x, hidden, clip.index, (number, v)))
            phase.advance()
    lengths = [len(next(iter(r[0].values()))) for r in rows]
    longest = max(lengths)
    x = {}
    for t in rows[0][0]:
        shape = rows[0][0][t].shape[1:]
        x[t] = np.zeros((len(rows), longest, *shape), np.float32)
        for i, r in enumerate(rows):
            x[t][i, : len(r[0][t])] = r[0][t]
    mask = np.arange(longest)[None, :] < np.array(lengths)[:, None]
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
        self.cut = c
        g = c.graph
        self.float = Replica(g, c.ops, quantize=False)
        self.fixed = weights(g)
        self.logits_t = g.outputs[g.logits]
        self.int8 = sorted({t for i in c.ops for t in g.ops[i].outputs if t in self.float.grid})
        self.batch_logits = jax.jit(jax.vmap(self._seq, in_axes=(None, 0, 0)))
        self.grad = jax.jit(jax.value_and_grad(self._loss))
        self.ranges = jax.jit(jax.vmap(self._seq_ranges, in_axes=(None, 0, 0)))

    def init_params(self) -> dict:
        """The trainable weights as the file has them."""
        return {t: jax.device_put(self.cut.graph.constants[t]) for t in self.cut.params}

    def _scan(self, params, x, mask, collect: bool):
        g = self.cut.graph
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
        (_, last, lo, hi), _ = jax.lax.scan(body, init, (x, mask))
        return last, lo, hi

    def _seq(self, params, x, mask):
        return self._scan(params, x, mask, False)[0]

    def _seq_ranges(self, params, x, mask):
        return self._scan(params, x, mask, True)[1:]

    def _loss(self, params, p0, x, mask, y, w, decay):
        z = jax.vmap(self._seq, in_axes=(None, 0, 0))(params, x, mask)
        logp = jax.nn.log_softmax(z)
        ce = -(w * jnp.take_along_axis(logp, y[:, None], axis=1)[:, 0]).sum() / w.sum()
        reg = sum(((params[t] - p0[t]) ** 2).sum() for t in params)
        return ce + decay * reg


@dataclass
class Settings:
    """Fine-tuning settings: epochs at most, Adam step size, batch size, pull to the start,
    cross-validation folds."""

    epochs: int = 12
    lr: float = 3e-4
    batch: int = 32
    decay: float = 1e-4
    folds: int = 3


def run_epochs(
    tuner: Tuner,
    params: dict,
    s: Sequences,
    rows: np.ndarray,
    st: Settings,
    seed: int,
    epochs: int,
    on_epoch: Callable[[dict, int], None] | None = None,
) -> dict:
    """Adam on ``rows`` (a mask) of ``s`` for ``epochs`` epochs from ``params``: the new
    params; ``on_epoch(params, epoch)`` after each epoch."""
    idx = np.flatnonzero(rows)
    counts = np.bincount(s.labels[idx], minlength=s.labels.max() + 1).astype(np.float64)
    w_all = (len(idx) / (len(counts) * np.maximum(counts, 1)))[s.labels]
    p0 = dict(params)
    m = {t: jax.device_put(np.zeros(p.shape, p.dtype)) for t, p in params.items()}
    v = dict(m)
    rng, step = np.random.default_rng(seed), 0
    for epoch in range(1, epochs + 1):
        for b in batches(s, rng.permutation(idx), st.batch):
            n = padded(s, b)
            _, g = tuner.grad(
                params,
                p0,
                {t: a[b, :n] for t, a in s.x.items()},
                s.mask[b, :n],
                s.labels[b],
                w_all[b].astype(np.float32),
                st.decay,
            )
            step += 1
            c1, c2 = np.float32(1 - 0.9**step), np.float32(1 - 0.999**step)
            params, m, v = _adam(params, g, m, v, np.float32(st.lr), c1, c2)
        if on_epoch is not None:
            on_epoch(params, epoch)
    return params


@jax.jit
def _adam(params: dict, g: dict, m: dict, v: dict, lr, c1, c2) -> tuple[dict, dict, dict]:
    """One Adam step on every tensor at once (one compiled program, not a few per tensor):
    the new params and moments; ``c1``, ``c2``: the bias corrections of this step."""
    m = jax.tree_util.tree_map(lambda a, b: 0.9 * a + 0.1 * b, m, g)
    v = jax.tree_util.tree_map(lambda a, b: 0.999 * a + 0.001 * b * b, v, g)
    params = jax.tree_util.tree_map(
        lambda p, a, b: p - lr * (a / c1) / (jnp.sqrt(b / c2) + 1e-8), params, m, v
    )
    return params, m, v


def batches(s: Sequences, order: np.ndarray, size: int) -> list[np.ndarray]:
    """``order`` cut into batches of about ``size`` rows of similar length (less padding),
    the batches in random order when ``order`` is."""
    lengths = s.mask[order].sum(axis=1)
    by_length = order[np.argsort(lengths, kind="stable")]
    parts = np.array_split(by_length, max(1, len(order) // size))
    rank = np.argsort([order.tolist().index(p[0]) for p in parts])
    return [parts[i] for i in rank]


def padded(s: Sequences, rows: np.ndarray, step: int = 4) -> int:
    """Frames to keep for ``rows``: their longest, rounded up to ``step`` (few compilations)."""
    n = int(s.mask[rows].sum(axis=1).max())
    return min(s.mask.shape[1], -(-n // step) * step)


def logits_of(tuner: Tuner, params: dict, s: Sequences, rows: np.ndarray) -> np.ndarray:
    """Logits after the last frame of each of ``rows`` (a mask), in row order."""
    idx = np.flatnonzero(rows)
    out = np.zeros((len(idx), tuner.cut.graph.shape(tuner.logits_t)[-1]), np.float32)
    pos = {r: i for i, r in enumerate(idx)}
    for b in batches(s, idx, 64):
        n = padded(s, b)
        x = {t: a[b, :n] for t, a in s.x.items()}
        z = np.asarray(tuner.batch_logits(params, x, s.mask[b, :n]))
        out[[pos[r] for r in b]] = z
    return out
