"""URL parameters -> a validated, canonical ``TransformParams``.

Canonical form matters twice: equal requests must share one cache entry, and the
``X-Loupe-*`` headers must describe what was really done. So defaults are dropped,
``dpr`` is folded into the pixel box, and crop options vanish when nothing is cropped.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args
from urllib.parse import parse_qsl, urlencode

from proxy.errors import BadParameter

Fit = Literal["clip", "crop", "fill", "scale"]
Crop = Literal["smart", "faces", "entropy", "attention", "center", "focalpoint"]
Format = Literal["auto", "jpeg", "png", "webp", "avif", "gif"]
PolicyName = Literal["general", "product", "art", "screenshot", "medical", "legal"]
Context = Literal["gallery", "search", "feed", "featured", "social", "hero"]

MAX_DIMENSION = 8192
FOCAL_DIGITS = 4  # decimals of fp-x/fp-y that are kept (and written to the canonical query)
# Parameters the contract names but whose handling lives elsewhere (signing).
PASSTHROUGH = frozenset({"s", "expires"})
KNOWN = (
    frozenset(
        {
            "w",
            "h",
            "dpr",
            "fit",
            "crop",
            "fp-x",
            "fp-y",
            "rect",
            "fm",
            "q",
            "policy",
            "ctx",
            "bg",
            "upscale",
        }
    )
    | PASSTHROUGH
)
_NAME = re.compile(r"[A-Za-z0-9_.-]*")  # no "%" or "+": a name means what it spells
_HEX = re.compile(r"^(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")


@dataclass(frozen=True)
class Rect:
    """A region in (orientation-corrected) source pixels."""

    x: int
    y: int
    w: int
    h: int

    def header(self) -> str:
        return f"{self.x},{self.y},{self.w},{self.h}"


@dataclass(frozen=True)
class TransformParams:
    """What a URL asks for; ``width``/``height`` already include ``dpr``."""

    width: int | None = None
    height: int | None = None
    fit: Fit = "clip"
    crop: Crop = "smart"
    crop_explicit: bool = False
    focal_x: float = 0.5
    focal_y: float = 0.5
    rect: Rect | None = None
    fm: Format = "auto"
    quality: int | None = None  # None means q=auto
    policy: PolicyName | None = None
    ctx: Context = "gallery"
    background: tuple[int, int, int, int] = (255, 255, 255, 255)
    upscale: bool = False

    def canonical_query(self, default_crop: str) -> str:
        """A stable query string of the non-default parameters, for cache keys."""
        items: list[tuple[str, str]] = []
        if self.width is not None:
            items.append(("w", str(self.width)))
        if self.height is not None:
            items.append(("h", str(self.height)))
        if self.fit != "clip":
            items.append(("fit", self.fit))
        if self.fit == "crop" and self.width is not None and self.height is not None:
            if self.crop != default_crop:
                items.append(("crop", self.crop))
            if self.crop == "focalpoint":
                items.append(("fp-x", _num(self.focal_x)))
                items.append(("fp-y", _num(self.focal_y)))
        if self.rect is not None:
            items.append(("rect", self.rect.header()))
        if self.fm != "auto":
            items.append(("fm", self.fm))
        if self.quality is not None:
            items.append(("q", str(self.quality)))
        if self.policy is not None:
            items.append(("policy", self.policy))
        if self.ctx != "gallery":
            items.append(("ctx", self.ctx))
        if self.background != (255, 255, 255, 255):
            items.append(("bg", "".join(f"{c:02x}" for c in self.background)))
        if self.upscale:
            items.append(("upscale", "1"))
        return urlencode(sorted(items))


def _num(value: float) -> str:
    return f"{value:.{FOCAL_DIGITS}f}".rstrip("0").rstrip(".")


def _int(name: str, raw: str, low: int, high: int) -> int:
    if not re.fullmatch(r"[0-9]{1,6}", raw):
        raise BadParameter(f"{name} must be an integer {low}-{high}, got {raw!r}")
    value = int(raw)
    if not low <= value <= high:
        raise BadParameter(f"{name} must be between {low} and {high}, got {value}")
    return value


def dimension(name: str, raw: str) -> int:
    """A pixel size parameter (``w``, ``h``): 1 to ``MAX_DIMENSION``."""
    return _int(name, raw, 1, MAX_DIMENSION)


def _float(name: str, raw: str, low: float, high: float) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise BadParameter(f"{name} must be a number {low}-{high}, got {raw!r}") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise BadParameter(f"{name} must be between {low} and {high}, got {raw!r}")
    return value


def _choice(name: str, raw: str, options: Sequence[str]) -> str:
    if raw not in options:
        raise BadParameter(f"{name} must be one of {', '.join(options)}; got {raw!r}")
    return raw


def _rect(raw: str) -> Rect:
    parts = raw.split(",")
    if len(parts) != 4:
        raise BadParameter(f"rect must be x,y,w,h in source pixels, got {raw!r}")
    x, y = (_int("rect x/y", p.strip(), 0, 1_000_000) for p in parts[:2])
    w, h = (_int("rect w/h", p.strip(), 1, 1_000_000) for p in parts[2:])
    return Rect(x, y, w, h)


def _background(raw: str) -> tuple[int, int, int, int]:
    text = raw.removeprefix("#")
    if not _HEX.match(text):
        raise BadParameter(f"bg must be a hex colour (rgb, rrggbb or rrggbbaa), got {raw!r}")
    if len(text) == 3:
        text = "".join(c * 2 for c in text)
    if len(text) == 6:
        text += "ff"
    r, g, b, a = (int(text[i : i + 2], 16) for i in range(0, 8, 2))
    return (r, g, b, a)


def raw_pairs(query: str) -> list[tuple[str, str]]:
    """The raw ``(name, value)`` pairs of a query string, values still encoded. Names are
    plain ASCII words and never percent-encoded: ``%65xpires`` or ``%73`` would let the
    signature check and the parser see different parameters, so they are refused."""
    pairs = []
    for piece in query.split("&"):
        if not piece:  # a trailing or doubled "&" is harmless and common by hand
            continue
        name, _, value = piece.partition("=")
        if not _NAME.fullmatch(name):
            shown = name[:40]
            raise BadParameter(f"parameter names are plain words, never encoded; got {shown!r}")
        pairs.append((name, value))
    return pairs


def split_query(query: str) -> dict[str, str]:
    """Parse a raw query string, refusing unknown and repeated parameters."""
    raw_pairs(query)  # names as the signature check sees them
    query = "&".join(piece for piece in query.split("&") if piece)
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise BadParameter(f"malformed query string {query!r}") from None
    seen: dict[str, str] = {}
    for key, value in pairs:
        if key not in KNOWN:
            raise BadParameter(f"unknown parameter {key!r}; known: {', '.join(sorted(KNOWN))}")
        if key in seen:
            raise BadParameter(f"parameter {key!r} is repeated")
        seen[key] = value
    return seen


def parse_params(query: str, *, default_crop: Crop = "smart") -> TransformParams:
    """The parameters of a query string; raises ``BadParameter``. Memoised: a CDN origin
    sees the same few thousand queries again and again, and parsing is the warm path's
    largest Python cost (the result is frozen, so sharing it is safe)."""
    return _parse_params(query, default_crop)


@functools.lru_cache(maxsize=8192)
def _parse_params(query: str, default_crop: Crop) -> TransformParams:
    raw = split_query(query)
    fields: dict[str, Any] = {"crop": default_crop}
    dpr = _float("dpr", raw["dpr"], 1, 4) if "dpr" in raw else 1.0
    if "w" in raw:
        fields["width"] = _scaled(dimension("w", raw["w"]), dpr)
    if "h" in raw:
        fields["height"] = _scaled(dimension("h", raw["h"]), dpr)
    if "fit" in raw:
        fields["fit"] = _choice("fit", raw["fit"], get_args(Fit))
    if "crop" in raw:
        fields["crop"] = _choice("crop", raw["crop"], get_args(Crop))
        fields["crop_explicit"] = True
    if "fp-x" in raw or "fp-y" in raw:
        if fields["crop"] != "focalpoint":
            raise BadParameter("fp-x and fp-y need crop=focalpoint")
        # Kept to the precision the canonical query (the cache key) records.
        fields["focal_x"] = round(_float("fp-x", raw.get("fp-x", "0.5"), 0, 1), FOCAL_DIGITS)
        fields["focal_y"] = round(_float("fp-y", raw.get("fp-y", "0.5"), 0, 1), FOCAL_DIGITS)
    if "rect" in raw:
        fields["rect"] = _rect(raw["rect"])
    if "fm" in raw:
        fields["fm"] = _choice("fm", raw["fm"], get_args(Format))
    if "q" in raw and raw["q"] != "auto":
        fields["quality"] = _int("q", raw["q"], 1, 100)
    if "policy" in raw:
        fields["policy"] = _choice("policy", raw["policy"], get_args(PolicyName))
    if "ctx" in raw:
        fields["ctx"] = _choice("ctx", raw["ctx"], get_args(Context))
    if "bg" in raw:
        fields["background"] = _background(raw["bg"])
    if "upscale" in raw:
        fields["upscale"] = _choice("upscale", raw["upscale"], ("0", "1")) == "1"
    return TransformParams(**fields)


def _scaled(value: int, dpr: float) -> int:
    scaled = round(value * dpr)
    if scaled > MAX_DIMENSION * 4:
        raise BadParameter(f"w/h times dpr exceeds {MAX_DIMENSION * 4} pixels")
    return max(1, scaled)
