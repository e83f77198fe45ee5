"""What the store knows of a source beside its pixels: its alt text as API.md shows it, and
the part of ``/meta`` that lives in the store (alt text, moderation, QA, duplicates)."""

from __future__ import annotations

from typing import Any, Protocol

from proxy.sources.paths import SourcePath
from proxy.stores.base import AltText
from proxy.stores.protocols import AltStore, QAStore, SourceStore


class FactsStore(AltStore, SourceStore, QAStore, Protocol):
    """What ``/meta`` reads: a source's facts, its alt text, its QA results."""


def alt_json(alt: AltText | None) -> dict[str, Any]:
    """API.md's ``alt`` object; drafts are shown to admins but never published."""
    if alt is None:
        return {
            "text": "",
            "status": "empty",
            "confidence": None,
            "machine_generated": False,
            "model": None,
        }
    return {
        "text": alt.published,
        "status": "empty" if alt.status == "draft" else alt.status,
        "draft": alt.text if alt.status == "draft" else None,
        "confidence": alt.confidence,
        "machine_generated": alt.machine_generated,
        "model": alt.model,
        "reused_from": alt.reused_from,
    }


class StoredFacts:
    def __init__(self, store: FactsStore, duplicate_distance: int) -> None:
        self.store = store
        self.duplicate_distance = duplicate_distance

    def __call__(self, path: SourcePath, phash: str) -> dict[str, Any]:
        """Blocking; run it in a thread."""
        record = self.store.source(path)
        qa = self.store.qa_results(path)
        near = self.store.near_duplicates(phash, self.duplicate_distance, exclude=path)
        return {
            "alt": alt_json(self.store.alt(path)),
            "moderation": {
                "status": record.moderation_status if record else "unscanned",
                "score": record.moderation_score if record else None,
            },
            "qa": {
                "outputs": len(qa),
                "passed": sum(result.passed for result in qa),
                "recent": [{"variant": r.variant, "passed": r.passed, **r.report} for r in qa[:5]],
            },
            "duplicates": [other for other, _distance in near],  # API.md: paths
            "duplicate_distances": {other: distance for other, distance in near},
        }
