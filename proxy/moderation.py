"""Moderation: decide whether a source may be published, and hold it (451) until a human
approves when it may not.

Fail closed: with moderation on, a source nobody could scan (model missing, scan failed) is
held for review; unscanned content is never served. Verdicts belong to the bytes (their
SHA-256), not to the path: new bytes at a known path are scanned again before they are
served, a human's approval covers the bytes they saw and no others, and the same bytes
under another path share the verdict. A short in-process memo, keyed by the source's
identity, keeps the store off the hot path of cache hits.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Protocol

import pyvips
from cachetools import TTLCache

from proxy.config import ModerationConfig
from proxy.errors import LoupeError
from proxy.feedback.calibration import SAMPLED, sample_due
from proxy.feedback.costs import CostMeter
from proxy.sources.base import Source, SourceRef
from proxy.sources.paths import SourcePath
from proxy.stores.protocols import FeedbackStore, ModerationStore, QAStore, ReviewStore

log = logging.getLogger(__name__)
SCAN_SIDE = 256
MEMO_SECONDS = 2.0
SERVABLE = frozenset({"clear", "review", "approved"})


class HeldForModeration(LoupeError):
    """Moderation holds the source: it is not served."""


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


class ModeratorStore(ModerationStore, FeedbackStore, ReviewStore, QAStore, Protocol):
    """Verdicts, the threshold and outcome tallies, the review queue, and the calibration
    sample."""


class Moderator:
    def __init__(
        self,
        store: ModeratorStore,
        scorer: Scorer | None,
        config: ModerationConfig,
        meter: CostMeter | None = None,
        sample_rate: float = 0.0,
    ) -> None:
        self.sample_rate = sample_rate  # cleared images also sent for a look (calibration)
        self.meter = meter if meter is not None else CostMeter(None)
        self.store = store
        self.scorer = scorer
        self.config = config
        # path -> (identity, status): a new identity (new bytes) misses it
        self._memo: TTLCache[str, tuple[str, str]] = TTLCache(maxsize=65_536, ttl=MEMO_SECONDS)
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.config.enabled

    def known_status(self, path: SourcePath, identity: str) -> str | None:
        """The verdict on ``path``'s bytes as of ``identity`` (memoised briefly); None when
        those bytes were never judged and must be scanned. Blocking."""
        with self._lock:
            memo = self._memo.get(path)
        if memo is not None and memo[0] == identity:
            return memo[1]
        status = self.store.moderation_of(path, identity)
        if status is not None:
            with self._lock:
                self._memo[path] = (identity, status)
        return status

    def forget(self, path: SourcePath) -> None:
        with self._lock:
            self._memo.pop(path, None)

    def scan(self, path: SourcePath, identity: str, blob: bytes) -> str:
        """The verdict on ``blob`` (the bytes of ``path`` at ``identity``): the one these
        bytes already have, or a fresh score, stored with a human queued where one is
        needed. Blocking."""
        digest = hashlib.sha256(blob).hexdigest()
        status = self.store.bind_content(path, identity, digest)
        if status is None:
            status = self._judge(path, digest, blob)
        elif self.scorer is not None and self.scorer.available:
            self.meter.saved("nsfw", "reupload")  # these bytes were scored before
        with self._lock:
            self._memo[path] = (identity, status)
        return status

    def _judge(self, path: SourcePath, digest: str, blob: bytes) -> str:
        score: float | None = None
        problem = ""
        if self.scorer is None or not self.scorer.available:
            problem = "moderation model unavailable: " + (
                self.scorer.reason if self.scorer else "none configured"
            )
        else:
            try:
                with self.meter.measure("nsfw"):
                    thumb = pyvips.Image.thumbnail_buffer(blob, SCAN_SIDE, height=SCAN_SIDE)
                    score = float(self.scorer.score(thumb))
            except Exception as exc:  # a broken scan holds the image; it never publishes it
                problem = f"moderation scan failed: {exc}"
        if problem:
            log.error("holding %s: %s", path, problem)
        applied = self.store.threshold("moderation")  # calibration.apply
        config = self.config
        if applied is not None:
            config = config.model_copy(update={"review_threshold": applied})
        status = verdict(score, config)
        self.store.set_verdict(digest, status, score)
        stored = self.store.moderation_of_digest(digest) or status  # a human's word stands
        self.store.count_outcome("moderation", "auto" if status == "clear" else "review")
        sampled = stored == status == "clear" and self._sampled()
        if stored == status and (status != "clear" or sampled):
            payload = {
                "score": None if score is None else round(score, 4),
                "verdict": status,
                "reason": SAMPLED if sampled else problem or f"NSFW score {score:.2f}",
                "scanned_at": time.time(),
                "digest": digest,
            }
            # One item per picture, however many paths show it.
            self.store.open_review(path, "moderation", f"sha256:{digest}", payload)
        return stored

    def _sampled(self) -> bool:
        """Whether a cleared picture also goes to a human (feedback.calibration)."""
        if self.sample_rate <= 0:
            return False
        decide = partial(sample_due, rate=self.sample_rate)
        return self.store.count_in_stratum("calibration:moderation", decide)

    @staticmethod
    def check(path: SourcePath, status: str) -> None:
        if status not in SERVABLE:
            raise HeldForModeration(
                f"{path} is held for moderation review"
                + (" (rejected)" if status == "rejected" else "")
            )

    async def screen(
        self,
        source: Source,
        ref: SourceRef,
        max_bytes: int,
        run: Callable[[Callable[[float], str]], Awaitable[str]],
    ) -> tuple[str, bytes | None]:
        """Fail closed, on the request path: a source's bytes are scanned before they are
        first served (new bytes at a known path included), and held ones raise
        :class:`HeldForModeration` until a human approves them. ``run`` runs the scan in a
        render thread. Returns the verdict, and the bytes when they had to be read for it
        (render those, no others)."""
        status = await asyncio.to_thread(self.known_status, ref.path, ref.identity)
        if status is not None:
            self.check(ref.path, status)
            return status, None
        blob = await source.read(ref, max_bytes)
        status = await run(lambda _deadline: self.scan(ref.path, ref.identity, blob))
        self.check(ref.path, status)
        return status, blob
