"""Which override applies: properties over any set of stored crops."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.cropping.overrides import (
    COMMON_ASPECTS,
    CropOverride,
    applicable,
    aspect_of,
    common_aspect,
    matches,
    parse_aspect,
    rect_from_json,
    rect_json,
)
from proxy.geometry import Rect
from proxy.sources.paths import SourcePath

ASPECTS = ["any", "16:9", "1:1", "4:5", "9:16", "3:2"]
crops = st.builds(
    CropOverride,
    path=st.just(SourcePath("p.jpg")),
    aspect=st.sampled_from(ASPECTS),
    ctx=st.sampled_from(["", "hero", "social"]),
    rect=st.just(Rect(0, 0, 10, 10)),
    by=st.sampled_from(["user", "human"]),
)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [("16:9", "16:9"), ("32:18", "16:9"), (" ANY ", "any"), ("1.5", "3:2"), ("4:5", "4:5")],
)
def test_parse_aspect(text: str, canonical: str) -> None:
    assert parse_aspect(text) == canonical


@pytest.mark.parametrize("bad", ["", "0:9", "16:", "a:b", "-1:2", "nan", "inf"])
def test_parse_aspect_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_aspect(bad)


def test_rounded_sizes_still_match_their_aspect() -> None:
    assert matches("16:9", 600, 338) and matches("16:9", 1920, 1080)
    assert not matches("16:9", 400, 300) and not matches("1:1", 101, 120)


@given(st.lists(crops, max_size=8), st.integers(1, 4000), st.integers(1, 4000))
def test_the_chosen_override_applies_and_is_the_most_specific(
    stored: list[CropOverride], width: int, height: int
) -> None:
    chosen = applicable(stored, width, height, "hero")
    fitting = [c for c in stored if c.ctx in ("", "hero") and matches(c.aspect, width, height)]
    if not fitting:
        assert chosen is None
        return
    assert chosen in fitting
    if any(c.by == "user" for c in fitting):
        assert chosen.by == "user"  # a user's override always wins
    rivals = [c for c in fitting if c.by == chosen.by]
    if any(c.ctx == "hero" for c in rivals):
        assert chosen.ctx == "hero"


@given(st.lists(crops, max_size=8), st.integers(1, 4000), st.integers(1, 4000))
def test_a_context_crop_never_leaks_into_another_context(
    stored: list[CropOverride], width: int, height: int
) -> None:
    chosen = applicable(stored, width, height, "gallery")
    assert chosen is None or chosen.ctx == ""


@given(st.integers(1, 5000), st.integers(1, 5000), st.integers(1, 20))
def test_every_size_of_an_aspect_matches_it(width: int, height: int, scale: int) -> None:
    aspect = aspect_of(width, height)
    assert matches(aspect, width * scale, height * scale)
    assert parse_aspect(aspect) == aspect


SIDES = st.integers(min_value=1, max_value=100_000)


@given(SIDES, SIDES)
def test_every_aspect_snaps_to_a_common_one(width: int, height: int) -> None:
    snapped = common_aspect(width, height)
    assert snapped in COMMON_ASPECTS
    # Turning the box turns the answer (the common set is symmetric).
    w, _, h = snapped.partition(":")
    assert common_aspect(height, width) == f"{h}:{w}"


@given(st.sampled_from(COMMON_ASPECTS), st.integers(min_value=1, max_value=400))
def test_a_common_aspect_at_any_size_stays_itself(aspect: str, scale: int) -> None:
    w, _, h = aspect.partition(":")
    assert common_aspect(int(w) * scale, int(h) * scale) == aspect
    # A box that rounds to the aspect (600x338 for 16:9) too.
    assert common_aspect(int(w) * scale * 100 + 1, int(h) * scale * 100) == aspect


@given(SIDES, SIDES)
def test_the_snap_is_the_nearest_common_aspect(width: int, height: int) -> None:
    ratio = width / height
    snapped = common_aspect(width, height)
    sw, _, sh = snapped.partition(":")
    distance = abs(math.log(int(sw) / int(sh)) - math.log(ratio))
    for other in COMMON_ASPECTS:
        ow, _, oh = other.partition(":")
        assert distance <= abs(math.log(int(ow) / int(oh)) - math.log(ratio)) + 1e-12


@given(st.lists(st.integers(0, 10_000), min_size=4, max_size=4))
def test_a_rect_round_trips_through_its_json(values: list[int]) -> None:
    rect = rect_from_json(values)
    assert rect == Rect(*values) and rect_json(rect) == values


@pytest.mark.parametrize("bad", [[1, 2, 3], [1, 2, 3, True], [1, 2, 3, 4.0], "1,2,3,4", None])
def test_rect_from_json_refuses_what_is_not_four_integers(bad: object) -> None:
    assert rect_from_json(bad) is None
