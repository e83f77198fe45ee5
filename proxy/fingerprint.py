"""Perceptual hash of a source: the key under which AI results and quality decisions are
reused across sizes, re-uploads and re-encodes of the same picture."""

from __future__ import annotations

import hashlib
import threading

import imagehash
import pyvips
from cachetools import LRUCache
from PIL import Image as PILImage

from proxy.imaging import to_plane


class PhashMemo:
    """Hashes by source bytes, so the sizes of one picture hash it once. Thread-safe."""

    def __init__(self, entries: int = 4096) -> None:
        self._known: LRUCache[bytes, str] = LRUCache(maxsize=entries)
        self._lock = threading.Lock()

    def known(self, blob: bytes) -> str | None:
        """The hash if this memo holds it (no hashing)."""
        digest = hashlib.blake2b(blob, digest_size=16).digest()
        with self._lock:
            return self._known.get(digest)

    def __call__(self, blob: bytes) -> str:
        digest = hashlib.blake2b(blob, digest_size=16).digest()
        with self._lock:
            known = self._known.get(digest)
        if known is None:
            known = phash(blob)
            with self._lock:
                self._known[digest] = known
        return known


def phash(blob: bytes) -> str:
    """64-bit DCT hash (hex) of a small, shrink-on-load thumbnail of the source."""
    thumb = pyvips.Image.thumbnail_buffer(blob, 64, height=64, size="force")
    if thumb.hasalpha():
        thumb = thumb.flatten(background=[255, 255, 255])
    grey = thumb.colourspace("b-w").extract_band(0).cast("uchar")
    return str(imagehash.phash(PILImage.fromarray(to_plane(grey))))
