"""How many groups (processes) a live engine's cameras are shared among.

A group is an engine of its own (model, scheduler, decoding) in a process, so inference runs
on as many cores as there are groups (see :mod:`.groups`). How many views (a camera's whole
frame, each zone) one group takes is a measured figure: ``vidcls bench --streams`` stores the
largest N that held in ``capacity.json`` in the user's cache folder, per camera rate; the
smallest of them is used (the rate of a camera is known only once it plays). A config's
``cameras_per_group`` sets it instead. With neither, :data:`DEFAULT_PER_GROUP`.

``groups``: an int is that many groups (at most one per camera); ``auto`` (and unset) is
``ceil(views / per_group)``, at most one per core.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

# Not measured here, and conservative: half of the 56 cameras of 30 fps one process held on
# the 2-core reference machine (issue 30, `vidcls bench --streams`; 64 of 5 fps), for a machine
# slower than it. Too many groups cost memory (a model and decoders each); too few, cameras.
DEFAULT_PER_GROUP = 28
FILE = "capacity.json"


def capacity_file() -> Path:
    """Where ``vidcls bench --streams`` keeps what one group held."""
    from ..zoo import cache_dir

    return cache_dir() / FILE


def measured_per_group() -> int | None:
    """The smallest stored figure of views one group held (None: never measured here, or
    the file cannot be read)."""
    try:
        held = json.loads(capacity_file().read_text())["held"]
        values = [int(v) for v in held.values() if int(v) > 0]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return min(values) if values else None


def store_capacity(fps: float, streams: int) -> Path:
    """Keep ``streams``, the most cameras of ``fps`` one group held, for :func:`group_count`."""
    path = capacity_file()
    try:
        doc = json.loads(path.read_text())
        doc["held"] = dict(doc.get("held", {}))
    except (OSError, ValueError, AttributeError):
        doc = {"held": {}}
    doc["held"][f"{fps:g}"] = int(streams)
    doc.update(cores=os.cpu_count() or 1, measured=time.strftime("%Y-%m-%d %H:%M:%S"))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{FILE}.{os.getpid()}")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    tmp.replace(path)
    return path


def per_group(configured: int | None = None) -> int:
    """Views one group takes: ``configured``, else the measured figure, else the default."""
    return configured or measured_per_group() or DEFAULT_PER_GROUP


def group_count(plan, cores: int | None = None) -> int:
    """How many groups ``plan``'s cameras run in (see the module's docstring); ``cores``:
    the CPUs they may use (None: this machine's; a Ray cluster's: all its nodes')."""
    cameras = len(plan.specs)
    if isinstance(plan.groups, int):
        return max(1, min(plan.groups, cameras))
    views = sum(len(s.views()) for s in plan.specs)
    wanted = math.ceil(views / per_group(plan.per_group))
    return max(1, min(wanted, cameras, cores or os.cpu_count() or 1))
