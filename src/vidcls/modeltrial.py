"""The child process that tries a model before vidcls loads it: ``python -m vidcls.modeltrial
PATH BACKEND THREADS [EXTRA_OUTPUT...]`` loads it and runs three frames, then prints ``ok
BACKEND`` or ``error REASON``. A model that makes LiteRT abort, crash or hang takes down only
this process (see :mod:`vidcls.modelcheck`, which runs it).
"""

from __future__ import annotations

import resource
import sys

from .modelcheck import PROBE_MEMORY

# First of all, cap this process's address space, so that a forged tensor size fails fast.
# (Set here rather than by the parent between fork and exec: a parent running threads must
# not run Python code in a forked child.)
resource.setrlimit(resource.RLIMIT_AS, (PROBE_MEMORY, PROBE_MEMORY))

from .errors import VidclsError  # noqa: E402 - after the limit
from .model import StreamModel  # noqa: E402


def main(argv: list[str]) -> int:
    """In the child: load the model, run three frames, say which backend did it."""
    path, backend, threads, *extras = argv
    try:
        model = StreamModel(path, int(threads), backend, tuple(extras), isolate=False)
        stream, image = model.new_stream(), model.blank_image()
        for _ in range(3):  # the second frame is the first to read a state the model wrote
            stream.step(image)
    except VidclsError as e:
        print(f"error {e.message}", flush=True)
        return 2
    except MemoryError:
        print(f"error corrupt model: it needs more than {PROBE_MEMORY >> 30} GB", flush=True)
        return 2
    print(f"ok {model.backend}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
