"""Alt text for a source: reuse what the same picture already has, else ask the VLM.

Empty is better than wrong: only a confident answer is published (``status=machine``); a
doubtful one is kept as a draft for review, and any failure leaves the text empty and opens
a review item. A human's text is never overwritten.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Protocol

from proxy.alt.client import (
    AltTextError,
    VlmClient,
    VlmDisabled,
    VlmRateLimited,
    VlmTimeout,
    VlmUnavailable,
)
from proxy.alt.context import AltContext, context_for
from proxy.feedback.calibration import SAMPLED, sample_due
from proxy.feedback.costs import CostMeter
from proxy.lane.reading import SourceBytes
from proxy.lane.worker import JobFailed
from proxy.rules import rules_for
from proxy.sources.paths import SourcePath, canonical_path
from proxy.stores.base import AltText, Job
from proxy.stores.protocols import AltStore, FeedbackStore, QAStore, ReviewStore, RuleStore

log = logging.getLogger(__name__)
KIND = "alt"
CLAIM_POLL_S = 0.25
TRANSIENT = (VlmTimeout, VlmRateLimited, VlmUnavailable)


class DescribeStore(AltStore, RuleStore, ReviewStore, FeedbackStore, QAStore, Protocol):
    """Alt texts, the rules that turn them off, the review queue, the threshold and
    outcome tallies, and the calibration sample."""


class DescribeTask:
    def __init__(
        self,
        store: DescribeStore,
        client: VlmClient,
        sources: SourceBytes,
        fingerprint: Callable[[bytes], str],
        threshold: float,
        max_attempts: int,
        claim_s: float = 60.0,
        meter: CostMeter | None = None,
        sample_rate: float = 0.0,
    ) -> None:
        self.sample_rate = sample_rate  # confident texts also sent for a look (calibration)
        self.meter = meter if meter is not None else CostMeter(None)
        self.claim_s = claim_s  # how long one describer holds a picture (the VLM timeout+)
        self.store = store
        self.client = client
        self.sources = sources
        self.fingerprint = fingerprint
        self.threshold = threshold
        self.max_attempts = max_attempts

    async def __call__(self, job: Job) -> None:
        path = canonical_path(job.subject)
        rules = await asyncio.to_thread(self.store.rules)
        if "no-alt-text" in rules_for(path, [(prefix, rule) for prefix, rule, *_ in rules]):
            return  # a reviewer ruled these sources out of machine descriptions
        current = await asyncio.to_thread(self.store.alt, path)
        blob = await self.sources.read(path)
        phash = await asyncio.to_thread(self.fingerprint, blob)
        if current is not None and current.status in ("reviewed", "user"):
            if current.phash and current.phash != phash:
                # A new picture under a human's words: they may no longer be true. The
                # human decides; the lane never replaces what a person wrote.
                changed = {
                    "reason": "picture-changed",
                    "draft": current.text,
                    "previous_phash": current.phash,
                    "phash": phash,
                }
                await asyncio.to_thread(self.store.open_review, path, KIND, path, changed)
            return  # a human has spoken
        if (
            job.payload.get("reason") == "source-changed"
            and current is not None
            and current.phash == phash
        ):
            return  # new bytes, the same picture (re-saved, re-compressed): its words stand
        # No VLM: no model call to save, so no waiting on another worker's claim (it
        # leaves an empty text and never releases it: 35 s lost per duplicate).
        if await self._reuse(path, phash, wait=self.client.enabled):
            return
        if not self.client.enabled:
            # Nothing for a human to decide either: no review item, no tally (alt is "off").
            empty = AltText(path=path, text="", status="empty", phash=phash)
            await asyncio.to_thread(self.store.put_machine_alt, empty)
            return
        # EXIF and the sidecar file: parsing and file I/O, kept off the event loop.
        context = await asyncio.to_thread(self._context, path, blob, job)
        began = time.perf_counter()
        try:
            draft = await self.client.describe(blob, context)
            # the VLM's CPU is the VLM server's: here only its wall time and tokens
            self.meter.ran("vlm", time.perf_counter() - began, 0.0)
            self.meter.tokens(draft.tokens_in, draft.tokens_out)
        except AltTextError as exc:
            await self._leave_empty(path, phash, context, exc)
            if isinstance(exc, TRANSIENT) and job.attempts < self.max_attempts:
                retry = exc.retry_after_s if isinstance(exc, VlmRateLimited) else None
                raise JobFailed(f"alt text: {exc.reason}", retry_in_s=retry) from exc
            return
        applied = await asyncio.to_thread(self.store.threshold, KIND)  # calibration.apply
        threshold = self.threshold if applied is None else applied
        confident = draft.confidence >= threshold
        alt = AltText(
            path=path,
            text=draft.text,
            status="machine" if confident else "draft",
            phash=phash,
            confidence=round(draft.confidence, 4),
            model=draft.model,
            context={**context.to_json(), "confidence_source": draft.confidence_source},
        )
        stored = await asyncio.to_thread(self.store.put_machine_alt, alt)
        if stored:
            outcome = "auto" if confident else "review"
            await asyncio.to_thread(self.store.count_outcome, KIND, outcome)
        sampled = stored and confident and await self._sampled()
        if stored and (sampled or not confident):
            payload = {
                "reason": SAMPLED if sampled else "low-confidence",
                "draft": draft.text,
                "confidence": alt.confidence,
                "model": draft.model,
                "threshold": threshold,
            }
            await asyncio.to_thread(self.store.open_review, path, KIND, path, payload)

    async def _sampled(self) -> bool:
        """Whether a published text also goes to a human: what measures the confidence of
        the high bins (feedback.calibration). Stratified like QA sampling."""
        if self.sample_rate <= 0:
            return False
        decide = partial(sample_due, rate=self.sample_rate)
        return await asyncio.to_thread(self.store.count_in_stratum, "calibration:alt", decide)

    async def _reuse(self, path: SourcePath, phash: str, *, wait: bool = True) -> bool:
        """Take the text the same picture has under another path; while another worker is
        describing it, wait for that text rather than paying for a second model call."""
        deadline = time.monotonic() + self.claim_s
        while True:
            known = await asyncio.to_thread(self.store.alt_by_phash, phash, exclude=path)
            if known is not None:  # the same picture under another path: no model call
                reused = replace(known, path=path, phash=phash, reused_from=known.path)
                await asyncio.to_thread(self.store.put_machine_alt, reused)
                self.meter.saved("vlm", "phash")  # the same picture: no model call
                return True
            if not wait:
                return False
            claimed = await asyncio.to_thread(self.store.claim_phash, phash, path, self.claim_s)
            if claimed or time.monotonic() > deadline:
                return False
            await asyncio.sleep(CLAIM_POLL_S)

    def _context(self, path: SourcePath, blob: bytes, job: Job) -> AltContext:
        base = context_for(path, blob, self.sources.sidecar(path))
        given = job.payload  # ingest may pass a caption or title
        return replace(
            base,
            caption=given.get("caption") or base.caption,
            title=given.get("title") or base.title,
        )

    async def _leave_empty(
        self, path: SourcePath, phash: str, context: AltContext | None, exc: AltTextError
    ) -> None:
        if isinstance(exc, VlmDisabled):  # said once at start (lane.assemble), not per image
            log.debug("alt text for %s: %s (%s)", path, exc.reason, exc)
        else:
            log.warning("alt text for %s: %s (%s)", path, exc.reason, exc)
        hints = context.to_json() if context is not None else {}
        empty = AltText(path=path, text="", status="empty", phash=phash, context=hints)
        stored = await asyncio.to_thread(self.store.put_machine_alt, empty)
        if stored:
            payload = {"reason": exc.reason, "detail": str(exc)[:300], "draft": ""}
            opened = await asyncio.to_thread(self.store.open_review, path, KIND, path, payload)
            if opened is not None:
                await asyncio.to_thread(self.store.count_outcome, KIND, "review")
