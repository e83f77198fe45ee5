"""Verified ``q=auto`` decisions, keyed by what makes them transferable: the source's
perceptual hash, the format, the output size bucket and the policy, and by what produced
them: the search's code version and the quality predictor's sha256 (a new predictor
decides again instead of reusing its predecessor's answers). Only a measurement (the lane's
``verify`` job, or a search) writes one; with one known, any size in its bucket is answered
final at once. The store holds them for every node; a local disk cache memoises them.

A format decision says which lossy format won for one Accept class (``format_key``): the
smallest that met the target, AVIF included, measured under the lane's budget.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Protocol

from proxy.cache.disk import open_disk_cache

log = logging.getLogger(__name__)
VERSION = 1  # bump when the search or the metric changes what it would decide


def size_bucket(pixels: int) -> int:
    """Half-octave buckets of the output pixel count: 600x400 and 620x410 share one."""
    return round(2 * math.log2(max(pixels, 1)))


class DecisionStore(Protocol):
    def put_quality_decision(
        self,
        key: str,
        *,
        phash: str,
        fmt: str,
        bucket: int,
        policy: str,
        model: str,
        quality: int | None,
        score: float | None,
    ) -> None: ...

    def quality_decision(self, key: str) -> tuple[str, int | None, float | None] | None: ...


class QualityDecisions:
    def __init__(
        self,
        directory: Path | None,
        size_limit: int = 64 * 1024 * 1024,
        store: DecisionStore | None = None,
    ) -> None:
        self._cache = (
            open_disk_cache(directory, size_limit=size_limit) if directory is not None else None
        )
        self.store = store

    @staticmethod
    def key(phash: str, fmt: str, pixels: int, policy: str, model: str = "none") -> str:
        """``model``: the predictor's identity (its sha256, or ``none``)."""
        return f"q{VERSION}:{model[:16]}:{phash}:{fmt}:{size_bucket(pixels)}:{policy}"

    @staticmethod
    def format_key(phash: str, pixels: int, policy: str, accept: str, model: str = "none") -> str:
        """Which format won for clients of Accept class ``accept`` (``AcceptClass.key``)."""
        return f"f{VERSION}:{model[:16]}:{phash}:{accept}:{size_bucket(pixels)}:{policy}"

    def decision(self, key: str) -> tuple[str, int | None, float | None] | None:
        """(format, quality, score) of a verified decision; quality None: lossless won."""
        if self._cache is not None:
            value = self._cache.get(key)
            if isinstance(value, tuple) and len(value) in (3, 5):
                return (value[0], value[1], value[2])
            if isinstance(value, int):  # written before formats were remembered
                return ("", value, None)
        if self.store is None:
            return None
        try:
            found = self.store.quality_decision(key)
        except Exception:  # the store is a memory, not a dependency of the answer
            log.exception("reading a q=auto decision failed")
            return None
        if found is not None and self._cache is not None:
            self._cache.set(key, found)
        return found

    def get(self, key: str) -> int | None:
        """The verified quality, if any."""
        found = self.decision(key)
        return None if found is None else found[1]

    def winner(self, key: str) -> str | None:
        """The verified format of a ``format_key``, if any."""
        found = self.decision(key)
        return found[0] if found is not None and found[0] else None

    def put(self, key: str, quality: int) -> None:
        """Memoise locally (a search on the request path, with no store to share it)."""
        if self._cache is not None:
            self._cache.set(key, ("", quality, None))

    def record(
        self,
        key: str,
        *,
        phash: str,
        fmt: str,
        pixels: int,
        policy: str,
        model: str,
        quality: int | None,
        score: float | None,
        origin: tuple[str, str] | None = None,
    ) -> None:
        """A verified decision, for every node (the store) and here (the memo, with the
        (path, sha256) it was measured on: the cost tallies say which cache reuses it)."""
        if self.store is not None:
            self.store.put_quality_decision(
                key,
                phash=phash,
                fmt=fmt,
                bucket=size_bucket(pixels),
                policy=policy,
                model=model[:16],
                quality=quality,
                score=score,
            )
        if self._cache is not None:
            self._cache.set(key, (fmt, quality, score, *(origin or ("", ""))))

    def origin(self, key: str) -> tuple[str, str] | None:
        """(path, sha256) of the source a decision was measured on, when this node saw it."""
        value = self._cache.get(key) if self._cache is not None else None
        if isinstance(value, tuple) and len(value) == 5 and value[3]:
            return str(value[3]), str(value[4])
        return None

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()
