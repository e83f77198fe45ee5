"""A local folder. Nothing outside the root is ever read: no ``..`` segments and no
symlink that resolves outside it. A source's identity changes with its bytes (inode,
mtime, ctime, size), and a read whose file no longer matches it is refused."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Callable
from functools import partial
from pathlib import Path

from proxy.errors import Forbidden, SourceChanged, SourceNotFound, SourceTooLarge
from proxy.sources.base import SourceRef
from proxy.sources.paths import SourcePath


class LocalSource:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _resolve(self, path: SourcePath) -> Path:
        parts = path.split("/")
        if any(part in ("..", ".", "") for part in parts) or "\\" in path or "\x00" in path:
            raise Forbidden(f"path {path!r} is not allowed")
        try:
            candidate = (self.root / path).resolve()
        except (OSError, RuntimeError):  # a symlink loop, a name too long
            raise SourceNotFound(f"no source at {path!r}") from None
        if not candidate.is_relative_to(self.root):
            raise Forbidden(f"path {path!r} leaves the source root")
        return candidate

    def _stat(self, path: SourcePath) -> SourceRef:
        target = self._resolve(path)
        try:
            info = target.stat()
        except OSError:  # missing, not a folder, too long, a loop, unreadable
            raise SourceNotFound(f"no source at {path!r}") from None
        if not stat.S_ISREG(info.st_mode):  # the stat above already knows: no second call
            raise SourceNotFound(f"no source at {path!r}")
        return SourceRef(path=path, identity=_identity(info), size=info.st_size)

    async def locate(self, path: SourcePath) -> SourceRef:
        # A stat on local disk costs microseconds; a thread hop would cost more than it.
        return self._stat(path)

    def _read(self, ref: SourceRef, max_bytes: int) -> bytes:
        if ref.size > max_bytes:
            raise SourceTooLarge(f"source is {ref.size} bytes; the limit is {max_bytes}")
        target = self._resolve(ref.path)
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
        try:
            # The resolved path has no symlink left, so O_NOFOLLOW only bites on a race.
            fd = os.open(target, flags)
        except OSError:
            raise SourceNotFound(f"no source at {ref.path!r}") from None
        with os.fdopen(fd, "rb") as handle:
            if _identity(os.fstat(fd)) != ref.identity:  # replaced since it was located
                raise SourceChanged(f"{ref.path!r} changed while it was being served")
            # Ask for what stat saw (+1 to notice growth): a 64 MiB request would make
            # Python allocate 64 MiB per read.
            data = handle.read(min(ref.size, max_bytes) + 1)
            if len(data) > ref.size:  # the file grew since it was located
                data += handle.read(max_bytes + 1 - len(data))
        if len(data) > max_bytes:
            raise SourceTooLarge(f"source exceeds the {max_bytes}-byte limit")
        return data

    async def read(self, ref: SourceRef, max_bytes: int) -> bytes:
        return await asyncio.to_thread(self._read, ref, max_bytes)

    def blocking_reader(self, ref: SourceRef, max_bytes: int) -> Callable[[], bytes]:
        """Read in the render thread: one thread hop less per cold request."""
        return partial(self._read, ref, max_bytes)


def _identity(info: os.stat_result) -> str:
    """Changes whenever the bytes can have: a new file (inode), a write (mtime, and ctime,
    which no one can set back), or another size."""
    parts = (info.st_ino, info.st_mtime_ns, info.st_ctime_ns, info.st_size)
    return "-".join(f"{part:x}" for part in parts)
