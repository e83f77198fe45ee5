"""A lock per cache key shared by the serving processes of one node (``server.workers``):
without Redis, this is how two workers asked for the same cold URL render it once. The
holder renders and writes the disk cache the workers share before it lets go; the others
poll for the lock and find the result there.

One ``flock`` on a file per key under the cache folder. The kernel drops the lock when
its holder dies, so a killed worker leaves no stale lock. The holder deletes the file as
it lets go, so the folder does not fill up; a process that locked a file which was deleted
meanwhile sees that the path names another inode now, and tries again.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path


class NodeLocks:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        if not key or not all(c in "0123456789abcdef" for c in key):
            raise ValueError("a node lock key is a hex digest")
        return self.directory / f"{key}.lock"

    def try_acquire(self, key: str) -> int | None:
        """The held lock (a file descriptor for :meth:`release`), or None when another
        process holds it. Never blocks."""
        path = self._path(key)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return None
            try:
                current = os.stat(path).st_ino
            except FileNotFoundError:
                current = -1
            if current == os.fstat(fd).st_ino:
                return fd
            os.close(fd)  # its holder deleted it as it let go: lock the path's file now

    def release(self, key: str, fd: int) -> None:
        """Delete the file while still holding it, then let go."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(key))
        os.close(fd)
