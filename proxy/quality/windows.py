"""Where ``q=auto`` measures a large output: a few tiles spread over it, at full resolution.

SSIMULACRA2 needs about 100 bytes per pixel, so scoring a 36 MP output whole took 3.6 GB.
Scoring a downscaled copy would hide the very artefacts being measured; scoring tiles keeps
them at their real scale. The tiles form a grid spread evenly over the image, aligned to 16
pixels (JPEG MCUs, WebP macroblocks), and never overlap; their mosaic is what the reference
and every probe are scored as. Pure arithmetic, property-tested.
"""

from __future__ import annotations

import math

from proxy.geometry import Rect

SCORED_PIXELS = 2 * 1024 * 1024  # at most this much is scored, at about 100 B/px
TILE = 512
ALIGN = 16


def _spread(length: int, tile: int, count: int) -> list[int]:
    """``count`` non-overlapping offsets of ``tile`` spread evenly over ``length``."""
    gap = (length - tile * count) / count
    return [
        min(length - tile, (int(gap / 2 + i * (tile + gap)) // ALIGN) * ALIGN) for i in range(count)
    ]


def score_windows(width: int, height: int, budget: int = SCORED_PIXELS) -> tuple[Rect, ...]:
    """The regions of a ``width`` x ``height`` image to score: the whole image when it fits
    ``budget``, else a grid of tiles (``columns`` per row, row by row) within it."""
    if width * height <= budget:
        return (Rect(0, 0, width, height),)
    tile_w, tile_h = min(TILE, width), min(TILE, height)
    count = max(1, budget // (tile_w * tile_h))
    across, down = width // tile_w, height // tile_h
    # As many columns as the image's shape asks for, within what fits.
    columns = max(1, min(across, count, round(math.sqrt(count * across / max(down, 1)))))
    rows = max(1, min(down, count // columns))
    return tuple(
        Rect(x, y, tile_w, tile_h)
        for y in _spread(height, tile_h, rows)
        for x in _spread(width, tile_w, columns)
    )


def columns_of(windows: tuple[Rect, ...]) -> int:
    """How many windows share the first row (the mosaic's width in tiles)."""
    return sum(1 for window in windows if window.y == windows[0].y)
