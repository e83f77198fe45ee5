"""Open a ``diskcache.Cache`` that other processes may be opening at the same moment.

The serving workers of one node (``server.workers``), the lane worker and the CLI all open
the same cache folders. Opening one runs schema statements and pragmas that SQLite can
refuse at once with "database is locked" when another process runs them concurrently (a
known diskcache limitation: its ``__init__`` is not process-safe), which made a worker
fail to start. Opening is serialised per folder with an ``flock``; once open, diskcache's
own operations are safe across processes.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any

import diskcache

LOCK_NAME = ".open.lock"  # beside diskcache's own files, never one of them


def open_disk_cache(directory: Path, **settings: Any) -> diskcache.Cache:
    """``diskcache.Cache(directory, **settings)``, opened while holding the folder's lock."""
    directory.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)  # the kernel drops it if this process dies
        return diskcache.Cache(str(directory), **settings)
    finally:
        os.close(descriptor)  # closing releases the lock
