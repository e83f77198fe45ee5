"""A lock per cache key shared by the serving processes of one node (``server.workers``):
without Redis, this is how two workers asked for the same cold URL render it once. The
holder renders and writes the disk cache the workers share before it lets go; the others
poll for the lock and find the result there.

One ``flock`` on a file per key under the cache folder. The kernel drops the lock when
its holder dies, so a killed worker leaves no stale lock. The holder deletes the file as
it lets go, so the folder does not fill up; a process that locked a file which was deleted
meanwhile sees that the path names another inode now, and tries again.

:meth:`NodeLocks.once` is that protocol for one result.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


class NodeLocks:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._releasing: set[asyncio.Future[None]] = set()  # locks held until written

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

    async def once(
        self,
        key: str,
        find: Callable[[], Awaitable[T | None]],
        compute: Callable[[], Awaitable[T]],
        written: Callable[[], Awaitable[object]],
        deadline_s: float,
    ) -> T:
        """``key``'s result, computed by one process of the node: the one holding the key's
        lock computes it (unless ``find`` finds it, stored by a holder that let go) and lets
        go once ``written`` returns; the others poll for the lock and ``find`` it. Past
        ``deadline_s`` (the holder is stuck) a waiter computes it anyway."""
        loop = asyncio.get_running_loop()
        end = loop.time() + deadline_s
        delay = 0.005
        while True:
            held = self.try_acquire(key)
            if held is not None:
                kept = False
                try:
                    found = await find()  # computed by a holder that let go
                    if found is None:
                        result = await compute()
                        self._release_when_written(key, held, written)  # not the caller's wait
                        kept = True
                        return result
                finally:
                    if not kept:
                        self.release(key, held)
            else:
                found = await find()
            if found is not None:
                return found
            if loop.time() >= end:  # the holder is stuck: compute it here anyway
                return await compute()
            await asyncio.sleep(delay)
            delay = min(0.05, delay * 1.5)

    def _release_when_written(
        self, key: str, held: int, written: Callable[[], Awaitable[object]]
    ) -> None:
        """Let go of ``key``'s lock once its result is on the shared disk, so a process
        that polls for the lock finds the result rather than computing it again."""

        async def release() -> None:
            try:
                await written()
            except Exception:  # the write failed: the others compute it themselves
                pass
            finally:
                self.release(key, held)

        task = asyncio.ensure_future(release())
        self._releasing.add(task)
        task.add_done_callback(self._releasing.discard)
