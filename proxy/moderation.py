"""Moderation: decide whether a source may be published, and hold it (451) until a human
approves when it may not.

Fail closed: with moderation on, a source nobody could scan (model missing, scan failed) is
held for review; unscanned content is never served. Verdicts live in the store, so every
node and every size of the source shares one; a short in-process memo keeps the store off
the hot path of cache hits.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Protocol

import pyvips
from cachetools import TTLCache

from proxy.config import ModerationConfig
from proxy.errors import LoupeError
from proxy.stores import Store
from proxy.stores.base import SourceRecord

log = logging.getLogger(__name__)
SCAN_SIDE = 256
MEMO_SECONDS = 2.0
SERVABLE = frozenset({"clear", "review", "approved"})


class HeldForModeration(LoupeError):
    status = 451
    slug = "held-for-moderation"
    title = "Held for moderation"


class Scorer(Protocol):
    @property
    def available(self) -> bool: ...

    reason: str

    def score(self, image: pyvips.Image) -> float: ...


def verdict(score: float | None, config: ModerationConfig) -> str:
    """held, review or clear; no score (unscannable) holds."""
    if score is None or score >= config.unsafe_threshold:
        return "held"
    return "review" if score >= config.review_threshold else "clear"


class Moderator:
    def __init__(self, store: Store, scorer: Scorer | None, config: ModerationConfig) -> None:
        self.store = store
        self.scorer = scorer
        self.config = config
        self._memo: TTLCache[str, str] = TTLCache(maxsize=65_536, ttl=MEMO_SECONDS)
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.config.enabled

    def known_status(self, path: str) -> str | None:
        """The stored verdict (memoised briefly); None when never scanned. Blocking."""
        with self._lock:
            memo = self._memo.get(path)
        if memo is not None:
            return memo
        record = self.store.source(path)
        status = (
            None
            if record is None or record.moderation_status == "unscanned"
            else (record.moderation_status)
        )
        if status is not None:
            with self._lock:
                self._memo[path] = status
        return status

    def forget(self, path: str) -> None:
        with self._lock:
            self._memo.pop(path, None)

    def scan(self, path: str, blob: bytes) -> str:
        """Score the source, store the verdict, queue a human where one is needed. Blocking."""
        score: float | None = None
        problem = ""
        if self.scorer is None or not self.scorer.available:
            problem = "moderation model unavailable: " + (
                self.scorer.reason if self.scorer else "none configured"
            )
        else:
            try:
                thumb = pyvips.Image.thumbnail_buffer(blob, SCAN_SIDE, height=SCAN_SIDE)
                score = float(self.scorer.score(thumb))
            except Exception as exc:  # a broken scan holds the image; it never publishes it
                problem = f"moderation scan failed: {exc}"
        if problem:
            log.error("holding %s: %s", path, problem)
        status = verdict(score, self.config)
        self.store.record_source(SourceRecord(path=path))
        self.store.set_moderation(path, status, score)
        self.store.count_outcome("moderation", "auto" if status == "clear" else "review")
        if status != "clear":
            payload = {
                "score": None if score is None else round(score, 4),
                "verdict": status,
                "reason": problem or f"NSFW score {score:.2f}",
                "scanned_at": time.time(),
            }
            self.store.open_review(path, "moderation", path, payload)
        with self._lock:
            self._memo[path] = status
        return status

    @staticmethod
    def check(path: str, status: str) -> None:
        if status not in SERVABLE:
            raise HeldForModeration(
                f"{path} is held for moderation review"
                + (" (rejected)" if status == "rejected" else "")
            )
