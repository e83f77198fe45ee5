"""A cheap text-region detector: no model, 5-25 ms on one core at 512 px.

Text is dense vertical strokes in a thin horizontal band, with quiet rows above and below.
So, on a greyscale copy at most ``MAX_SIDE`` pixels on its longest side:

1. **Strokes**: the horizontal gradient ``|dI/dx|`` above a contrast floor (or half of
   Otsu's level of the gradient, if higher); a horizontal line gives none. Vertical runs
   longer than a glyph (table borders, chart axes, poles) are dropped.
2. **Lines**: a horizontal closing joins the strokes of a word or a line into one blob,
   and a small vertical one joins dots, accents and the lines of a paragraph.
3. **Blobs** (libvips ``labelregions``, 4-connected) are kept when they look like text:
   height within bounds, wider than tall, a well-filled box, enough (but not too many)
   stroke pixels, a balance of horizontal and vertical gradient energy (text has both, a
   fence or a horizon has one), and quieter rows just above and below than inside.
4. The same again at half the analysis size, for large type, with a stricter score; its
   boxes are added where the first pass found nothing.

Boxes come back in input pixel coordinates with a 0-1 score; ``coverage`` is the fraction
of the image under their union. It is a cue, not OCR: it finds text-like texture, misses
rotated or sparse handwritten text, and now and then takes a row of similar small objects
(coins, ornaments) for a line of large glyphs. Pass a thumbnail of a huge image: the
resize to the analysis size is part of the cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pyvips

from proxy.geometry import Box
from proxy.imaging import shrink_to, to_plane

MAX_SIDE = 512  # the analysis copy's longest side (never upscaled)
MIN_CONTRAST = 28.0  # grey levels: weaker horizontal steps are never strokes
CLOSE_WIDTH = 11  # analysis pixels: joins the letters and words of a line
CLOSE_HEIGHT = 5  # analysis pixels: joins dots, accents and the lines of a paragraph
MIN_HEIGHT = 3  # analysis pixels
MAX_HEIGHT_FRACTION = 0.35  # of the analysis copy's shorter side (a paragraph can be a blob)
MIN_ASPECT = 1.3  # width / height
MIN_FILL = 0.45  # closed-mask pixels / box area
MIN_SCORE = 0.5
MIN_SCORE_COARSE = 0.7
MIN_RULE = 24  # analysis pixels: a vertical edge longer than this is a line, not a glyph

Array = npt.NDArray[np.float32]
Mask = npt.NDArray[np.bool_]
Corners = tuple[int, int, int, int, float]  # x0, y0, x1, y1 (exclusive), score


@dataclass(frozen=True)
class TextResult:
    # Boxes that look like a line (or a word) of text, in the image's (whole) pixels.
    regions: list[Box] = field(default_factory=list)
    coverage: float = 0.0  # fraction of the image under the regions' union, 0-1


def grey_array(image: pyvips.Image, max_side: int = MAX_SIDE) -> tuple[Array, float]:
    """8-bit greyscale as float32 (alpha flattened over white), shrunk so its longest side
    is at most ``max_side``; and the shrink factor used (1.0 when not shrunk)."""
    try:
        grey = image.colourspace("b-w")  # sRGB, 16-bit, CMYK, Lab...: all to 8-bit grey
    except pyvips.Error:
        grey = image.extract_band(0)
    if grey.hasalpha():
        grey = grey.flatten(background=[255])
    grey = grey.extract_band(0)
    if grey.format != "uchar":
        grey = grey.cast("uchar")
    grey, scale = shrink_to(grey, max_side)
    return to_plane(grey).astype(np.float32), scale


def _otsu(values: Array) -> float:
    hist = np.bincount(np.clip(values, 0, 255).astype(np.int32).ravel(), minlength=256)
    hist = hist.astype(np.float64)
    total = hist.sum()
    if total == 0:
        return 0.0
    levels = np.arange(256, dtype=np.float64)
    weight0 = np.cumsum(hist)
    mean0 = np.cumsum(hist * levels)
    weight1 = total - weight0
    grand = mean0[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (grand * weight0 - mean0 * total) ** 2 / (weight0 * weight1)
    between[~np.isfinite(between)] = 0
    return float(np.argmax(between))


def _run_max(mask: Mask, width: int, axis: int) -> Mask:
    """Binary dilation by a centred line of ``width`` pixels along ``axis``."""
    out = mask.copy()
    half = width // 2
    for shift in range(1, half + 1):
        if axis == 1:
            out[:, shift:] |= mask[:, :-shift]
            out[:, :-shift] |= mask[:, shift:]
        else:
            out[shift:] |= mask[:-shift]
            out[:-shift] |= mask[shift:]
    return out


def _shift_up(mask: Mask, by: int) -> Mask:
    """``out[y] = mask[y + by]`` (False past the bottom edge)."""
    out = np.zeros_like(mask)
    if by < mask.shape[0]:
        out[: mask.shape[0] - by] = mask[by:]
    return out


def _shift_down(mask: Mask, by: int) -> Mask:
    """``out[y] = mask[y - by]`` (False past the top edge)."""
    out = np.zeros_like(mask)
    if by < mask.shape[0]:
        out[by:] = mask[: mask.shape[0] - by]
    return out


def _drop_long_vertical_runs(mask: Mask, longest: int) -> Mask:
    """The mask without its vertical runs longer than ``longest``: rules, axes, borders
    and poles, which would otherwise glue neighbouring text into one big blob.

    A vertical opening by a line of ``longest + 1`` pixels, by doubling: the run starts
    (``all`` over the window below) and then the runs themselves (``any`` over the window
    above), a handful of shifted boolean operations whatever the length."""
    length = longest + 1
    starts, span = mask, 1
    while span * 2 <= length:
        starts = starts & _shift_up(starts, span)
        span *= 2
    if span < length:
        starts = starts & _shift_up(starts, length - span)
    runs, span = starts, 1
    while span * 2 <= length:
        runs = runs | _shift_down(runs, span)
        span *= 2
    if span < length:
        runs = runs | _shift_down(runs, length - span)
    result: Mask = mask & ~runs
    return result


def _close(mask: Mask, width: int, axis: int) -> Mask:
    dilated = _run_max(mask, width, axis)
    return ~_run_max(~dilated, width, axis)


def _components(
    mask: Mask,
) -> tuple[
    npt.NDArray[np.int64],
    npt.NDArray[np.int64],
    npt.NDArray[np.int64],
    npt.NDArray[np.int64],
    npt.NDArray[np.int64],
]:
    """Bounding boxes (x0, y0, x1, y1 exclusive) and pixel counts of the mask's blobs."""
    height, width = mask.shape
    empty = np.zeros(0, dtype=np.int64)
    if not mask.any():
        return empty, empty, empty, empty, empty
    flat = (mask.astype(np.uint8) * 255).tobytes()
    labelled = pyvips.Image.new_from_memory(flat, width, height, 1, "uchar").labelregions()
    labels = to_plane(labelled)
    ys, xs = np.nonzero(mask)
    # Labels are dense (0 .. regions - 1, background regions included): index by them
    # directly and keep the ones with mask pixels, in label order (no sort needed).
    index = labels[ys, xs]
    n = int(index.max()) + 1
    counts = np.bincount(index, minlength=n).astype(np.int64)
    x0 = np.full(n, width, dtype=np.int64)
    y0 = np.full(n, height, dtype=np.int64)
    x1 = np.zeros(n, dtype=np.int64)
    y1 = np.zeros(n, dtype=np.int64)
    np.minimum.at(x0, index, xs)
    np.minimum.at(y0, index, ys)
    np.maximum.at(x1, index, xs + 1)
    np.maximum.at(y1, index, ys + 1)
    found = counts > 0
    return x0[found], y0[found], x1[found], y1[found], counts[found]


def analyse(grey: Array, min_score: float = MIN_SCORE) -> tuple[list[Corners], Mask]:
    """Text boxes on an analysis-size grey array: (x0, y0, x1, y1 exclusive, score) and
    the stroke mask (for callers that want more statistics)."""
    height, width = grey.shape
    if height < MIN_HEIGHT + 2 or width < 8:
        return [], np.zeros(grey.shape, dtype=bool)
    dx = np.zeros_like(grey)
    dy = np.zeros_like(grey)
    dx[:, 1:] = np.abs(np.diff(grey, axis=1))
    dy[1:, :] = np.abs(np.diff(grey, axis=0))
    threshold = max(MIN_CONTRAST, 0.5 * _otsu(dx))
    strokes = dx > threshold
    strokes = _drop_long_vertical_runs(strokes, max(MIN_RULE, int(0.1 * min(height, width))))
    closed = _close(strokes, CLOSE_WIDTH, axis=1)
    closed = _close(closed, CLOSE_HEIGHT, axis=0)
    x0, y0, x1, y1, counts = _components(closed)
    if len(counts) == 0:
        return [], strokes
    box_w, box_h = x1 - x0, y1 - y0
    max_height = max(MIN_HEIGHT + 1, int(MAX_HEIGHT_FRACTION * min(height, width)))
    fill = counts / (box_w * box_h)
    keep = (
        (box_h >= MIN_HEIGHT)
        & (box_h <= max_height)
        & (box_w >= MIN_ASPECT * box_h)
        & (box_w >= 6)
        & (fill >= MIN_FILL)
    )
    if not keep.any():
        return [], strokes
    x0, y0, x1, y1, fill = x0[keep], y0[keep], x1[keep], y1[keep], fill[keep]
    box_w, box_h = box_w[keep], box_h[keep]
    energy = dx + dy
    n = len(x0)
    strokes_in, energy_x, energy_in, band = (np.zeros(n) for _ in range(4))
    band_area = np.zeros(n)
    for i in range(n):
        top, bottom, left, right = int(y0[i]), int(y1[i]), int(x0[i]), int(x1[i])
        margin = max(1, (bottom - top) // 3)
        strokes_in[i] = np.count_nonzero(strokes[top:bottom, left:right])
        energy_x[i] = dx[top:bottom, left:right].sum()
        energy_in[i] = energy[top:bottom, left:right].sum()
        above = energy[max(0, top - margin) : top, left:right]
        below = energy[bottom : bottom + margin, left:right]
        band[i] = above.sum() + below.sum()
        band_area[i] = above.size + below.size
    area = (box_w * box_h).astype(np.float64)
    density = strokes_in / area
    balance = energy_x / np.maximum(energy_in, 1e-6)
    inside = energy_in / area
    outside = np.where(band_area > 0, band / np.maximum(band_area, 1), 0.0)
    quiet = np.clip(1.0 - outside / np.maximum(inside, 1e-6), 0.0, 1.0)
    score = (
        np.clip((density - 0.08) / 0.22, 0, 1)  # enough stroke pixels...
        * np.clip((0.92 - density) / 0.3, 0, 1)  # ...but not a solid slab
        * np.clip((balance - 0.25) / 0.2, 0, 1)  # vertical strokes, not one horizontal edge
        * np.clip((0.9 - balance) / 0.15, 0, 1)  # nor a row of vertical bars only
        * np.clip((fill - MIN_FILL) / 0.25 + 0.4, 0, 1)
        * np.clip(quiet / 0.6, 0, 1)  # a line of text stands out from its surroundings
    ) ** 0.5
    boxes = [
        (int(a), int(b), int(c), int(d), float(s))
        for a, b, c, d, s in zip(x0, y0, x1, y1, score, strict=True)
        if s >= min_score
    ]
    return boxes, strokes


def _half(grey: Array) -> Array:
    """A 2x2 box-filtered half-size copy."""
    height, width = (grey.shape[0] // 2) * 2, (grey.shape[1] // 2) * 2
    quads = grey[:height, :width].reshape(height // 2, 2, width // 2, 2)
    result: Array = quads.mean(axis=(1, 3), dtype=np.float32)
    return result


def _overlap(box: Corners, others: list[Corners]) -> float:
    """The fraction of ``box`` covered by the union of ``others`` (approximated by the sum)."""
    x0, y0, x1, y1, _ = box
    area = max(1, (x1 - x0) * (y1 - y0))
    total = 0
    for a0, b0, a1, b1, _ in others:
        total += max(0, min(x1, a1) - max(x0, a0)) * max(0, min(y1, b1) - max(y0, b0))
    return min(1.0, total / area)


def find_boxes(grey: Array) -> list[Corners]:
    """Text boxes at two scales on an analysis-size grey array (analysis coordinates): the
    full analysis size for body text, half of it for large type that the first misses."""
    boxes, _ = analyse(grey)
    if min(grey.shape) >= 4 * MIN_HEIGHT + 8:
        for x0, y0, x1, y1, score in analyse(_half(grey), MIN_SCORE_COARSE)[0]:
            box = (2 * x0, 2 * y0, 2 * x1, 2 * y1, score)
            if _overlap(box, boxes) < 0.3:
                boxes.append(box)
    return boxes


def detect(image: pyvips.Image) -> TextResult:
    """Text-like regions of ``image`` in its own pixel coordinates, and their coverage."""
    grey, scale = grey_array(image)
    return from_boxes(find_boxes(grey), grey.shape, scale, image.width, image.height)


def from_boxes(
    boxes: list[Corners], shape: tuple[int, ...], scale: float, width: int, height: int
) -> TextResult:
    """Boxes found on an analysis-size grey array (``shape``, ``scale`` of a ``width`` x
    ``height`` image) as regions of that image; the analyzer shares them with the content
    features instead of finding them twice."""
    if not boxes:
        return TextResult()
    image_width, image_height = width, height
    covered = np.zeros(shape[:2], dtype=bool)
    regions = []
    for x0, y0, x1, y1, score in boxes:
        covered[y0:y1, x0:x1] = True
        left, top = int(x0 / scale), int(y0 / scale)
        right = min(image_width, int(np.ceil(x1 / scale)))
        bottom = min(image_height, int(np.ceil(y1 / scale)))
        regions.append(Box(left, top, right - left, bottom - top, round(score, 3)))
    regions.sort(key=lambda r: (r.y, r.x))
    return TextResult(regions=regions, coverage=float(covered.mean()))
