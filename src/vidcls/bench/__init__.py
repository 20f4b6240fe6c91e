"""Everything vidcls measures about itself, run by ``vidcls bench``; nothing here is on the
product's path.

- :mod:`.latency`: per-frame latency by stage against the official example's loop (default),
  which :mod:`.official` reproduces
- :mod:`.endtoend`: ``vidcls classify`` against that loop end to end, fresh processes, on a
  1080x1920 phone-style clip (``--e2e``)
- :mod:`.batch`: ``vidcls batch`` throughput, one process against the pool (``--batch``)
- :mod:`.streams`: how many live cameras one process holds (``--streams``), on the simulated
  IP cameras of :mod:`.cameras`
- :mod:`.ws`: how many browser streams one ``vidcls serve`` holds (``--ws``)
- :mod:`.slowheaders`: slow-header clients against ``vidcls serve`` and plain uvicorn
  (``--slow-headers``)
- :mod:`.window`: the window modes compared on the shared clips (``--window-modes``)
- :mod:`.train`: ``vidcls train`` phase by phase on long 720p clips (``--train``)
- :mod:`.clips`: the clips they run on (the shared ones, and H.264 made with PyAV)
"""
