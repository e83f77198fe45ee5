"""Rendered results: a byte-bounded in-memory LRU in front of a size-bounded disk cache."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from pathlib import Path

import diskcache
from cachetools import LRUCache


@dataclass(frozen=True)
class CachedImage:
    body: bytes
    content_type: str
    etag: str
    headers: dict[str, str] = field(default_factory=dict)  # X-Loupe-* that describe the body


def cache_key(path: str, canonical_query: str, variant: str, identity: str) -> str:
    """The canonical request, the negotiated variant and the source identity, hashed."""
    raw = "\n".join((path, canonical_query, variant, identity))
    return hashlib.sha256(raw.encode()).hexdigest()


def strong_etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _size(item: CachedImage) -> int:
    return len(item.body) + 512


class ResultCache:
    def __init__(
        self,
        directory: Path | None,
        *,
        memory_bytes: int,
        memory_max_item_bytes: int,
        disk_bytes: int,
        io: Executor,
    ) -> None:
        self._memory: LRUCache[str, CachedImage] | None = (
            LRUCache(maxsize=memory_bytes, getsizeof=_size) if memory_bytes > 0 else None
        )
        self._memory_lock = threading.Lock()
        self._max_item = memory_max_item_bytes
        self._disk = (
            diskcache.Cache(
                str(directory),
                size_limit=disk_bytes,
                eviction_policy="least-recently-used",
                statistics=False,
            )
            if directory is not None and disk_bytes > 0
            else None
        )
        self._io = io
        self._pending: set[Future[None]] = set()
        self._writing: dict[str, CachedImage] = {}

    def _remember(self, key: str, item: CachedImage) -> None:
        if self._memory is not None and _size(item) <= self._max_item:
            with self._memory_lock:
                self._memory[key] = item

    def get_memory(self, key: str) -> CachedImage | None:
        if self._memory is None:
            return None
        with self._memory_lock:
            return self._memory.get(key)

    async def get(self, key: str) -> tuple[CachedImage | None, str]:
        """The cached result and the tier it came from (``memory``/``disk``)."""
        item = self.get_memory(key)
        if item is not None:
            return item, "memory"
        with self._memory_lock:
            item = self._writing.get(key)
        if item is not None:
            self._remember(key, item)
            return item, "disk"
        if self._disk is None:
            return None, ""
        loop = asyncio.get_running_loop()
        found = await loop.run_in_executor(self._io, self._disk.get, key)
        if isinstance(found, CachedImage):
            self._remember(key, found)
            return found, "disk"
        return None, ""

    async def put(self, key: str, item: CachedImage) -> None:
        """Memory now; disk in the background (the response need not wait for it). Until
        the write lands, the item is served from ``_writing`` even if memory evicted it."""
        self._remember(key, item)
        if self._disk is None:
            return
        with self._memory_lock:
            self._writing[key] = item
        self._pending.add(self._io.submit(self._write, key, item))
        self._pending = {write for write in self._pending if not write.done()}

    def _write(self, key: str, item: CachedImage) -> None:
        try:
            assert self._disk is not None
            self._disk.set(key, item)
        finally:
            with self._memory_lock:
                if self._writing.get(key) is item:
                    del self._writing[key]

    def flush(self) -> None:
        """Wait for background disk writes (shutdown, tests)."""
        for write in list(self._pending):
            write.result()
        self._pending.clear()

    def clear(self) -> None:
        self.flush()
        if self._memory is not None:
            with self._memory_lock:
                self._memory.clear()
        if self._disk is not None:
            self._disk.clear()

    def close(self) -> None:
        self.flush()
        if self._disk is not None:
            self._disk.close()
