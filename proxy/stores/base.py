"""Records the store keeps, and the errors it raises. Plain frozen dataclasses: the server,
the lane and the admin API share them without knowing which database is underneath."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from proxy.errors import LoupeError
from proxy.sources.paths import SourcePath, SourcePrefix

AltStatus = Literal["empty", "draft", "machine", "reviewed", "user"]
Component = Literal["alt", "crop", "qa", "moderation", "sample"]
COMPONENTS: tuple[Component, ...] = ("alt", "crop", "qa", "moderation", "sample")
ReviewStatus = Literal["pending", "accepted", "rejected", "edited"]
JobStatus = Literal["queued", "running", "done", "dead"]
ModerationStatus = Literal["unscanned", "clear", "review", "held", "approved", "rejected"]


class StoreError(LoupeError):
    """The store could not be reached or refused a write: an error, never a silent loss."""


class ReviewNotFound(LoupeError):
    """No review item has that id."""


class ReviewConflict(LoupeError):
    """The review item was already decided."""


@dataclass(frozen=True)
class SourceRecord:
    path: SourcePath
    phash: str | None = None
    width: int | None = None
    height: int | None = None
    format: str | None = None
    bytes: int | None = None
    content_class: str | None = None
    content_confidence: float | None = None
    moderation_status: ModerationStatus = "unscanned"
    moderation_score: float | None = None
    first_seen: float = 0.0
    last_seen: float = 0.0
    faces: int | None = None  # how many faces the analysis found
    dup_group: str | None = None  # its near-duplicates' group (set with the phash)


@dataclass(frozen=True)
class AltText:
    path: SourcePath
    text: str
    status: AltStatus
    phash: str | None = None
    confidence: float | None = None
    model: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    reused_from: str | None = None
    updated: float = 0.0

    @property
    def machine_generated(self) -> bool:
        """True until a human has reviewed or written the text."""
        return self.status in ("draft", "machine")

    @property
    def published(self) -> str:
        """What may be shown to visitors: drafts and empty texts publish nothing."""
        return self.text if self.status in ("machine", "reviewed", "user") else ""


@dataclass(frozen=True)
class ReviewItem:
    id: int
    path: SourcePath
    component: Component
    subject: str
    status: ReviewStatus
    payload: dict[str, Any]
    created: float
    decided: float | None = None
    decision: dict[str, Any] | None = None


@dataclass(frozen=True)
class Feedback:
    """A human decision kept beside the AI output it judged."""

    review_id: int | None
    path: SourcePath
    component: str
    action: str
    ai_output: dict[str, Any]
    correction: dict[str, Any] | None
    reason: str
    reviewer: str
    seconds: float | None
    context: dict[str, Any]
    created: float = 0.0
    id: int = 0


@dataclass(frozen=True)
class QAResult:
    path: SourcePath
    variant: str
    passed: bool
    report: dict[str, Any]
    created: float = 0.0


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    subject: str
    payload: dict[str, Any]
    status: JobStatus
    attempts: int
    run_after: float
    last_error: str | None = None
    worker: str | None = None


@dataclass(frozen=True)
class PurgeItem:
    """A purge waiting in the outbox: ``prefix`` is a source or folder (``""``: all), and
    ``seq`` tells a purge sent from one queued again meanwhile."""

    prefix: SourcePrefix
    reason: str
    seq: int
    attempts: int
    first_queued: float
    last_error: str | None = None
    repeated: bool = False  # this is the follow-up send (cdn.repeat_after_s)


@dataclass(frozen=True)
class SearchHit:
    """A source the search index found, with what it was found by."""

    path: SourcePath
    score: float
    alt: str
    alt_status: str
    content_class: str | None
    faces: int | None
    moderation: str
    dup_group: str | None
