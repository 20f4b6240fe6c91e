"""Fine-tuning the last backbone blocks and the head of an int8 stream model, in JAX (the
``tune`` extra: ``pip install 'vidcls[tune]'``). Not a ``vidcls train`` method: it takes many
minutes and did not help reliably; ``python -m vidcls.training.tune`` runs it and measures it.

- :mod:`.replica`: a differentiable JAX replica of a stream .tflite, built from the file
- :mod:`.blocks`: where to cut the graph for the last K blocks, and LiteRT's activations there
- :mod:`.tuner`: the trainable part as jitted functions, and Adam through the streamed frames
- :mod:`.finetune`: :func:`fine_tune`, the whole run; :func:`check_written`
- :mod:`.requant`: the tuned weights and activation grids written back in int8
- :mod:`.parity`: the replica against LiteRT, frame by frame
- ``__main__``: the command (``python -m vidcls.training.tune DATA_DIR`` and ``... parity``)

Nothing outside this package imports it, so ``import vidcls.training`` never imports JAX.
"""

try:
    import jax  # noqa: F401
except ImportError:
    raise ImportError(
        "vidcls.training.tune fine-tunes in JAX, which is not installed: pip install 'vidcls[tune]'"
    ) from None

from .finetune import Figures, check_written, fine_tune
from .replica import Graph, StreamReplica
from .tuner import Settings

__all__ = ["Figures", "Graph", "Settings", "StreamReplica", "check_written", "fine_tune"]
