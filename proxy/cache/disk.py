"""Open a ``diskcache.Cache`` that other processes may be opening at the same moment.

The serving workers of one node (``server.workers``), the lane worker and the CLI all open
the same cache folders. Opening one switches its SQLite file to WAL and runs schema
statements, which SQLite can refuse at once with "database is locked" while another
process does the same (diskcache's ``__init__`` is not process-safe): a worker of
``loupe serve`` on defaults failed to start so. Opening is serialised per folder; once
open, diskcache's own operations are safe across processes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import diskcache

from proxy.filelock import exclusive

LOCK_NAME = ".open.lock"  # beside diskcache's own files, never one of them


def open_disk_cache(directory: Path, **settings: Any) -> diskcache.Cache:
    """``diskcache.Cache(directory, **settings)``, opened while holding the folder's lock."""
    directory.mkdir(parents=True, exist_ok=True)
    with exclusive(directory / LOCK_NAME):
        return diskcache.Cache(str(directory), **settings)
