"""An exclusive lock between processes on one machine, for setup that SQLite does not
serialise itself: switching a new database to WAL answers "database is locked" at once,
without waiting, when another process is switching it too (diskcache opens its folders the
same way). Held only while a connection is set up, never across requests."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def exclusive(lock_file: Path) -> Iterator[None]:
    """Hold ``lock_file``'s ``flock`` (created if missing) for the ``with`` block; the
    kernel drops it if this process dies."""
    descriptor = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock
