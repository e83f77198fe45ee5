"""What each consumer of the store depends on: one small protocol per aggregate, matching a
module of ``proxy.stores.sql``. A consumer names the protocols it uses (an intersection of a
few where it needs several), not the whole ``SqlStore``, so what it can touch is visible in
its signature and a test can hand it a small fake. ``SqlStore`` satisfies every one; the
check at the end of this module keeps it so."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from proxy.cropping.overrides import CropOverride
from proxy.sources.paths import SourcePath, SourcePrefix
from proxy.stores.base import (
    AltText,
    Feedback,
    Job,
    PurgeItem,
    QAResult,
    ReviewItem,
    SearchHit,
    SourceRecord,
)
from proxy.stores.sql.core import Tx

if TYPE_CHECKING:
    from proxy.stores.sql import SqlStore


class SourceStore(Protocol):
    """The facts known of each source, and its near-duplicates: the lane's fingerprint task
    writes them, the server's metadata reads them."""

    def record_source(self, record: SourceRecord) -> tuple[SourceRecord, bool]: ...

    def source(self, path: SourcePath) -> SourceRecord | None: ...

    def near_duplicates(
        self, phash: str, max_distance: int, *, exclude: SourcePath | None = None
    ) -> list[tuple[SourcePath, int]]: ...

    def sources_seen(self, since: float = 0.0) -> int: ...


class ModerationStore(Protocol):
    """Verdicts on content (by digest) and the sources that hold it."""

    def set_moderation(self, path: SourcePath, status: str, score: float | None) -> None: ...

    def moderation_of(self, path: SourcePath, identity: str) -> str | None: ...

    def bind_content(self, path: SourcePath, identity: str, digest: str) -> str | None: ...

    def moderation_of_digest(self, digest: str) -> str | None: ...

    def set_verdict(
        self, digest: str, status: str, score: float | None, *, human: bool = False
    ) -> list[SourcePath]: ...

    def apply_verdict(
        self, tx: Tx, digest: str, status: str, score: float | None, *, human: bool
    ) -> list[SourcePath]: ...

    def apply_moderation(self, tx: Tx, path: SourcePath, status: str) -> None: ...

    def nsfw_scores(self) -> list[float]: ...


class GenerationStore(Protocol):
    """Decision generations: part of every cache key."""

    def bump_generation(self, prefix: SourcePrefix, reason: str = "purge") -> None: ...

    def generation(self, path: SourcePath) -> int: ...


class PurgeStore(Protocol):
    """The CDN purge outbox, as its sender and the metrics see it."""

    def queue_purge(self, prefix: SourcePrefix, reason: str) -> None: ...

    def claim_purges(self, limit: int, lease_s: float) -> list[PurgeItem]: ...

    def purges_sent(self, items: Sequence[PurgeItem], repeat_after_s: float = 0.0) -> None: ...

    def release_purges(self, items: Sequence[PurgeItem]) -> None: ...

    def purges_failed(
        self,
        items: Sequence[PurgeItem],
        error: str,
        retry_in: Callable[[int], float],
        dead_after_s: float,
    ) -> int: ...

    def purge_counts(self) -> dict[str, float]: ...

    def purges(self, status: str = "dead", limit: int = 50) -> list[PurgeItem]: ...


class OverrideStore(Protocol):
    """Human crops."""

    def put_override(self, override: CropOverride) -> CropOverride: ...

    def overrides(self, path: SourcePath) -> list[CropOverride]: ...

    def delete_overrides(self, path: SourcePath, aspect: str | None = None) -> int: ...

    def apply_override(self, tx: Tx, override: CropOverride) -> None: ...

    def put_override_with_feedback(self, override: CropOverride, feedback: Feedback) -> None: ...


class RuleStore(Protocol):
    """Exception rules for a source or a folder."""

    def put_rule(self, prefix: SourcePrefix, rule: str, reviewer: str, reason: str) -> None: ...

    def rules(self) -> list[tuple[SourcePrefix, str, str, str, float]]: ...

    def delete_rule(self, prefix: SourcePrefix, rule: str) -> bool: ...


class ServingDecisions(Protocol):
    """The one consistent read of what decides a path's images."""

    def decisions_for(
        self, path: SourcePath
    ) -> tuple[int, list[CropOverride], list[tuple[SourcePrefix, str]]]: ...


class SessionStore(Protocol):
    """Reviewers' signed-in sessions."""

    def open_session(self, key: str, reviewer: str, expires: float) -> None: ...

    def session_open(self, key: str) -> bool: ...

    def close_session(self, key: str) -> bool: ...


class AltStore(Protocol):
    """Alt texts, and the claims that keep a picture from being described twice."""

    def put_alt(self, alt: AltText) -> AltText: ...

    def put_machine_alt(self, alt: AltText) -> bool: ...

    def alt(self, path: SourcePath) -> AltText | None: ...

    def alt_by_phash(self, phash: str, *, exclude: SourcePath | None = None) -> AltText | None: ...

    def claim_phash(self, phash: str, path: SourcePath, ttl_s: float) -> bool: ...

    def apply_alt(self, tx: Tx, alt: AltText) -> None: ...

    def alt_confidences(self) -> list[float]: ...


class ReviewStore(Protocol):
    """The review queue."""

    def open_review(
        self, path: SourcePath, component: str, subject: str, payload: dict[str, Any]
    ) -> ReviewItem | None: ...

    def review(self, item_id: int) -> ReviewItem: ...

    def reviews(
        self,
        *,
        status: str | None = "pending",
        component: str | None = None,
        path: SourcePath | None = None,
        limit: int = 50,
        after_id: int = 0,
    ) -> list[ReviewItem]: ...

    def review_counts(self) -> dict[str, dict[str, int]]: ...

    def decide_review(
        self,
        item_id: int,
        status: str,
        decision: dict[str, Any],
        feedback: Feedback,
        *,
        apply: Callable[[Tx], None] | None = None,
    ) -> ReviewItem: ...


class FeedbackStore(Protocol):
    """Human decisions beside the AI output they judged, outcome tallies and thresholds."""

    def add_feedback(self, feedback: Feedback) -> None: ...

    def feedback(self, *, since: float = 0.0, limit: int = 10000) -> Iterator[Feedback]: ...

    def feedback_rows(self) -> list[tuple[str, str, float | None, float, bool, bool]]: ...

    def count_outcome(self, component: str, outcome: str, n: int = 1) -> None: ...

    def outcomes(self) -> dict[str, dict[str, int]]: ...

    def threshold(self, component: str) -> float | None: ...

    def set_threshold(
        self, component: str, value: float, configured: float | None, feedback: Feedback
    ) -> None: ...


class QAStore(Protocol):
    """QA results and the sampling strata."""

    def put_qa(self, result: QAResult) -> None: ...

    def put_qa_many(self, results: Sequence[QAResult]) -> None: ...

    def qa_results(self, path: SourcePath, limit: int = 20) -> list[QAResult]: ...

    def count_in_stratum(self, stratum: str, decide: Callable[[int, int], bool]) -> bool: ...


class JobStore(Protocol):
    """The lane's job queue."""

    def enqueue(
        self,
        kind: str,
        subject: str,
        payload: dict[str, Any] | None = None,
        *,
        delay_s: float = 0.0,
        again: bool = False,
        version: str | None = None,
    ) -> bool: ...

    def claim(self, worker: str, lease_s: float) -> Job | None: ...

    def finish(self, job: Job, worker: str) -> bool: ...

    def fail(self, job: Job, worker: str, error: str, *, retry_in_s: float | None) -> str: ...

    def job(self, kind: str, subject: str) -> Job | None: ...

    def job_counts(self) -> dict[str, int]: ...


class QualityStore(Protocol):
    """q=auto's verified decisions and measured training pairs."""

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

    def add_quality_pair(
        self,
        phash: str,
        features: Sequence[float],
        fmt: str,
        target: float,
        quality: int,
        score: float | None,
        bucket: int = 0,
    ) -> None: ...

    def quality_pairs(self) -> list[tuple[str, list[float], str, float, int]]: ...

    def count_quality_pairs(self) -> int: ...


class CostStore(Protocol):
    """Daily AI cost tallies."""

    def add_costs(self, day: str, tallies: Mapping[str, Mapping[str, float]]) -> None: ...

    def costs(self, since_day: str = "") -> list[tuple[Any, ...]]: ...


class SearchStore(Protocol):
    """The search index."""

    def search(
        self,
        query: str,
        *,
        content_class: str | None = None,
        folder: str | None = None,
        limit: int = 20,
    ) -> list[SearchHit]: ...


if TYPE_CHECKING:

    def _satisfies_every_protocol(store: SqlStore) -> None:
        _0: SourceStore = store
        _1: ModerationStore = store
        _2: GenerationStore = store
        _3: PurgeStore = store
        _4: OverrideStore = store
        _5: RuleStore = store
        _6: ServingDecisions = store
        _7: SessionStore = store
        _8: AltStore = store
        _9: ReviewStore = store
        _10: FeedbackStore = store
        _11: QAStore = store
        _12: JobStore = store
        _13: QualityStore = store
        _14: CostStore = store
        _15: SearchStore = store
