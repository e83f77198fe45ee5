"""Property tests for the pure fit/crop geometry in ``proxy.geometry``."""

from __future__ import annotations

from typing import Any, get_args

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.geometry import (
    Fit,
    Layout,
    Rect,
    Size,
    clamp_region,
    place_window,
    plan_layout,
    shrink_on_load,
    window_size,
)

FITS: tuple[Fit, ...] = get_args(Fit)
MAX_SOURCE = 20_000
MAX_BOX = 8192

sides = st.integers(1, MAX_SOURCE)
sources = st.builds(Size, sides, sides)
box_sides = st.integers(1, MAX_BOX)
maybe_side = st.none() | box_sides
fits = st.sampled_from(FITS)
unit = st.floats(0, 1, allow_nan=False)
FAST = settings(max_examples=300, deadline=None)


@st.composite
def rects_for(draw: st.DrawFn, source: Size, overlapping: bool = True) -> Rect | None:
    """No rect, or one that overlaps the source (or, unless ``overlapping``, may miss it)."""
    if draw(st.booleans()):
        return None
    slack = 0 if overlapping else 51
    x = draw(st.integers(0, source.width - 1 + slack))
    y = draw(st.integers(0, source.height - 1 + slack))
    w = draw(st.integers(1, source.width + 100))
    h = draw(st.integers(1, source.height + 100))
    return Rect(x, y, w, h)


@st.composite
def requests(
    draw: st.DrawFn, fit: st.SearchStrategy[Fit] = fits, overlapping: bool = True
) -> dict[str, Any]:
    source = draw(sources)
    return {
        "source": source,
        "width": draw(maybe_side),
        "height": draw(maybe_side),
        "fit": draw(fit),
        "upscale": draw(st.booleans()),
        "rect": draw(rects_for(source, overlapping)),
        "focal": (draw(unit), draw(unit)),
    }


def layout_for(req: dict[str, Any]) -> Layout:
    source = req["source"]
    args = {key: value for key, value in req.items() if key != "source"}
    layout = plan_layout(source, **args)
    assert layout is not None, req
    return layout


def inside(inner: Rect, outer: Rect) -> bool:
    return (
        inner.x >= outer.x
        and inner.y >= outer.y
        and inner.x + inner.w <= outer.x + outer.w
        and inner.y + inner.h <= outer.y + outer.h
    )


def whole(source: Size) -> Rect:
    return Rect(0, 0, source.width, source.height)


# --- clamp_region ----------------------------------------------------------------------------


@FAST
@given(st.data())
def test_clamp_region_is_the_exact_intersection(data: st.DataObject) -> None:
    source = data.draw(sources)
    rect = data.draw(rects_for(source, overlapping=False))
    clamped = clamp_region(rect, source)
    if rect is None:
        assert clamped == whole(source)
        return
    overlaps = rect.x < source.width and rect.y < source.height
    assert (clamped is not None) == overlaps
    if clamped is None:
        return
    assert clamped.w >= 1 and clamped.h >= 1
    assert inside(clamped, whole(source))
    assert inside(clamped, rect)
    assert (clamped.x, clamped.y) == (rect.x, rect.y)
    assert clamped.w == min(rect.x + rect.w, source.width) - rect.x
    assert clamped.h == min(rect.y + rect.h, source.height) - rect.y


def test_clamp_region_examples() -> None:
    source = Size(100, 50)
    assert clamp_region(Rect(90, 40, 100, 100), source) == Rect(90, 40, 10, 10)
    assert clamp_region(Rect(100, 0, 5, 5), source) is None
    assert clamp_region(Rect(0, 50, 5, 5), source) is None
    assert clamp_region(Rect(10, 10, 20, 20), source) == Rect(10, 10, 20, 20)


# --- plan_layout: containment ----------------------------------------------------------------


@FAST
@given(requests(overlapping=False))
def test_layout_stays_inside_the_source_and_rect(req: dict[str, Any]) -> None:
    source, rect = req["source"], req["rect"]
    expected_region = clamp_region(rect, source)
    args = {key: value for key, value in req.items() if key != "source"}
    layout = plan_layout(source, **args)
    if expected_region is None:
        assert layout is None
        return
    assert layout is not None
    assert layout.region == expected_region
    assert inside(layout.region, whole(source))
    if rect is not None:
        assert inside(layout.region, rect)
    assert inside(layout.window, layout.region)
    for size in (layout.window.w, layout.window.h, layout.image.width, layout.image.height):
        assert size >= 1
    # The image sits on the canvas without spilling over.
    ox, oy = layout.offset
    assert ox >= 0 and oy >= 0
    assert ox + layout.image.width <= layout.canvas.width
    assert oy + layout.image.height <= layout.canvas.height
    if req["fit"] != "crop" or req["width"] is None or req["height"] is None:
        assert layout.window == layout.region
        assert not layout.needs_window


# --- plan_layout: output size ----------------------------------------------------------------


@FAST
@given(requests(), box_sides, box_sides)
def test_output_is_exactly_the_box_when_it_can_be(
    req: dict[str, Any], width: int, height: int
) -> None:
    req = {**req, "width": width, "height": height}
    layout = layout_for(req)
    box = Size(width, height)
    region = layout.region
    big_enough = region.w >= width and region.h >= height
    if req["fit"] == "fill":
        assert layout.canvas == box
    elif req["fit"] in ("crop", "scale") and (req["upscale"] or big_enough):
        assert layout.canvas == box
        assert layout.image == box


@FAST
@given(requests())
def test_without_upscale_never_larger_than_the_region(req: dict[str, Any]) -> None:
    req = {**req, "upscale": False}
    layout = layout_for(req)
    assert layout.image.width <= layout.region.w
    assert layout.image.height <= layout.region.h
    if req["fit"] != "fill":
        assert layout.canvas == layout.image


@FAST
@given(requests(fit=st.sampled_from(("clip", "fill"))))
def test_clip_keeps_the_aspect_and_fits_the_box(req: dict[str, Any]) -> None:
    layout = layout_for(req)
    region, image = layout.region, layout.image
    # Each side is within one pixel of the exact scaled side.
    assert abs(image.width * region.h - image.height * region.w) <= region.w + region.h
    width, height = req["width"], req["height"]
    if width is not None:
        assert image.width <= width
    if height is not None:
        assert image.height <= height
    if width is not None and height is not None:
        shrinking = region.w > width or region.h > height
        if req["upscale"] or shrinking:
            # Touches the box on the limiting side.
            assert image.width == width or image.height == height
    if width is None and height is None:
        assert image == Size(region.w, region.h)


@FAST
@given(requests(fit=st.just("crop")), box_sides, box_sides)
def test_crop_output_and_window_aspect(req: dict[str, Any], width: int, height: int) -> None:
    req = {**req, "width": width, "height": height}
    layout = layout_for(req)
    out, window, region = layout.image, layout.window, layout.region
    assert layout.canvas == out
    # The output keeps the box's aspect, each side within a pixel of rounding.
    assert abs(out.width * height - out.height * width) <= width + height
    # The window has the output's aspect within one pixel of rounding ...
    assert abs(window.w * out.height - window.h * out.width) <= max(out.width, out.height)
    # ... and is the largest such window: it spans the region in one direction.
    assert window.w == region.w or window.h == region.h
    assert layout.needs_window == ((window.w, window.h) != (region.w, region.h))
    if not req["upscale"]:
        # Without upscale the window holds at least the output's pixels.
        assert window.w >= out.width and window.h >= out.height


@FAST
@given(requests(fit=st.just("scale")), box_sides, box_sides)
def test_scale_stretches_to_the_box_or_shrinks_it_evenly(
    req: dict[str, Any], width: int, height: int
) -> None:
    req = {**req, "width": width, "height": height}
    layout = layout_for(req)
    out = layout.image
    assert layout.window == layout.region
    assert abs(out.width * height - out.height * width) <= width + height
    assert out.width <= width and out.height <= height


def test_plan_layout_examples() -> None:
    source = Size(1000, 500)
    crop = plan_layout(source, width=100, height=100, fit="crop", upscale=False)
    assert crop is not None
    assert crop.window == Rect(250, 0, 500, 500)
    assert crop.image == Size(100, 100) and crop.needs_window
    clip = plan_layout(source, width=100, height=100, fit="clip", upscale=False)
    assert clip is not None and clip.image == Size(100, 50) and clip.canvas == Size(100, 50)
    fill = plan_layout(source, width=100, height=100, fit="fill", upscale=False)
    assert fill is not None
    assert fill.image == Size(100, 50) and fill.canvas == Size(100, 100)
    assert fill.offset == (0, 25)
    scale = plan_layout(source, width=100, height=100, fit="scale", upscale=False)
    assert scale is not None and scale.image == Size(100, 100)
    # Too small without upscale: crop gives the largest same-aspect output the region fills.
    small = plan_layout(Size(300, 100), width=400, height=400, fit="crop", upscale=False)
    assert small is not None and small.image == Size(100, 100)
    assert small.window == Rect(100, 0, 100, 100)
    big = plan_layout(Size(300, 100), width=400, height=400, fit="crop", upscale=True)
    assert big is not None and big.image == Size(400, 400)
    one_side = plan_layout(source, width=200, height=None, fit="crop", upscale=False)
    assert one_side is not None and one_side.image == Size(200, 100)
    assert not one_side.needs_window
    rect = plan_layout(
        source, width=None, height=None, fit="clip", upscale=False, rect=Rect(900, 400, 500, 500)
    )
    assert rect is not None and rect.image == Size(100, 100) and rect.window == rect.region
    assert (
        plan_layout(
            source, width=10, height=10, fit="clip", upscale=False, rect=Rect(1000, 0, 10, 10)
        )
        is None
    )


# --- focal point -----------------------------------------------------------------------------


@FAST
@given(requests(fit=st.just("crop")), box_sides, box_sides)
def test_crop_window_contains_the_focal_point(req: dict[str, Any], width: int, height: int) -> None:
    req = {**req, "width": width, "height": height}
    layout = layout_for(req)
    region, window = layout.region, layout.window
    fx = region.x + req["focal"][0] * region.w
    fy = region.y + req["focal"][1] * region.h
    assert window.x <= fx <= window.x + window.w
    assert window.y <= fy <= window.y + window.h


@FAST
@given(requests(fit=st.just("crop")), box_sides, box_sides, unit, unit)
def test_moving_the_focal_point_never_moves_the_window_back(
    req: dict[str, Any], width: int, height: int, a: float, b: float
) -> None:
    low, high = sorted((a, b))
    base = {**req, "width": width, "height": height}
    fy = req["focal"][1]
    left = layout_for({**base, "focal": (low, fy)}).window
    right = layout_for({**base, "focal": (high, fy)}).window
    assert left.x <= right.x
    assert (left.y, left.w, left.h) == (right.y, right.w, right.h)
    fx = req["focal"][0]
    top = layout_for({**base, "focal": (fx, low)}).window
    bottom = layout_for({**base, "focal": (fx, high)}).window
    assert top.y <= bottom.y
    assert (top.x, top.w, top.h) == (bottom.x, bottom.w, bottom.h)


@st.composite
def regions_and_windows(draw: st.DrawFn) -> tuple[Rect, Size]:
    region = Rect(
        draw(st.integers(0, 5000)),
        draw(st.integers(0, 5000)),
        draw(st.integers(1, MAX_SOURCE)),
        draw(st.integers(1, MAX_SOURCE)),
    )
    window = Size(draw(st.integers(1, region.w)), draw(st.integers(1, region.h)))
    return region, window


@FAST
@given(regions_and_windows(), unit, unit, unit)
def test_place_window_centres_on_the_point_inside_the_region(
    placed: tuple[Rect, Size], fx: float, fy: float, fx2: float
) -> None:
    region, window = placed
    cx, cy = fx * region.w, fy * region.h
    rect = place_window(region, window, cx, cy)
    assert (rect.w, rect.h) == (window.width, window.height)
    assert inside(rect, region)
    # Contains the point (region-relative).
    assert rect.x - region.x <= cx <= rect.x - region.x + rect.w
    assert rect.y - region.y <= cy <= rect.y - region.y + rect.h
    # Centred on it unless pushed by an edge.
    left = rect.x - region.x
    if 0 < left < region.w - window.width:
        assert abs(left + window.width / 2 - cx) <= 0.5
    # Monotonic in the point.
    other = place_window(region, window, fx2 * region.w, cy)
    if fx2 <= fx:
        assert other.x <= rect.x
    else:
        assert other.x >= rect.x


def test_place_window_examples() -> None:
    region = Rect(10, 20, 100, 50)
    assert place_window(region, Size(20, 50), 0, 25) == Rect(10, 20, 20, 50)
    assert place_window(region, Size(20, 50), 100, 25) == Rect(90, 20, 20, 50)
    assert place_window(region, Size(20, 50), 50, 25) == Rect(50, 20, 20, 50)
    assert place_window(region, Size(20, 10), 50, 0) == Rect(50, 20, 20, 10)


# --- window_size -----------------------------------------------------------------------------


@FAST
@given(sources, st.builds(Size, box_sides, box_sides))
def test_window_size_is_the_largest_window_with_the_output_aspect(region: Size, out: Size) -> None:
    window = window_size(region, out)
    assert 1 <= window.width <= region.width
    assert 1 <= window.height <= region.height
    assert window.width == region.width or window.height == region.height
    assert abs(window.width * out.height - window.height * out.width) <= max(out.width, out.height)


def test_window_size_examples() -> None:
    assert window_size(Size(1000, 500), Size(100, 100)) == Size(500, 500)
    assert window_size(Size(500, 1000), Size(100, 100)) == Size(500, 500)
    assert window_size(Size(1600, 900), Size(16, 9)) == Size(1600, 900)
    assert window_size(Size(1000, 1000), Size(200, 100)) == Size(1000, 500)


# --- shrink_on_load --------------------------------------------------------------------------


@FAST
@given(st.builds(Size, sides, sides), st.builds(Size, box_sides, box_sides))
def test_shrink_on_load_keeps_at_least_the_output_pixels(window: Size, image: Size) -> None:
    factor = shrink_on_load(window, image)
    assert factor in (1, 2, 4, 8)
    if factor > 1:
        assert window.width // factor >= image.width
        assert window.height // factor >= image.height
    # It is the largest such factor.
    for bigger in (2, 4, 8):
        if bigger > factor:
            assert window.width / bigger < image.width or window.height / bigger < image.height


@settings(max_examples=150, deadline=None)
@given(requests(), st.sampled_from([(8, 4, 2), (4, 2), (2,)]))
def test_shrink_on_load_for_planned_layouts(req: dict[str, Any], choices: tuple[int, ...]) -> None:
    layout = layout_for(req)
    window = Size(layout.window.w, layout.window.h)
    factor = shrink_on_load(window, layout.image, choices)
    assert factor == 1 or factor in choices
    assert window.width // factor >= layout.image.width or factor == 1
    assert window.height // factor >= layout.image.height or factor == 1


@pytest.mark.parametrize(
    ("window", "image", "factor"),
    [
        (Size(4000, 3000), Size(400, 300), 8),
        (Size(4000, 3000), Size(500, 375), 8),
        (Size(4000, 3000), Size(501, 375), 4),
        (Size(1000, 1000), Size(300, 300), 2),
        (Size(1000, 1000), Size(501, 10), 1),
        (Size(100, 100), Size(200, 200), 1),
    ],
)
def test_shrink_on_load_examples(window: Size, image: Size, factor: int) -> None:
    assert shrink_on_load(window, image) == factor
