"""Remembered ``q=auto`` decisions, keyed by what makes them transferable: the source's
perceptual hash, the format, the output size bucket and the policy, and by what produced
them: the search's code version and the quality predictor's sha256 (a new predictor
decides again instead of reusing its predecessor's answers). Other sizes of the same
picture and re-uploads start from (or reuse) them instead of searching again."""

from __future__ import annotations

import math
from pathlib import Path

import diskcache

VERSION = 1  # bump when the search or the metric changes what it would decide


def size_bucket(pixels: int) -> int:
    """Half-octave buckets of the output pixel count: 600x400 and 620x410 share one."""
    return round(2 * math.log2(max(pixels, 1)))


class QualityDecisions:
    def __init__(self, directory: Path | None, size_limit: int = 64 * 1024 * 1024) -> None:
        self._cache = (
            diskcache.Cache(str(directory), size_limit=size_limit)
            if directory is not None
            else None
        )

    @staticmethod
    def key(phash: str, fmt: str, pixels: int, policy: str, model: str = "none") -> str:
        """``model``: the predictor's identity (its sha256, or ``none``)."""
        return f"q{VERSION}:{model[:16]}:{phash}:{fmt}:{size_bucket(pixels)}:{policy}"

    def get(self, key: str) -> int | None:
        found = self.lookup(key)
        return found[0] if found else None

    def lookup(self, key: str) -> tuple[int, list[str] | None] | None:
        """The remembered quality and the (path, sha256) of the search that found it."""
        if self._cache is None:
            return None
        value = self._cache.get(key)
        if isinstance(value, int):  # remembered before origins were
            return value, None
        if isinstance(value, list) and len(value) == 3 and isinstance(value[0], int):
            return value[0], [str(value[1]), str(value[2])]
        return None

    def put(self, key: str, quality: int, origin: tuple[str, str] = ("", "")) -> None:
        if self._cache is not None:
            self._cache.set(key, [quality, *origin])

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()
