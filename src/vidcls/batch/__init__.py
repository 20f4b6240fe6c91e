"""Batch-classify many videos on all cores or a Ray cluster, resumably, each input exactly once.

The driver lists the inputs (:mod:`.inputs`), skips those already done, and hands the rest
out in chunks to workers that each load the model once (:mod:`.workers`). Every finished chunk
is committed as a part file, written atomically, per-frame rows first and the per-video rows
(the commit marker) last (:mod:`.store`). After a crash, Ctrl-C or SIGKILL, running the same
command again skips the inputs in committed parts. When all are done, the parts are merged
into the output, keeping each input once (:mod:`.job`). Local workers end with the driver
however it ends, ``kill -9`` included (:mod:`.lifeline`); a write that fails (disk full) ends
the job with one error and keeps the committed parts.
"""

from .inputs import list_inputs
from .job import run_batch
from .options import BatchOptions, BatchSummary
from .store import PartStore, frames_path

__all__ = ["BatchOptions", "BatchSummary", "PartStore", "frames_path", "list_inputs", "run_batch"]
