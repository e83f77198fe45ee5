"""Alt text a user writes through the admin API: published at once, and kept as feedback on
what it replaced."""

from __future__ import annotations

from proxy.curation.facts import alt_json
from proxy.sources.paths import SourcePath
from proxy.stores.base import AltText, Feedback


def user_alt(path: SourcePath, text: str, before: AltText | None) -> AltText:
    """The text as stored: whitespace stripped, status user, the picture's phash kept."""
    return AltText(
        path=path, text=text.strip(), status="user", phash=before.phash if before else None
    )


def alt_feedback(stored: AltText, before: AltText | None, reason: str, reviewer: str) -> Feedback:
    """The correction ``stored`` made to ``before`` (published: it replaced a machine text)."""
    return Feedback(
        review_id=None,
        path=stored.path,
        component="alt",
        action="set",
        ai_output=alt_json(before),
        correction={"text": stored.text},
        reason=reason,
        reviewer=reviewer,
        seconds=None,
        context={"published": before is not None and before.status == "machine"},
    )
