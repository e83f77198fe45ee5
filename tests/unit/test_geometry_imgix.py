"""Property tests of the geometry behind the exact-size fix and the imgix names: the side a
request asks for comes out exact, ``fit=max``/``fit=min`` never enlarge, ``ar`` completes a
box and finds the largest window, and ``rot``/``flip`` move boxes without losing them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.geometry import (
    Box,
    Size,
    aspect_box,
    aspect_window,
    fit_inside,
    imgix_fit,
    plan_layout,
    turn_box,
    turned_size,
)

sides = st.integers(1, 6000)
sizes = st.builds(Size, sides, sides)
boxes = st.integers(1, 8192)
aspects = st.tuples(st.integers(1, 50), st.integers(1, 50)).map(
    lambda a: (float(a[0]), float(a[1]))
)
rotations = st.sampled_from((0, 90, 180, 270))
flips = st.sampled_from(("", "h", "v", "hv"))


# --- exact sizes -------------------------------------------------------------------------


@given(sizes, boxes)
def test_an_asked_width_comes_out_exact(region: Size, width: int) -> None:
    out = fit_inside(region, width, None, upscale=True)
    assert out.width == width
    assert abs(out.height - width * region.height / region.width) <= 0.5 or out.height == 1


@given(sizes, boxes)
def test_an_asked_height_comes_out_exact(region: Size, height: int) -> None:
    out = fit_inside(region, None, height, upscale=True)
    assert out.height == height


@given(sizes, boxes, st.booleans())
def test_without_upscale_the_width_is_exact_or_native(
    region: Size, width: int, upscale: bool
) -> None:
    out = fit_inside(region, width, None, upscale=upscale)
    assert out.width == (width if upscale or width < region.width else region.width)


@given(sizes, boxes, boxes)
def test_the_binding_side_of_a_box_is_exact(region: Size, width: int, height: int) -> None:
    out = fit_inside(region, width, height, upscale=True)
    assert out.width <= width and out.height <= height
    assert out.width == width or out.height == height


def test_the_reported_case() -> None:
    """w=3000 of a 1276x850 source with upscale=1 was 2999 px wide."""
    layout = plan_layout(Size(1276, 850), width=3000, height=None, fit="clip", upscale=True)
    assert layout is not None and layout.image == Size(3000, 1998)


# --- fit=max, fit=min ----------------------------------------------------------------------


@pytest.mark.parametrize("upscale", [False, True])
def test_imgix_fits_map_to_loupe_modes_that_never_enlarge(upscale: bool) -> None:
    assert imgix_fit("max", upscale) == ("clip", False)
    assert imgix_fit("min", upscale) == ("crop", False)
    assert imgix_fit("crop", upscale) == ("crop", upscale)


@given(sizes, boxes, boxes, st.booleans())
def test_fit_max_never_enlarges_and_fits_the_box(
    region: Size, width: int, height: int, upscale: bool
) -> None:
    fit, up = imgix_fit("max", upscale)
    layout = plan_layout(region, width=width, height=height, fit=fit, upscale=up)
    assert layout is not None
    assert layout.image.width <= min(width, region.width)
    assert layout.image.height <= min(height, region.height)


@given(sizes, boxes, boxes, st.booleans())
def test_fit_min_keeps_the_box_aspect_without_enlarging(
    region: Size, width: int, height: int, upscale: bool
) -> None:
    fit, up = imgix_fit("min", upscale)
    layout = plan_layout(region, width=width, height=height, fit=fit, upscale=up)
    assert layout is not None
    out = layout.image
    assert out.width <= min(width, region.width) and out.height <= min(height, region.height)
    # The aspect is the box's, to within the rounding of one pixel on either side.
    assert abs(out.width * height - out.height * width) <= width + height


# --- ar ------------------------------------------------------------------------------------


@given(boxes, aspects)
def test_ar_completes_the_missing_side(width: int, aspect: tuple[float, float]) -> None:
    completed = aspect_box(width, None, aspect)
    assert completed is not None and completed[0] == width
    assert abs(completed[1] - width * aspect[1] / aspect[0]) <= 0.5 or completed[1] == 1
    by_height = aspect_box(None, width, aspect)
    assert by_height is not None and by_height[1] == width
    assert aspect_box(width, width, aspect) is None and aspect_box(None, None, aspect) is None


@given(sizes, aspects)
def test_ar_alone_is_the_largest_window_of_that_aspect(
    region: Size, aspect: tuple[float, float]
) -> None:
    window = aspect_window(region, aspect)
    assert window.width <= region.width and window.height <= region.height
    assert window.width == region.width or window.height == region.height
    layout = plan_layout(region, width=None, height=None, fit="crop", upscale=False, aspect=aspect)
    assert layout is not None and layout.image == window
    assert (layout.window.w, layout.window.h) == (window.width, window.height)


# --- rot, flip -----------------------------------------------------------------------------


@st.composite
def boxes_in(draw: st.DrawFn) -> tuple[Size, Box]:
    size = draw(sizes)
    x = draw(st.integers(0, size.width - 1))
    y = draw(st.integers(0, size.height - 1))
    w = draw(st.integers(1, size.width - x))
    h = draw(st.integers(1, size.height - y))
    return size, Box(float(x), float(y), float(w), float(h), 0.7)


@given(boxes_in(), rotations, flips)
def test_a_turned_box_stays_inside_and_keeps_its_area(
    found: tuple[Size, Box], rotate: int, flip: str
) -> None:
    size, box = found
    out = turn_box(box, size, rotate, flip)
    turned = turned_size(size, rotate)
    assert out.x >= 0 and out.y >= 0 and out.x + out.w <= turned.width
    assert out.y + out.h <= turned.height
    assert out.area == box.area and out.score == box.score


@given(boxes_in())
def test_four_quarter_turns_and_two_flips_are_the_identity(
    found: tuple[Size, Box],
) -> None:
    size, box = found
    turned, current = size, box
    for _ in range(4):
        current = turn_box(current, turned, 90, "")
        turned = turned_size(turned, 90)
    assert current == box
    flipped = turn_box(box, size, 0, "hv")
    assert turn_box(flipped, size, 0, "hv") == box
    assert turn_box(box, size, 180, "") == flipped  # half a turn is both flips


def test_a_quarter_turn_moves_the_top_left_corner_to_the_top_right() -> None:
    size = Size(400, 300)
    assert turn_box(Box(0, 0, 10, 20), size, 90, "") == Box(280, 0, 20, 10)
    assert turn_box(Box(0, 0, 10, 20), size, 270, "") == Box(0, 390, 20, 10)
