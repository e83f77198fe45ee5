"""Give freed heap back to the system after the rare, very large allocations (the saliency
model's activations): glibc keeps freed memory in its arenas otherwise, and a node's RSS
would stay at its one-time peak. No-op where glibc is absent."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


def release_free_memory() -> None:
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


def limit_malloc_arenas(count: int = 2) -> None:
    """Fewer glibc arenas: many render threads each growing its own arena is where a
    long-running node's RSS creeps; call before threads start."""
    libc = _libc()
    if libc is not None and hasattr(libc, "mallopt"):
        m_arena_max = -8
        libc.mallopt(m_arena_max, count)
