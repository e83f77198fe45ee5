"""Pure geometry: where the output comes from in the source, and how big it is.

No pixels here, only numbers, so every rule (fit modes, no-upscale, focal points) is
property-tested with hypothesis. Coordinates are orientation-corrected source pixels.

The shared vocabulary: a :class:`Rect` is a region in whole pixels (a ``rect=``, a crop
window); a :class:`Box` is a detection in fractional pixels with a confidence (a face, a
text line, the salient region, a candidate's evidence). A leaf: it imports nothing from
``proxy``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Fit = Literal["clip", "crop", "fill", "scale"]


@dataclass(frozen=True)
class Rect:
    """A region in whole (orientation-corrected) source pixels: a crop, a window."""

    x: int
    y: int
    w: int
    h: int

    def header(self) -> str:
        return f"{self.x},{self.y},{self.w},{self.h}"


@dataclass(frozen=True)
class Box:
    """A detection: an axis-aligned box in source pixels (top-left corner, size) with a
    confidence."""

    x: float
    y: float
    w: float
    h: float
    score: float = 1.0

    @property
    def area(self) -> float:
        return max(self.w, 0.0) * max(self.h, 0.0)

    @property
    def center(self) -> tuple[float, float]:
        return self.x + self.w / 2, self.y + self.h / 2

    def scaled(self, factor: float) -> Box:
        """The same box in pixels ``factor`` times larger (the score unchanged)."""
        return Box(self.x * factor, self.y * factor, self.w * factor, self.h * factor, self.score)


@dataclass(frozen=True)
class Size:
    width: int
    height: int


@dataclass(frozen=True)
class Layout:
    """The decision for one request.

    ``window``: the source region shown, which is resized to ``image`` and placed at
    ``offset`` on a ``canvas`` (equal to ``image`` except for ``fit=fill``).
    ``needs_window`` is true when ``fit=crop`` really cuts, so a crop strategy must
    choose where the window goes; ``window`` is then the centred default.
    """

    region: Rect
    window: Rect
    image: Size
    canvas: Size
    offset: tuple[int, int]
    needs_window: bool


def clamp_region(rect: Rect | None, source: Size) -> Rect | None:
    """Intersect ``rect`` with the source (no rect: the whole source); ``None`` if disjoint."""
    if rect is None:
        return Rect(0, 0, source.width, source.height)
    x0, y0 = min(rect.x, source.width), min(rect.y, source.height)
    x1, y1 = min(rect.x + rect.w, source.width), min(rect.y + rect.h, source.height)
    if x1 <= x0 or y1 <= y0:
        return None
    return Rect(x0, y0, x1 - x0, y1 - y0)


def _round(value: float) -> int:
    return max(1, int(value + 0.5))


def target_box(region: Size, width: int | None, height: int | None) -> Size:
    """Complete a box with one side missing from the region's aspect."""
    if width is None and height is None:
        return region
    if width is None:
        assert height is not None
        return Size(_round(height * region.width / region.height), height)
    if height is None:
        return Size(width, _round(width * region.height / region.width))
    return Size(width, height)


def fit_inside(region: Size, width: int | None, height: int | None, upscale: bool) -> Size:
    """The region scaled to fit the requested sides, aspect kept. The side that decides the
    scale is exactly the one asked for (``w=3000`` gives 3000 px, never 2999): the other
    side follows from it. Without ``upscale`` a region that already fits stays as it is."""
    if width is None and height is None:
        return region
    box = target_box(region, width, height)
    scale_x, scale_y = box.width / region.width, box.height / region.height
    if width is None:
        by_width = False
    elif height is None:
        by_width = True
    else:
        by_width = scale_x <= scale_y
    if not upscale and (scale_x if by_width else scale_y) >= 1:
        return region
    if by_width:
        return Size(box.width, min(box.height, _round(region.height * scale_x)))
    return Size(min(box.width, _round(region.width * scale_y)), box.height)


def imgix_fit(fit: str, upscale: bool) -> tuple[Fit, bool]:
    """imgix's names as Loupe's own modes: ``max`` is ``clip`` that never enlarges, ``min``
    is ``crop`` that never enlarges (both ignore ``upscale``); the rest are unchanged."""
    if fit == "max":
        return "clip", False
    if fit == "min":
        return "crop", False
    assert fit in ("clip", "crop", "fill", "scale"), fit
    return fit, upscale  # type: ignore[return-value]


Aspect = tuple[float, float]


def aspect_box(width: int | None, height: int | None, aspect: Aspect) -> tuple[int, int] | None:
    """``ar=W:H`` with one side given: the other side from the ratio (``None`` when both or
    neither side is given: both win over ``ar``, neither is :func:`aspect_window`)."""
    aspect_w, aspect_h = aspect
    if width is not None and height is None:
        return width, _round(width * aspect_h / aspect_w)
    if height is not None and width is None:
        return _round(height * aspect_w / aspect_h), height
    return None


def aspect_window(region: Size, aspect: Aspect) -> Size:
    """The largest window of the region with the aspect ``W:H``."""
    aspect_w, aspect_h = aspect
    if region.width * aspect_h > aspect_w * region.height:  # region is wider
        return Size(min(region.width, _round(region.height * aspect_w / aspect_h)), region.height)
    return Size(region.width, min(region.height, _round(region.width * aspect_h / aspect_w)))


def crop_output(region: Size, box: Size, upscale: bool) -> Size:
    """Output size for ``fit=crop``: the box, or without upscale the largest box of the
    same aspect that the region can fill at native resolution."""
    scale = max(box.width / region.width, box.height / region.height)
    if scale <= 1 or upscale:
        return box
    shrunk = Size(_round(box.width / scale), _round(box.height / scale))
    return Size(min(shrunk.width, region.width), min(shrunk.height, region.height))


def window_size(region: Size, out: Size) -> Size:
    """The largest region-window with the output's aspect."""
    return aspect_window(region, (out.width, out.height))


def place_window(region: Rect, window: Size, centre_x: float, centre_y: float) -> Rect:
    """Centre ``window`` on a point (region-relative pixels), kept inside the region."""
    left = round(centre_x - window.width / 2)
    top = round(centre_y - window.height / 2)
    left = min(max(left, 0), region.w - window.width)
    top = min(max(top, 0), region.h - window.height)
    return Rect(region.x + left, region.y + top, window.width, window.height)


def plan_layout(
    source: Size,
    *,
    width: int | None,
    height: int | None,
    fit: Fit,
    upscale: bool,
    rect: Rect | None = None,
    focal: tuple[float, float] = (0.5, 0.5),
    aspect: Aspect | None = None,
) -> Layout | None:
    """Decide the geometry; ``None`` when ``rect`` misses the source entirely. ``aspect``
    (``ar``, with ``fit=crop`` and neither side given) cuts the largest window of that
    aspect at the source's own resolution."""
    region = clamp_region(rect, source)
    if region is None:
        return None
    region_size = Size(region.w, region.h)
    if fit == "crop" and aspect is not None and width is None and height is None:
        largest = aspect_window(region_size, aspect)
        width, height = largest.width, largest.height
    box = target_box(region_size, width, height)
    both = width is not None and height is not None
    whole = region
    if fit == "crop" and both:
        image = crop_output(region_size, box, upscale)
        win = window_size(region_size, image)
        window = place_window(region, win, focal[0] * region.w, focal[1] * region.h)
        needs = (win.width, win.height) != (region.w, region.h)
        return Layout(region, window, image, image, (0, 0), needs)
    if fit == "scale" and both:
        shrink = 1.0 if upscale else min(1.0, region.w / box.width, region.h / box.height)
        image = Size(_round(box.width * shrink), _round(box.height * shrink))
        return Layout(region, whole, image, image, (0, 0), False)
    image = fit_inside(region_size, width, height, upscale)
    if fit == "fill" and both:
        offset = ((box.width - image.width) // 2, (box.height - image.height) // 2)
        return Layout(region, whole, image, box, offset, False)
    return Layout(region, whole, image, image, (0, 0), False)


def shrink_on_load(window: Size, image: Size, choices: tuple[int, ...] = (8, 4, 2)) -> int:
    """Largest loader shrink that still leaves at least the output's pixels in the window."""
    for factor in choices:
        if window.width / factor >= image.width and window.height / factor >= image.height:
            return factor
    return 1


def turned_size(size: Size, rotate: int) -> Size:
    """The picture's size after ``rot`` (90-degree steps, clockwise)."""
    return Size(size.height, size.width) if rotate in (90, 270) else size


def turn_box(box: Box, size: Size, rotate: int, flip: str) -> Box:
    """A box of a picture of ``size`` where it lies once the picture is rotated clockwise
    by ``rotate`` and then flipped (``h``, ``v`` or ``hv``); the score is kept."""
    x, y, w, h = box.x, box.y, box.w, box.h
    if rotate == 90:
        x, y, w, h = size.height - y - h, x, h, w
    elif rotate == 180:
        x, y = size.width - x - w, size.height - y - h
    elif rotate == 270:
        x, y, w, h = y, size.width - x - w, h, w
    turned = turned_size(size, rotate)
    if "h" in flip:
        x = turned.width - x - w
    if "v" in flip:
        y = turned.height - y - h
    return Box(x, y, w, h, box.score)


def turn_rect(rect: Rect, size: Size, rotate: int, flip: str) -> Rect:
    """:func:`turn_box` for whole pixels."""
    box = turn_box(Box(rect.x, rect.y, rect.w, rect.h), size, rotate, flip)
    return Rect(int(box.x), int(box.y), int(box.w), int(box.h))
