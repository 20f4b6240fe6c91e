"""Timeline plot: the leading classes' probabilities over time, with segments shaded."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import VidclsError
from .results import VideoResult
from .writers import atomic_path, write_error


def plot_timeline(result: VideoResult, out: str | os.PathLike, classes: int = 5) -> Path:
    """Save a PNG of the ``classes`` classes that peak highest (needs ``keep_probabilities``)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise VidclsError("plots need matplotlib: pip install 'vidcls[plot]'") from None
    probs = result.probabilities
    if probs is None:
        if result.frames:
            raise ValueError("classify with keep_probabilities=True to plot a timeline")
        probs = np.zeros((0, len(result.labels)), np.float32)
    out = Path(out)
    times = result.times
    leading = np.argsort(-probs.max(axis=0))[:classes] if len(probs) else []
    colors = plt.get_cmap("tab10").colors
    color_of = {int(c): colors[i % len(colors)] for i, c in enumerate(leading)}
    fig, ax = plt.subplots(figsize=(10, 4), dpi=120, layout="constrained")
    for i, seg in enumerate(result.segments or []):
        color = color_of.get(seg.index, (0.45, 0.45, 0.45))
        ax.axvspan(seg.start, seg.end, color=color, alpha=0.15, lw=0)
        y = 1.015 + 0.05 * (i % 2)  # alternate heights so neighbours' labels do not collide
        mid = (seg.start + seg.end) / 2
        ax.text(mid, y, seg.label, ha="center", va="bottom", fontsize=8, color=color, clip_on=False)
    for c in leading:
        ax.plot(times, probs[:, c], color=color_of[int(c)], lw=1.6, label=result.labels[c])
    ax.set_xlim(0, max(times[-1], 1e-3) if len(times) else 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("probability")
    mode = f"window {result.window:g} s" if result.window else "cumulative"
    fps = "native" if result.fps is None else f"{result.fps:g} fps"
    ax.set_title(f"{Path(result.source).name}: {result.model}, {fps}, {mode}", fontsize=10, pad=22)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    ax.grid(alpha=0.3)
    return save_figure(fig, out)


def save_figure(fig, out: str | os.PathLike) -> Path:
    """Write a matplotlib figure as PNG in one step (a reader never sees half a file), close it."""
    import matplotlib.pyplot as plt

    out = Path(out)
    try:
        with atomic_path(out) as tmp:
            fig.savefig(tmp, format="png")
    except OSError as e:
        raise write_error(e, out) from None
    finally:
        plt.close(fig)
    return out
