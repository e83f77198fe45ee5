"""Rendered results: a byte-bounded in-memory LRU in front of a size-bounded disk cache."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from pathlib import Path

from cachetools import LRUCache

from proxy.cache.disk import open_disk_cache


@dataclass(frozen=True)
class CachedImage:
    body: bytes
    content_type: str
    etag: str
    headers: dict[str, str] = field(default_factory=dict)  # X-Loupe-* that describe the body
    # A provisional answer: the q=auto decision keys whose verification supersedes it.
    pending: tuple[str, ...] = ()


def cache_key(
    path: str,
    canonical_query: str,
    variant: str,
    identity: str,
    generation: int = 0,
    models: str = "",
) -> str:
    """The canonical request, the negotiated variant, the source identity (its bytes), its
    decision generation (the human decisions on it) and the identity of the models the
    render may consult (``pipeline.models_identity``), hashed."""
    raw = "\n".join((path, canonical_query, variant, identity, str(generation), models))
    return hashlib.sha256(raw.encode()).hexdigest()


def strong_etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _size(item: CachedImage) -> int:
    return len(item.body) + 512


class _TaggedLRU(LRUCache[str, CachedImage]):
    """An LRU that knows which keys belong to which source, so a purge finds them."""

    def __init__(self, maxsize: int) -> None:
        super().__init__(maxsize=maxsize, getsizeof=_size)
        self.tags: dict[str, set[str]] = {}
        self.tag_of: dict[str, str] = {}

    def tag(self, key: str, tag: str) -> None:
        self.tag_of[key] = tag
        self.tags.setdefault(tag, set()).add(key)

    def __delitem__(self, key: str) -> None:  # eviction and explicit deletes both pass here
        super().__delitem__(key)
        tag = self.tag_of.pop(key, None)
        if tag is not None:
            keys = self.tags.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self.tags[tag]


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
        self._memory: _TaggedLRU | None = _TaggedLRU(memory_bytes) if memory_bytes > 0 else None
        self._memory_lock = threading.Lock()
        self._max_item = memory_max_item_bytes
        self._disk = (
            open_disk_cache(
                directory,
                size_limit=disk_bytes,
                eviction_policy="least-recently-used",
                statistics=False,
                tag_index=True,  # purge finds a source's variants without a scan
            )
            if directory is not None and disk_bytes > 0
            else None
        )
        self._io = io
        self._pending: set[Future[None]] = set()
        self._pending_key: dict[str, Future[None]] = {}
        self._writing: dict[str, CachedImage] = {}

    def _remember(self, key: str, item: CachedImage, tag: str | None = None) -> None:
        if self._memory is not None and _size(item) <= self._max_item:
            with self._memory_lock:
                self._memory[key] = item
                if tag is not None:
                    self._memory.tag(key, tag)

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
        found, tag = await loop.run_in_executor(self._io, self._read_disk, key)
        if isinstance(found, CachedImage):
            self._remember(key, found, tag)
            return found, "disk"
        return None, ""

    def _read_disk(self, key: str) -> tuple[object, str | None]:
        assert self._disk is not None
        found, tag = self._disk.get(key, tag=True)
        return found, tag

    async def put(self, key: str, item: CachedImage, *, tag: str | None = None) -> None:
        """Memory now; disk in the background (the response need not wait for it). Until
        the write lands, the item is served from ``_writing`` even if memory evicted it.
        ``tag`` (the source path) lets :meth:`purge` find every variant of a source."""
        self._remember(key, item, tag)
        if self._disk is None:
            return
        with self._memory_lock:
            self._writing[key] = item
        write = self._io.submit(self._write, key, item, tag)
        self._pending.add(write)
        self._pending_key[key] = write
        self._pending = {write for write in self._pending if not write.done()}
        if len(self._pending_key) > 2 * len(self._pending) + 64:
            self._pending_key = {k: w for k, w in self._pending_key.items() if not w.done()}

    async def written(self, key: str) -> None:
        """Wait until ``key``'s latest disk write has landed (another process can read it)."""
        write = self._pending_key.pop(key, None)
        if write is not None:
            await asyncio.wrap_future(write)

    def _write(self, key: str, item: CachedImage, tag: str | None = None) -> None:
        try:
            assert self._disk is not None
            self._disk.set(key, item, tag=tag)
        finally:
            with self._memory_lock:
                if self._writing.get(key) is item:
                    del self._writing[key]

    def flush(self) -> None:
        """Wait for background disk writes (shutdown, tests)."""
        for write in list(self._pending):
            write.result()
        self._pending.clear()
        self._pending_key.clear()

    def purge(self, tag: str) -> int:
        """Drop every cached variant of one source, in memory and on disk; returns how many
        were found (blocking: call it off the event loop)."""
        self.flush()  # a write in flight must not land after the purge
        dropped = 0
        if self._memory is not None:
            with self._memory_lock:
                for key in list(self._memory.tags.get(tag, ())):
                    self._memory.pop(key, None)
                    dropped += 1
        if self._disk is not None:
            dropped += int(self._disk.evict(tag))
        return dropped

    def forget_memory_key(self, key: str) -> None:
        """Drop one result from this process's memory tier (superseded on the shared disk)."""
        if self._memory is not None:
            with self._memory_lock:
                self._memory.pop(key, None)

    def forget_memory(self, tag: str) -> int:
        """Drop one source's variants from this process's memory tier only (another
        process of the node purged the shared disk tier)."""
        if self._memory is None:
            return 0
        with self._memory_lock:
            keys = list(self._memory.tags.get(tag, ()))
            for key in keys:
                self._memory.pop(key, None)
        return len(keys)

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
