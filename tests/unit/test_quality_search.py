"""The q=auto search: few probes, never below the floor, meets the target when it can."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.quality.decisions import QualityDecisions, size_bucket
from proxy.quality.search import MAX_PROBES, SearchResult, search


def curve(midpoint: float, steepness: float):  # type: ignore[no-untyped-def]
    """A monotone quality -> score curve, like SSIMULACRA2 against JPEG quality."""

    def score(body: bytes) -> float:
        quality = int(body.decode())
        return 100 - 90 / (1 + 2.718 ** (steepness * (quality - midpoint)))

    return score


def encode(quality: int) -> bytes:
    return str(quality).encode()


@settings(max_examples=300, deadline=None)
@given(
    midpoint=st.floats(20, 90),
    steepness=st.floats(0.03, 0.3),
    target=st.floats(60, 90),
    floor=st.integers(1, 95),
    start=st.integers(1, 100),
)
def test_search_properties(
    midpoint: float, steepness: float, target: float, floor: int, start: int
) -> None:
    score = curve(midpoint, steepness)
    result = search(encode, score, target=target, floor=floor, start=start)
    assert result.encodes <= MAX_PROBES
    assert floor <= result.quality <= 100
    assert result.body == encode(result.quality)
    assert abs(result.score - score(result.body)) < 1e-9
    if result.met_target:
        assert result.score >= target
    elif score(encode(100)) >= target and start >= floor:
        # Unreached only when the start was far below and three probes could not climb.
        assert result.encodes == MAX_PROBES


def test_a_good_start_costs_at_most_two_probes() -> None:
    score = curve(60, 0.1)
    exact = next(q for q in range(1, 101) if score(encode(q)) >= 75)
    result = search(encode, score, target=75, floor=1, start=exact)
    assert result.met_target and result.encodes <= 2
    assert result.quality <= exact


def test_the_floor_wins_over_a_lower_answer() -> None:
    result = search(encode, curve(20, 0.2), target=60, floor=85, start=90)
    assert result.quality >= 85


def test_size_buckets_group_nearby_sizes() -> None:
    assert size_bucket(600 * 400) == size_bucket(620 * 410)
    assert size_bucket(600 * 400) != size_bucket(1200 * 800)


def test_decisions_survive_a_new_instance(tmp_path) -> None:  # type: ignore[no-untyped-def]
    first = QualityDecisions(tmp_path)
    key = QualityDecisions.key("abcd", "jpeg", 240_000, "general")
    first.put(key, 71)
    first.close()
    second = QualityDecisions(tmp_path)
    assert second.get(key) == 71
    assert second.get(QualityDecisions.key("abcd", "webp", 240_000, "general")) is None
    second.close()


def test_refining_narrows_to_the_lowest_passing_quality() -> None:
    """The lane's search keeps narrowing where a request's would stop: on a curve that
    flattens, the step up from a failing start lands well above the target."""

    def curve(quality: int) -> float:
        return 100 - 60 * math.exp(-quality / 25)  # reaches 75 at q=22

    def run(refine: bool) -> SearchResult:
        return search(
            lambda q: str(q).encode(),
            lambda body: curve(int(body)),
            target=75,
            floor=1,
            start=10,
            max_probes=6,
            refine=refine,
        )

    quick, refined = run(False), run(True)
    assert quick.met_target and quick.quality == 28  # 5 points above the target
    assert refined.met_target and refined.quality == 22 and refined.encodes <= 6
    assert refined.first_quality == 10
