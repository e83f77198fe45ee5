"""What a confidence means: human decisions binned by the AI's confidence, the share the
humans accepted as is per bin (a reliability diagram), and the lowest threshold whose
outputs at or above it reach ``calibration.target_precision``.

Per component, the confidence and what "accepted as is" means:

- ``alt``: the VLM's confidence in its text; the human accepted the text unchanged.
- ``moderation``: how sure the model is the picture is safe (1 - NSFW score); the human
  approved it. Its threshold maps back to ``moderation.review_threshold`` (1 - t).
- ``crop``: the top candidate's score; the human kept candidate 1.

Decisions come from review items (low confidence, mostly) and from the sampling of
auto-accepted outputs (``payload.reason == "sampled"``), which is what measures the high
bins. Pure functions over rows; the store and the admin API do the rest.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from proxy.config import CalibrationConfig
from proxy.stores.base import Feedback

CALIBRATED: tuple[str, ...] = ("alt", "moderation", "crop")
SAMPLED = "sampled"  # the reason of a review item opened for an auto-accepted output


@dataclass(frozen=True)
class Observation:
    component: str
    confidence: float
    accepted: bool  # the human kept the AI's output as it was
    sampled: bool  # an auto-accepted output sampled for a human look


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1:
        return float(value)
    return None


def observation(event: Feedback) -> Observation | None:
    """The (confidence, accepted as is) a review decision says, or None (no confidence:
    a failure, a changed picture, a user's own edit outside review)."""
    if event.review_id is None or event.component not in CALIBRATED:
        return None
    output = event.ai_output or {}
    sampled = output.get("reason") == SAMPLED
    if event.component == "alt":
        confidence = _number(output.get("confidence"))
        accepted = event.action == "accept"
    elif event.component == "moderation":
        score = _number(output.get("score"))
        confidence = None if score is None else 1.0 - score
        accepted = event.action == "accept"
    else:
        candidates = output.get("candidates") or []
        top = candidates[0] if candidates and isinstance(candidates[0], dict) else {}
        confidence = _number(top.get("score"))
        picked = (event.correction or {}).get("candidate")
        accepted = event.action == "accept" or (event.action == "edit" and picked == 1)
    if confidence is None:
        return None
    return Observation(event.component, confidence, accepted, sampled)


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def reliability(observed: Sequence[Observation], bins: int) -> list[dict[str, Any]]:
    """``bins`` equal confidence bins over [0, 1] (the last one closed)."""
    counts = [0] * bins
    accepted = [0] * bins
    for seen in observed:
        index = min(bins - 1, int(seen.confidence * bins))
        counts[index] += 1
        accepted[index] += int(seen.accepted)
    return [
        {
            "low": round(i / bins, 4),
            "high": round((i + 1) / bins, 4),
            "count": counts[i],
            "accepted": accepted[i],
            "share_accepted": _share(accepted[i], counts[i]),
        }
        for i in range(bins)
    ]


def threshold_for(
    observed: Sequence[Observation], target: float, min_decisions: int
) -> tuple[float, float, int] | None:
    """The lowest confidence t such that the decisions at or above t number at least
    ``min_decisions`` and the humans accepted at least ``target`` of them as is:
    (t, that precision, that count); None when no t reaches it."""
    ranked = sorted(observed, key=lambda o: o.confidence, reverse=True)
    best: tuple[float, float, int] | None = None
    kept = 0
    for index, seen in enumerate(ranked):
        kept += int(seen.accepted)
        count = index + 1
        if index + 1 < len(ranked) and ranked[index + 1].confidence == seen.confidence:
            continue  # a threshold takes every output of its confidence
        precision = kept / count
        if count >= min_decisions and precision >= target:
            best = (seen.confidence, round(precision, 4), count)
    return best


def calibrate(
    events: Iterable[Feedback],
    config: CalibrationConfig,
    population: Mapping[str, Sequence[float]],
    current: Mapping[str, float | None],
) -> dict[str, Any]:
    """Per component: bins, the proposed threshold and the auto-accept rate it would give
    over ``population`` (the confidences of every output the store knows of the component;
    empty: of the decided ones), and the ``current`` threshold."""
    observed: dict[str, list[Observation]] = {name: [] for name in CALIBRATED}
    for event in events:
        found = observation(event)
        if found is not None:
            observed[found.component].append(found)
    components: dict[str, Any] = {}
    for name in CALIBRATED:
        seen = observed[name]
        known = list(population.get(name) or ())
        over = known or [o.confidence for o in seen]
        proposal = threshold_for(seen, config.target_precision, config.min_decisions)
        accepted = sum(o.accepted for o in seen)
        entry: dict[str, Any] = {
            "decisions": len(seen),
            "sampled": sum(o.sampled for o in seen),
            "accepted_as_is": _share(accepted, len(seen)),
            "bins": reliability(seen, config.bins),
            "current_threshold": current.get(name),
            "current_auto_accept_rate": _rate_at(over, current.get(name)),
            "threshold": None,
            "precision": None,
            "decisions_above": 0,
            "auto_accept_rate": None,
            "rate_of": "outputs" if known else "decided outputs",
        }
        if proposal is not None:
            threshold, precision, count = proposal
            entry |= {
                "threshold": round(threshold, 4),
                "precision": precision,
                "decisions_above": count,
                "auto_accept_rate": _rate_at(over, threshold),
            }
        components[name] = entry
    return {
        "target_precision": config.target_precision,
        "min_decisions": config.min_decisions,
        "apply": config.apply,
        "components": components,
    }


def _rate_at(confidences: Sequence[float], threshold: float | None) -> float | None:
    if threshold is None or not confidences:
        return None
    return _share(sum(c >= threshold for c in confidences), len(confidences))


# The settings a calibrated threshold replaces when ``calibration.apply`` is on: the alt
# text threshold as it is, moderation's review threshold as 1 - t. Crops have none (every
# high-stakes crop is reviewed): their threshold is shown, never applied.
SETTINGS: dict[str, str] = {
    "alt": "vlm.confidence_threshold",
    "moderation": "moderation.review_threshold",
}


def to_setting(component: str, threshold: float) -> float:
    """A confidence threshold as the value of the component's setting."""
    return round(1.0 - threshold, 4) if component == "moderation" else round(threshold, 4)


def from_setting(component: str, value: float) -> float:
    return round(1.0 - value, 4) if component == "moderation" else round(value, 4)


def sample_due(seen: int, sampled: int, *, rate: float) -> bool:
    """Whether the next auto-accepted output goes to a human: the 1/rate-th, 2/rate-th ...
    of each stratum (never the first by default: a small site's few outputs stay auto)."""
    if rate <= 0:
        return False
    due = math.floor((seen + 1) * Fraction(repr(float(rate))))
    return sampled < due
