"""Stratified review sampling: every stratum gets its share from its first item on, evenly
spread, and the total exceeds the global share by less than one item per stratum."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.qa.sampling import should_sample, stratum

FAST = settings(max_examples=300, deadline=None)
EPS = 1e-9
rates = st.sampled_from([0.005, 0.0075, 0.01, 0.07, 0.1, 0.3, 0.5, 1.0]) | st.floats(
    1e-6, 1.0, allow_nan=False
)


def run(items: list[str], rate: float) -> dict[str, list[bool]]:
    """Feed items to ``should_sample`` with per-stratum counters, as the store does."""
    seen: Counter[str] = Counter()
    sampled: Counter[str] = Counter()
    decisions: dict[str, list[bool]] = defaultdict(list)
    for item in items:
        chosen = should_sample(seen[item], sampled[item], rate)
        seen[item] += 1
        sampled[item] += chosen
        decisions[item].append(chosen)
    return decisions


@st.composite
def skewed_streams(draw: st.DrawFn) -> list[str]:
    """Items from a few strata, one of them common and some rare, interleaved at random."""
    strata = draw(st.integers(1, 8))
    weights = [draw(st.integers(1, 1000)) for _ in range(strata)]
    names = [f"s{n}" for n in range(strata) for _ in range(weights[n])]
    return draw(st.lists(st.sampled_from(names), min_size=1, max_size=3000))


@FAST
@given(skewed_streams(), rates)
def test_each_stratum_gets_its_share_from_the_first_item(items: list[str], rate: float) -> None:
    for decisions in run(items, rate).values():
        assert decisions[0]  # nobody is starved, however rare
        count = 0
        for n, chosen in enumerate(decisions, start=1):
            count += chosen
            # every prefix: at least the share, and less than one item above it
            assert n * rate - EPS <= count < n * rate + 1 + EPS


@FAST
@given(skewed_streams(), rates)
def test_total_is_within_one_item_per_stratum_of_the_global_share(
    items: list[str], rate: float
) -> None:
    decisions = run(items, rate)
    total = sum(sum(chosen) for chosen in decisions.values())
    assert math.ceil(len(items) * rate - EPS) <= total < len(items) * rate + len(decisions) + EPS


@FAST
@given(st.integers(1, 3000), rates)
def test_samples_are_evenly_spread(n: int, rate: float) -> None:
    picked = [i for i, chosen in enumerate(run(["s"] * n, rate)["s"]) if chosen]
    for before, after in pairwise(picked):
        assert 1 / rate - 1 - EPS <= after - before <= 1 / rate + 1 + EPS


@FAST
@given(skewed_streams())
def test_rate_zero_samples_nothing_and_rate_one_everything(items: list[str]) -> None:
    assert not any(any(d) for d in run(items, 0.0).values())
    assert all(all(d) for d in run(items, 1.0).values())


def test_the_rate_is_the_decimal_written() -> None:
    """ceil(100 * 0.07) is 8 in binary floating point; 7 of 100 is the 7% that was meant."""
    assert not should_sample(99, 7, 0.07)
    assert should_sample(100, 7, 0.07)
    assert sum(run(["s"] * 1000, 0.01)["s"]) == 10
    assert sum(run(["s"] * 200, 0.005)["s"]) == 1


@pytest.mark.parametrize(
    ("seen", "sampled", "rate"),
    [(-1, 0, 0.01), (0, -1, 0.01), (3, 4, 0.01), (0, 0, -0.1), (0, 0, 1.5), (0, 0, math.nan)],
)
def test_rejects_impossible_counters_and_rates(seen: int, sampled: int, rate: float) -> None:
    with pytest.raises(ValueError):
        should_sample(seen, sampled, rate)


# -- strata ------------------------------------------------------------------------------


def test_stratum_names() -> None:
    assert stratum("shop/shoes/red.jpg", "photo", "q=auto/webp") == "shop|photo|q=auto/webp"
    assert stratum("/shop/red.jpg", None, "fixed/jpeg") == "shop|-|fixed/jpeg"
    assert stratum("red.jpg", "art", "q=auto/avif") == "-|art|q=auto/avif"
    assert stratum("a|b/c.png", "x|y", "p") == "a%7Cb|x%7Cy|p"
    assert stratum("a%7Cb/c.png", "x", "p") == "a%257Cb|x|p"


segment = st.text(st.characters(blacklist_characters="/"), min_size=1, max_size=8)


@FAST
@given(
    st.lists(segment, min_size=2, max_size=5), st.none() | st.text(max_size=8), st.text(max_size=8)
)
def test_strata_have_three_parts_and_keep_the_top_folder(
    segments: list[str], content_class: str | None, processing: str
) -> None:
    name = stratum("/".join(segments), content_class, processing)
    parts = name.split("|")
    assert len(parts) == 3
    assert parts[0] == segments[0].replace("%", "%25").replace("|", "%7C")
    # the rest of the path does not split a source into several strata
    assert stratum(segments[0] + "/other.png", content_class, processing) == name
