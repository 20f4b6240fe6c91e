"""The live engine: cameras, network streams and files at real speed, one or many, on one model.

A frame travels one way, whatever the number of sources or the front end:
:mod:`.sources` names the sources; each one's frames come from a :mod:`.capture`
:class:`~.capture.FrameSource` (a capture thread here, a decoding process of
:mod:`.decoders`, or frames a browser pushes); the :mod:`.scheduler` feeds each source's
freshest frame at the model's rate, earliest deadline first, dropping (and counting, in
:mod:`.stats`) what it cannot serve; :mod:`.watch` runs it all (:mod:`.build` makes it
from a config, :mod:`.groups` shares the cameras among processes) and hands results and
events to :mod:`.outputs` (stdout, a file, webhooks and MQTT, a window of :mod:`.display`).
Time comes from :mod:`.clock`: the real one, or a virtual clock that :mod:`.replay` plays
files on.

    from vidcls.live import Watch, Output, iter_live, watch
    from vidcls.live import ClipOptions, SourceSpec, Zone  # event clips, zones
    from vidcls.live import VirtualClock  # replay files: as fast as the CPU goes, no drops
    from vidcls.live import start_config  # a cameras config, as vidcls live --config runs it
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__all__ = [
    "ClipOptions",
    "Output",
    "Outputs",
    "SourceSpec",
    "SourceStats",
    "VirtualClock",
    "Watch",
    "Zone",
    "iter_live",
    "start_config",
    "watch",
]
_HOME = {
    "ClipOptions": ".clips",
    "Output": ".outputs",
    "Outputs": ".outputs",
    "SourceSpec": ".sources",
    "SourceStats": ".stats",
    "VirtualClock": ".clock",
    "Zone": ".sources",
    "start_config": ".build",
}

if TYPE_CHECKING:
    from .build import start_config
    from .clips import ClipOptions
    from .clock import VirtualClock
    from .outputs import Output, Outputs
    from .sources import SourceSpec, Zone
    from .stats import SourceStats
    from .watch import Watch, iter_live, watch


def __getattr__(name: str):  # loaded on first use: outputs and stats need no model runtime
    if name not in __all__:
        raise AttributeError(f"module 'vidcls.live' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOME.get(name, ".watch"), __name__), name)
    globals()[name] = value
    return value
