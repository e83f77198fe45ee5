"""Collaboration metrics from the store's tallies and feedback: is the AI getting better,
and are the humans' minutes well spent? Pure functions over rows."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from proxy.stores.base import COMPONENTS

CORRECTIONS = frozenset({"edit", "reject", "override", "set"})
TREND_BUCKET = 20  # reviews per point of the time-per-review trend


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def collaboration(
    outcomes: Mapping[str, Mapping[str, int]],
    feedback: Sequence[tuple[str, str, float | None, float, bool, bool]],
    pending: Mapping[str, int],
    off: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """``outcomes``: {component: {auto|review: n}}; ``feedback``: (component, action, seconds,
    created, from_review, after_publication) oldest first; ``pending``: {component: n};
    ``off``: components with nothing to decide, left out of the auto-accept rate."""
    feedback = [f for f in feedback if f[0] in COMPONENTS]  # not calibration's own log
    counted = {name: tally for name, tally in outcomes.items() if name not in off}
    auto = sum(o.get("auto", 0) for o in counted.values())
    total = sum(o.get("auto", 0) + o.get("review", 0) for o in counted.values())
    per_component: dict[str, Any] = {}
    for component in COMPONENTS:
        tally = counted.get(component, {})
        decided = [f for f in feedback if f[0] == component and f[4]]
        overridden = [f for f in decided if f[1] in CORRECTIONS]
        per_component[component] = {
            "auto": tally.get("auto", 0),
            "sent_to_review": tally.get("review", 0),
            "auto_accept_rate": _rate(
                tally.get("auto", 0), tally.get("auto", 0) + tally.get("review", 0)
            ),
            "reviewed": len(decided),
            "override_rate": _rate(len(overridden), len(decided)),
            "pending": pending.get(component, 0),
            "off": component in off,
        }
    seconds = [f[2] for f in feedback if f[4] and f[2] is not None]
    trend = [
        round(statistics.median(seconds[i : i + TREND_BUCKET]), 2)
        for i in range(0, len(seconds), TREND_BUCKET)
    ]
    published = auto
    after_publication = [f for f in feedback if f[5] and f[1] in CORRECTIONS]
    user_initiated = [f for f in feedback if not f[4]]
    return {
        "auto_accept_rate": _rate(auto, total),
        "components": per_component,
        "review_seconds": {
            "median": round(statistics.median(seconds), 2) if seconds else None,
            "count": len(seconds),
            "trend": trend,
            "trend_bucket": TREND_BUCKET,
        },
        "post_publication_correction_rate": _rate(len(after_publication), published),
        "post_publication_corrections": len(after_publication),
        "user_initiated_corrections": len(user_initiated),
        "decisions": len(feedback),
    }
