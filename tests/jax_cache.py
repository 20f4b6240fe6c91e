"""A JAX compilation cache for the test session, in the session's temporary folder.

Programs compiled once are loaded from it instead of compiled again (seconds each): the stream
replica of A0 is the same program in the replica, parity and fine-tuning tests (weights and
int8 grids are its arguments). The xdist workers share the folder, so a program one worker
compiled another loads; JAX locks the folder's files while it reads or writes them.
"""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def jax_compilation_cache(tmp_path_factory):
    """The session's compilation cache folder, in use from here on."""
    import jax

    base = tmp_path_factory.getbasetemp()
    # An xdist worker's temporary folder is popen-gwN in the session's.
    session = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    folder = session / "jax-compilation-cache"
    folder.mkdir(exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_compilation_cache_max_size", 1 << 34)  # a size: files locked
    return folder
