"""Crop decisions: where a fixed-size window goes in the source. Pure functions only."""

from proxy.cropping.candidates import (
    STRATEGIES,
    Candidate,
    Evidence,
    evidence_from,
    pick,
    propose,
    rank,
    score,
)

__all__ = [
    "STRATEGIES",
    "Candidate",
    "Evidence",
    "evidence_from",
    "pick",
    "propose",
    "rank",
    "score",
]
