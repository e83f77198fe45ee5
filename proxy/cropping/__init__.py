"""Crop decisions: where a fixed-size window goes in the source. Pure functions only."""

from proxy.cropping.candidates import (
    STRATEGIES,
    Box,
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
    "Box",
    "Candidate",
    "Evidence",
    "evidence_from",
    "pick",
    "propose",
    "rank",
    "score",
]
