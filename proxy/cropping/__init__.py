"""Crop decisions: where a fixed-size window goes in the source. Pure functions only."""

from proxy.cropping.candidates import (
    STRATEGIES,
    Candidate,
    evidence_from,
    pick,
    propose,
    rank,
)
from proxy.cropping.scoring import Evidence, score

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
