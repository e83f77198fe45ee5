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


def limit_malloc_arenas(count: int = 2, mmap_threshold: int = 4 << 20) -> None:
    """Fewer glibc arenas: many render threads each growing its own arena is where a
    long-running node's RSS creeps; call before threads start.

    Also a fixed 4 MB mmap threshold: glibc raises it after every large free (up to 32 MB),
    so model activations (u2netp's are 26 MB tensors) end up in the heap, where a freed hole
    is kept and the next phase grows past it. Served from mmap they go back when freed: a
    fresh node's peak under 8 clients on a 24 MP JPEG, saliency running beside the renders,
    went from 458-467 to 406-414 MB. 1 MB cut it to 394-407 MB but put each render's own
    buffers on mmap too: fresh zeroed pages cost 2-5 ms of CPU per cold request."""
    libc = _libc()
    if libc is not None and hasattr(libc, "mallopt"):
        m_arena_max, m_mmap_threshold = -8, -3
        libc.mallopt(m_arena_max, count)
        libc.mallopt(m_mmap_threshold, mmap_threshold)
