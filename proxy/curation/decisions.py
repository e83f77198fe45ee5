"""Where the request path meets the store: human crops to apply, moderation to enforce, and
what a served render leaves behind (jobs for the lane, a crop review for high stakes, the
tallies of AI decisions). Writes happen off the response path; reads are memoised briefly.

What decides a source's images (its decision generation, human crops and the rules covering
it) is read in one transaction and memoised together for at most ``SNAPSHOT_MEMO_S``. The
generation is part of every cache key, so a node that missed a purge message still serves
the new answer once its memo expires, and a render is only stored when the generation is
still the one it was keyed with.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Protocol

from cachetools import LRUCache, TTLCache

from proxy.analysis.crops import ranked_crops as crops
from proxy.cropping.overrides import CropOverride, applicable, aspect_of, common_aspect
from proxy.moderation import Moderator
from proxy.params import HIGH_STAKES, TransformParams
from proxy.processing.rendered import Rendered
from proxy.rules import rules_for
from proxy.sources.paths import SourcePath
from proxy.stores.protocols import (
    FeedbackStore,
    GenerationStore,
    JobStore,
    ReviewStore,
    ServingDecisions,
)
from proxy.windows import SlidingWindow

log = logging.getLogger(__name__)
SNAPSHOT_MEMO_S = 2.0
VERIFY_KIND = "verify"  # proxy.lane.tasks.verify.KIND (not imported: it imports the pipeline)
VERIFY_MEMO_S = 600.0  # a verification queued from here is not queued again for this long


class RequestStore(
    ServingDecisions, GenerationStore, JobStore, ReviewStore, FeedbackStore, Protocol
):
    """What the request path reads and queues: decisions, generations, jobs, reviews and
    the tallies of what the AI decided alone."""


@dataclass(frozen=True)
class Snapshot:
    """What decides one source's images, read together: its decision generation (in the
    cache key), its human crops and the exception rules covering it."""

    generation: int
    crops: tuple[CropOverride, ...]
    rules: frozenset[str]

    def override_for(self, params: TransformParams) -> CropOverride | None:
        if params.fit != "crop" or params.width is None or params.height is None:
            return None
        return applicable(self.crops, params.width, params.height, params.ctx)


class SourceLane(Protocol):
    """What a render tells the background lane (``proxy.lane.lane.Lane``)."""

    def seen(self, path: SourcePath, version: str = "") -> bool: ...

    def enqueue_source(
        self,
        path: SourcePath,
        payload: Mapping[str, Any] | None = None,
        *,
        version: str | None = None,
    ) -> Any: ...


@dataclass(frozen=True)
class ReviewBudget:
    """How many crop reviews anonymous requests may open per minute: each client, and all."""

    per_client: int = 10
    overall: int = 120


class Decisions:
    def __init__(
        self,
        store: RequestStore,
        lane: SourceLane,
        moderator: Moderator,
        io: Executor,
        budget: ReviewBudget | None = None,
    ) -> None:
        self.store = store
        self.lane = lane
        self.moderator = moderator
        self.io = io
        budget = budget or ReviewBudget()
        self._opens_by_client = SlidingWindow(budget.per_client, 60.0)
        self._opens = SlidingWindow(budget.overall, 60.0)
        self._snapshots: TTLCache[str, Snapshot] = TTLCache(maxsize=16_384, ttl=SNAPSHOT_MEMO_S)
        self._counted: LRUCache[str, bool] = LRUCache(maxsize=65_536)
        self._verifying: TTLCache[str, bool] = TTLCache(maxsize=65_536, ttl=VERIFY_MEMO_S)
        self._lock = threading.Lock()

    # -- before rendering ---------------------------------------------------------------

    async def snapshot(self, path: SourcePath) -> Snapshot:
        with self._lock:
            known = self._snapshots.get(path)
        if known is not None:
            return known
        generation, stored, rows = await asyncio.to_thread(self.store.decisions_for, path)
        known = Snapshot(
            generation,
            tuple(stored),
            rules_for(path, rows),
        )
        with self._lock:
            self._snapshots[path] = known
        return known

    async def still_current(self, path: SourcePath, snapshot: Snapshot) -> bool:
        """Whether no decision landed since ``snapshot`` was read (asks the store itself:
        a render that straddled a decision must not be stored as the answer after it)."""
        return await asyncio.to_thread(self.store.generation, path) == snapshot.generation

    def forget_rules(self) -> None:
        """A rule changed: it may cover any source."""
        with self._lock:
            self._snapshots.clear()

    def forget(self, path: SourcePath) -> None:
        """A human changed this source's decisions: stop using memoised ones."""
        with self._lock:
            self._snapshots.pop(path, None)
        self.moderator.forget(path)

    # -- after rendering (in the background) -------------------------------------------

    def rendered(
        self,
        path: SourcePath,
        params: TransformParams,
        result: Rendered,
        version: str = "",
        client: str = "",
    ) -> None:
        """Queue what a fresh render implies; never raises into the response. ``version``:
        the source's identity, so a new picture at the same path gets its own jobs;
        ``client``: who asked, whose review openings are budgeted."""
        self.io.submit(self._after, path, params, result, version, client)

    def _after(
        self,
        path: SourcePath,
        params: TransformParams,
        result: Rendered,
        version: str = "",
        client: str = "",
    ) -> None:
        try:
            plan = result.plan
            if self.lane.seen(path, version):
                processing = f"{plan.format}/{'q=auto' if plan.quality_auto else 'fixed'}"
                payload = {"processing": processing, "policy": plan.policy.name}
                self.lane.enqueue_source(path, payload, version=version or None)
            if (
                plan.crop.by == "ai"
                and plan.analysis is not None
                and not params.turned  # reviews show the source as it is, not turned
                and params.width
                and params.height
            ):
                self._crop_outcome(path, params, result, client)
        except Exception:  # the lane is best effort from here; the response went out
            log.exception("recording the render of %s failed", path)

    def provisional(
        self, path: SourcePath, decisions: str, payload: dict[str, Any], version: str = ""
    ) -> None:
        """Queue the lane's ``verify`` job for a provisional answer: one job per picture
        and decision (``decisions``: the keys it would settle), however many sizes and
        requests share it; a new picture at the path (``version``) verifies again."""
        subject = f"{path}|{decisions}"
        with self._lock:
            if subject in self._verifying:
                return
            self._verifying[subject] = True
        self.io.submit(self._queue_verify, path, subject, payload, version)

    def _queue_verify(
        self, path: SourcePath, subject: str, payload: dict[str, Any], version: str
    ) -> None:
        try:
            self.store.enqueue(
                VERIFY_KIND, subject, {**payload, "path": path}, version=version or None
            )
        except Exception:  # best effort: the next provisional answer queues it again
            log.exception("queueing the verification of %s failed", path)
            with self._lock:
                self._verifying.pop(subject, None)

    def _crop_outcome(
        self, path: SourcePath, params: TransformParams, result: Rendered, client: str
    ) -> None:
        """Tally the AI's crop; in a high-stakes context, open a review of it. Filed under
        the nearest common aspect: one item per source, context and common aspect, however
        many odd sizes are asked for, and openings are budgeted per client and overall."""
        assert params.width is not None and params.height is not None
        aspect = common_aspect(params.width, params.height)
        ctx = params.ctx if params.ctx in HIGH_STAKES else ""
        subject = f"{path}|{aspect}|{ctx}"
        with self._lock:
            if subject in self._counted:
                return
        plan = result.plan
        if params.ctx not in HIGH_STAKES:
            with self._lock:
                self._counted[subject] = True
            self.store.count_outcome("crop", "auto")
            return
        if not self._may_open(client):
            return  # served all the same; a later request may open it
        with self._lock:
            self._counted[subject] = True
        assert plan.analysis is not None
        width, height = _box_of(aspect, params.width)
        candidates = crops(plan.source, plan.analysis, width, height)
        exact = aspect_of(params.width, params.height) == aspect
        served = plan.crop.rect if exact or not candidates else None
        payload: dict[str, Any] = {
            "aspect": aspect,
            "ctx": params.ctx,
            "w": width,
            "h": height,
            "served": (
                [served.x, served.y, served.w, served.h]
                if served is not None
                else [candidates[0][key] for key in ("x", "y", "width", "height")]
            ),
            "candidates": candidates,
            "source": {"width": plan.source.width, "height": plan.source.height},
        }
        if self.store.open_review(path, "crop", subject, payload) is not None:
            self.store.count_outcome("crop", "review")

    def _may_open(self, client: str) -> bool:
        """A review opening within this client's budget and everyone's."""
        if self._opens_by_client.retry_after(client) is not None:
            return False
        if not self._opens.take("*"):
            return False
        self._opens_by_client.record(client)
        return True


def _box_of(aspect: str, width: int) -> tuple[int, int]:
    """A box of ``aspect`` as wide as the request, for the candidates a reviewer sees."""
    w, _, h = aspect.partition(":")
    return width, max(1, round(width * int(h) / int(w)))
