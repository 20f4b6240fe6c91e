"""``GET /api/groups``: how the config's cameras run (``vidcls serve --config``): per group
of cameras, where it runs, its cameras, state, deaths and load; on Ray, the nodes.

The document::

    {"cameras": "watching" | "done",
     "transport": "here" | "processes" | "ray",
     "groups": [{"index", "state", "deaths", "here", "node", "host", "address", "pid",
                 "cpu", "results_per_s", "error",
                 "cameras": [{"name", "views", "online", "results_per_s"}]}],
     "nodes": null | [{"id", "alive", "address", "host", "cpus", "cpus_free", "groups"}],
     "failed_cameras": {name: why}}

``state``: ``running``, ``starting`` (its process or actor is starting, again after a death
too), ``restarting`` (dead, about to start again), ``not placed`` (Ray has no room for it
yet), ``given up`` (``error`` says why) or ``ended``. ``here``: on this machine (``pid``: its
process, 0 while there is none). ``cpu``: CPU seconds per second of the group's process
over its last report (decoding processes not counted; ``here`` with one group: the server's
process), null until known. ``node``: the Ray node id.
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations at runtime.
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException

from .state import ServerState, get_state

State = Annotated[ServerState, Depends(get_state)]
router = APIRouter()
NO_CAMERAS = "no cameras here: start the server with --config"


# Not async: on Ray the nodes may be asked (every few seconds at most), off the event loop.
@router.get("/api/groups", summary="The config's cameras: groups, where they run, load")
def groups(state: State) -> dict:
    cameras = state.cameras
    if cameras is None:
        raise HTTPException(404, NO_CAMERAS)
    return {"cameras": cameras.state, **cameras.groups(), "failed_cameras": cameras.failed}
