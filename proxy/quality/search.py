"""Find the lowest quality whose SSIMULACRA2 score meets the target, in few encodes.

A blind binary search costs 5-6 encode+decode+score rounds. Here the predictor proposes
a start, and the measured distance to the target sizes the next step (about
``QUALITY_PER_POINT`` quality steps per score point), so most answers take two probes.
The winning probe's bytes are served as they are: nothing is encoded twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

QUALITY_PER_POINT = 1.2
CLOSE_ENOUGH = 1.0  # score points above the target at which the first probe is accepted
MAX_PROBES = 3


@dataclass(frozen=True)
class Probe:
    quality: int
    score: float
    body: bytes


@dataclass(frozen=True)
class SearchResult:
    quality: int
    score: float
    body: bytes
    encodes: int
    met_target: bool
    first_quality: int = 0  # the first probe: a first answer served at this quality scored
    first_score: float = 0.0  # this (verification starts from what was served)


def _clamp(value: float, low: int, high: int) -> int:
    return int(min(high, max(low, round(value))))


def search(
    encode: Callable[[int], bytes],
    score: Callable[[bytes], float],
    *,
    target: float,
    floor: int,
    start: int,
    max_probes: int = MAX_PROBES,
    refine: bool = False,
) -> SearchResult:
    """``refine`` (the lane, where probes are cheap next to a user's wait): after the usual
    steps, keep narrowing between the lowest passing and the highest failing quality until
    the passing one is within ``CLOSE_ENOUGH`` of the target or ``max_probes`` are spent."""
    probes: list[Probe] = []

    def probe(quality: int) -> float:
        body = encode(quality)
        measured = score(body)
        probes.append(Probe(quality, measured, body))
        return measured

    quality = _clamp(start, floor, 100)
    first = probe(quality)
    if first >= target:
        # Just above the target: a lower quality would almost surely fall below it.
        if quality > floor and first - target > CLOSE_ENOUGH and len(probes) < max_probes:
            step = _clamp((first - target) * QUALITY_PER_POINT, 2, 12)
            probe(max(floor, quality - step))
    else:
        step = _clamp((target - first) * QUALITY_PER_POINT, 2, 25)
        higher = min(100, quality + step)
        second = probe(higher) if higher > quality else first
        if second < target and higher < 100 and len(probes) < max_probes:
            # Secant through the two measurements, overshooting slightly to land above.
            slope = (second - first) / max(higher - quality, 1)
            guess = higher + (target - second) / slope + 1 if slope > 0 else 100
            probe(_clamp(guess, higher + 1, 100))
    while refine and len(probes) < max_probes:
        passing = [p for p in probes if p.score >= target]
        if not passing:
            break
        best = min(passing, key=lambda p: p.quality)
        if best.score - target <= CLOSE_ENOUGH or best.quality <= floor:
            break
        below = [p for p in probes if p.score < target and p.quality < best.quality]
        if below:
            worst = max(below, key=lambda p: p.quality)
            slope = (best.score - worst.score) / max(best.quality - worst.quality, 1)
            guess = best.quality - (best.score - target) / slope if slope > 0 else best.quality
            nxt = _clamp(guess + 0.5, worst.quality + 1, best.quality - 1)
        else:
            step = _clamp((best.score - target) * QUALITY_PER_POINT, 2, 12)
            nxt = max(floor, best.quality - step)
        if nxt >= best.quality or any(p.quality == nxt for p in probes):
            break
        probe(nxt)
    passing = [p for p in probes if p.score >= target]
    chosen = (
        min(passing, key=lambda p: p.quality) if passing else max(probes, key=lambda p: p.score)
    )
    return SearchResult(
        chosen.quality,
        chosen.score,
        chosen.body,
        len(probes),
        bool(passing),
        probes[0].quality,
        probes[0].score,
    )
