"""A human crop (:class:`CropOverride`, the one type the store, the admin API, review and
the pipeline share) and which one applies to a request: pure functions over them.

A crop is stored per aspect ("16:9", or "any") and optionally per context (ctx=hero...).
For one request the most specific one wins, and a user's own override (``by="user"``, the
admin API) always beats a reviewer's pick (``by="human"``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from proxy.geometry import Rect
from proxy.sources.paths import SourcePath

ASPECT_TOLERANCE = 0.02  # 600x338 is a 16:9 request: rounding must not miss the override


@dataclass(frozen=True)
class CropOverride:
    """A human crop of one source: ``by="user"`` through the admin API, ``"human"`` picked
    in review. ``aspect`` is "W:H" reduced, or "any"; ``ctx=""`` applies in every context;
    ``rect`` is in the source's (orientation-corrected) pixels."""

    path: SourcePath
    aspect: str
    rect: Rect
    ctx: str = ""
    by: Literal["user", "human"] = "user"
    reviewer: str = ""
    reason: str = ""
    created: float = 0.0


def parse_aspect(text: str) -> str:
    """``"16:9"``, ``"32:18"``, ``"1.5"`` or ``"any"`` -> a canonical "W:H" or "any"."""
    value = text.strip().lower()
    if value == "any":
        return "any"
    left, sep, right = value.partition(":")
    try:
        if sep:
            w, h = int(left), int(right)
        else:
            ratio = float(value)
            if not math.isfinite(ratio):
                raise ValueError(value)
            w, h = round(ratio * 1000), 1000
    except ValueError:
        raise ValueError(f"aspect must be W:H (e.g. 16:9) or 'any', got {text!r}") from None
    if w <= 0 or h <= 0 or w > 100_000 or h > 100_000:
        raise ValueError(f"aspect must be W:H with positive sides, got {text!r}")
    g = math.gcd(w, h)
    return f"{w // g}:{h // g}"


def aspect_of(width: int, height: int) -> str:
    g = math.gcd(width, height)
    return f"{width // g}:{height // g}"


# The aspects layouts really use. A crop review asked for by an anonymous request is filed
# under the nearest of them, so odd aspects (a 601x337 hero) cannot open one item each.
COMMON_ASPECTS = (
    "1:3",
    "1:2",
    "9:16",
    "2:3",
    "3:4",
    "4:5",
    "1:1",
    "5:4",
    "4:3",
    "3:2",
    "16:9",
    "2:1",
    "3:1",
)


def common_aspect(width: int, height: int) -> str:
    """The entry of ``COMMON_ASPECTS`` nearest to ``width:height`` (by ratio, in log space,
    so 1:2 and 2:1 are equally far from 1:1)."""
    wanted = math.log(width / height)
    return min(COMMON_ASPECTS, key=lambda aspect: abs(math.log(_ratio(aspect)) - wanted))


def _ratio(aspect: str) -> float:
    w, _, h = aspect.partition(":")
    return int(w) / int(h)


def matches(aspect: str, width: int, height: int) -> bool:
    if aspect == "any":
        return True
    wanted = _ratio(aspect)
    return abs(width / height - wanted) <= ASPECT_TOLERANCE * wanted


def applicable(
    crops: Sequence[CropOverride], width: int, height: int, ctx: str
) -> CropOverride | None:
    """The override for a ``width`` x ``height`` crop in ``ctx``, or None."""
    fitting = [
        crop for crop in crops if crop.ctx in ("", ctx) and matches(crop.aspect, width, height)
    ]
    if not fitting:
        return None
    return min(
        fitting,
        key=lambda crop: (crop.by != "user", crop.ctx != ctx, crop.aspect == "any", crop.aspect),
    )


def rect_from_json(value: object) -> Rect | None:
    """``[x, y, w, h]`` of four integers (booleans are not integers here), or None."""
    if not isinstance(value, list) or len(value) != 4:
        return None
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return None
    return Rect(value[0], value[1], value[2], value[3])


def rect_json(rect: Rect) -> list[int]:
    """:func:`rect_from_json` the other way: ``[x, y, w, h]``."""
    return [rect.x, rect.y, rect.w, rect.h]


def fits_source(rect: Rect, width: int, height: int) -> bool:
    x, y, w, h = rect.x, rect.y, rect.w, rect.h
    return x >= 0 and y >= 0 and w > 0 and h > 0 and x + w <= width and y + h <= height
