"""URL parameters -> a validated, canonical ``TransformParams``.

Canonical form matters twice: equal requests must share one cache entry, and the
``X-Loupe-*`` headers must describe what was really done. So defaults are dropped,
``dpr`` is folded into the pixel box, and crop options vanish when nothing is cropped.

imgix's names that front-end developers bring along are accepted and folded into Loupe's
own: ``fm=jpg`` is ``jpeg``, ``fm=pjpg`` a progressive JPEG, ``auto=format,compress`` is
``fm=auto&q=auto``, ``fit=max``/``fit=min`` are ``clip``/``crop`` that never enlarge, and
``ar=W:H`` with one side completes the other. Tracking and SDK parameters (``ixlib``,
``utm_*``, ``images.ignored_params``) are dropped before anything else (:func:`drop_ignored`).

The URL's word lists (crop names, policy names, contexts) are defined here once, as
``Literal`` types; every runtime tuple or set of them is derived with ``typing.get_args``.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args
from urllib.parse import parse_qsl, unquote_plus, urlencode

from proxy.errors import BadParameter
from proxy.formats import OutputFormat
from proxy.geometry import Fit, Rect, aspect_box, imgix_fit

# Crop names: placed from the analysis (smart, faces) or by libvips' smartcrop (entropy,
# attention), both by=ai; or by the URL's own geometry (center, focalpoint).
AnalysisCrop = Literal["smart", "faces"]
VipsCrop = Literal["entropy", "attention"]
AiCrop = Literal[AnalysisCrop, VipsCrop]
Crop = Literal[AiCrop, "center", "focalpoint"]
ANALYSIS_CROPS: frozenset[str] = frozenset(get_args(AnalysisCrop))
VIPS_CROPS: frozenset[str] = frozenset(get_args(VipsCrop))
AI_CROPS: frozenset[str] = frozenset(get_args(AiCrop))
Format = Literal["auto", OutputFormat]
FORMAT_NAMES = (*get_args(Format), "jpg", "pjpg")  # imgix spellings: jpg = jpeg, pjpg progressive
FIT_NAMES = ("clip", "crop", "fill", "scale", "max", "min")  # max/min: imgix, never enlarge
AUTO_NAMES = ("format", "compress")
ROTATIONS = ("0", "90", "180", "270")
Flip = Literal["", "h", "v", "hv"]
FLIPS = {"h": "h", "v": "v", "hv": "hv", "vh": "hv"}
MAX_BLUR = 100  # the contract's range (API.md); the Gaussian sigma is blur / 2 output pixels
MAX_SHARP = 100
LosslessPolicy = Literal["medical", "legal"]  # never lossy, whatever the URL asks
PolicyName = Literal["general", "product", "art", "screenshot", LosslessPolicy]
LOSSLESS_POLICIES: frozenset[str] = frozenset(get_args(LosslessPolicy))
# Contexts (ctx=); in a high-stakes one, the AI's crop is reviewed by a human.
HighStakesContext = Literal["featured", "social", "hero"]
Context = Literal["gallery", "search", "feed", HighStakesContext]
HIGH_STAKES: frozenset[str] = frozenset(get_args(HighStakesContext))

MAX_DIMENSION = 8192
FOCAL_DIGITS = 4  # decimals of fp-x/fp-y that are kept (and written to the canonical query)
# Parameters the contract names but whose handling lives elsewhere (signing).
PASSTHROUGH = frozenset({"s", "expires"})
# Tracking and SDK parameters, dropped before the signature check and the cache key (so
# they never bust the cache); images.ignored_params adds more. A trailing * is a prefix;
# names compare without case (UTM_Source is utm_source). ixid: imgix/Unsplash's image id.
IGNORED = ("ixlib", "ixid", "utm_*")
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
            "ar",
            "auto",
            "blur",
            "sharp",
            "rot",
            "flip",
        }
    )
    | PASSTHROUGH
)
_NAME = re.compile(r"[A-Za-z0-9_.-]*")  # no "%" or "+": a name means what it spells
_HEX = re.compile(r"[0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8}")
# Decimal numbers only, as every language parses them alike (no sign, underscore, hex,
# "inf" or surrounding space, which float() would also take).
_DECIMAL = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


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
    aspect: tuple[float, float] | None = None  # ar=W:H with fit=crop and neither side
    progressive: bool = False  # fm=pjpg
    blur: int = 0  # 0-100
    sharp: int = 0  # 0-100 (imgix)
    rotate: int = 0  # degrees clockwise, 90-degree steps, applied after EXIF orientation
    flip: Flip = ""  # h, v or hv, after the rotation

    def canonical_query(self, default_crop: str) -> str:
        """A stable query string of the non-default parameters, for cache keys."""
        items: list[tuple[str, str]] = []
        if self.width is not None:
            items.append(("w", str(self.width)))
        if self.height is not None:
            items.append(("h", str(self.height)))
        if self.fit != "clip":
            items.append(("fit", self.fit))
        cuts = (self.width is not None and self.height is not None) or self.aspect is not None
        if self.fit == "crop" and cuts:
            if self.crop != default_crop:
                items.append(("crop", self.crop))
            if self.crop == "focalpoint":
                items.append(("fp-x", _num(self.focal_x)))
                items.append(("fp-y", _num(self.focal_y)))
        if self.rect is not None:
            items.append(("rect", self.rect.header()))
        if self.aspect is not None:
            items.append(("ar", ":".join(_num(side) for side in self.aspect)))
        if self.fm != "auto":
            items.append(("fm", "pjpg" if self.progressive else self.fm))
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
        if self.blur:
            items.append(("blur", str(self.blur)))
        if self.sharp:
            items.append(("sharp", str(self.sharp)))
        if self.rotate:
            items.append(("rot", str(self.rotate)))
        if self.flip:
            items.append(("flip", self.flip))
        return urlencode(sorted(items))

    @property
    def turned(self) -> bool:
        """``rot`` or ``flip`` change the picture's own coordinates."""
        return bool(self.rotate or self.flip)


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
    value = float(raw) if _DECIMAL.fullmatch(raw) else math.nan
    if not low <= value <= high:  # NaN compares false: not a plain decimal
        raise BadParameter(f"{name} must be between {low:g} and {high:g}, got {raw!r}")
    return value


def _choice(name: str, raw: str, options: Sequence[str]) -> str:
    if raw not in options:
        raise BadParameter(f"{name} must be one of {', '.join(options)}; got {raw!r}")
    return raw


def _rect(raw: str) -> Rect:
    parts = raw.split(",")
    if len(parts) != 4:
        raise BadParameter(f"rect must be x,y,w,h in source pixels, got {raw!r}")
    x, y = (_int("rect x/y", p.strip(" "), 0, 1_000_000) for p in parts[:2])
    w, h = (_int("rect w/h", p.strip(" "), 1, 1_000_000) for p in parts[2:])
    return Rect(x, y, w, h)


def _background(raw: str) -> tuple[int, int, int, int]:
    text = raw.removeprefix("#")
    if not _HEX.fullmatch(text):
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
        if key == "auto" and key in seen:  # imgix lets auto repeat: auto=format&auto=compress
            seen[key] = f"{seen[key]},{value}"
            continue
        if key in seen:
            raise BadParameter(f"parameter {key!r} is repeated")
        seen[key] = value
    return seen


def _ignored(name: str, extra: Sequence[str]) -> bool:
    name = name.lower()
    for pattern in (*IGNORED, *extra):
        pattern = pattern.lower()
        if pattern.endswith("*") and name.startswith(pattern[:-1]):
            return True
        if name == pattern:
            return True
    return False


def drop_ignored(query: str, extra: Sequence[str] = ()) -> tuple[str, tuple[str, ...]]:
    """The raw query without tracking and SDK parameters (``IGNORED`` and ``extra``), the
    other pairs untouched (order and encoding: the signature covers them as sent), and the
    names dropped. Runs before the signature check and the cache key, so ``utm_*`` and the
    like can neither break a signed URL nor create cache entries."""
    if not query:
        return query, ()
    kept: list[str] = []
    dropped: list[str] = []
    for pair in query.split("&"):
        name = unquote_plus(pair.partition("=")[0])
        if name and _ignored(name, extra):
            dropped.append(name)
        else:
            kept.append(pair)
    return ("&".join(kept), tuple(dropped)) if dropped else (query, ())


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
    upscale = False
    if "upscale" in raw:
        upscale = _choice("upscale", raw["upscale"], ("0", "1")) == "1"
    fit = _choice("fit", raw["fit"], FIT_NAMES) if "fit" in raw else "clip"
    fields["fit"], fields["upscale"] = imgix_fit(fit, upscale)
    if "crop" in raw:
        fields["crop"] = _choice("crop", raw["crop"], get_args(Crop))
        fields["crop_explicit"] = True
    if "fp-x" in raw or "fp-y" in raw:
        if fields["crop"] != "focalpoint":
            raise BadParameter("fp-x and fp-y need crop=focalpoint")
        # Kept to the precision the canonical query (the cache key) records.
        fields["focal_x"] = round(_float("fp-x", raw.get("fp-x", "0.5"), 0, 1), FOCAL_DIGITS)
        fields["focal_y"] = round(_float("fp-y", raw.get("fp-y", "0.5"), 0, 1), FOCAL_DIGITS)
    if "ar" in raw:
        aspect = _aspect(raw["ar"])
        if fields["fit"] != "crop":
            raise BadParameter("ar needs fit=crop (or fit=min): it sets the shape of the cut")
        completed = aspect_box(fields.get("width"), fields.get("height"), aspect)
        if completed is not None:
            fields["width"], fields["height"] = (_capped(side) for side in completed)
        elif "width" not in fields:  # neither side: the largest window of that aspect
            fields["aspect"] = aspect
    if "rect" in raw:
        fields["rect"] = _rect(raw["rect"])
    if "fm" in raw:
        fm = _choice("fm", raw["fm"], FORMAT_NAMES)
        fields["progressive"] = fm == "pjpg"
        fields["fm"] = "jpeg" if fm in ("jpg", "pjpg") else fm
    if "q" in raw and raw["q"] != "auto":
        fields["quality"] = _int("q", raw["q"], 1, 100)
    if "auto" in raw:
        wanted = {_choice("auto", part.strip(" "), AUTO_NAMES) for part in raw["auto"].split(",")}
        if "format" in wanted:  # imgix: negotiation wins over fm
            fields["fm"], fields["progressive"] = "auto", False
        # compress is q=auto, Loupe's default: an explicit q still wins, as in imgix
    if "policy" in raw:
        fields["policy"] = _choice("policy", raw["policy"], get_args(PolicyName))
    if "ctx" in raw:
        fields["ctx"] = _choice("ctx", raw["ctx"], get_args(Context))
    if "bg" in raw:
        fields["background"] = _background(raw["bg"])
    if "blur" in raw:
        fields["blur"] = _int("blur", raw["blur"], 0, MAX_BLUR)
    if "sharp" in raw:
        fields["sharp"] = _int("sharp", raw["sharp"], 0, MAX_SHARP)
    if "rot" in raw:
        fields["rotate"] = int(_choice("rot", raw["rot"], ROTATIONS))
    if "flip" in raw:
        fields["flip"] = FLIPS.get(raw["flip"]) or _choice("flip", raw["flip"], ("h", "v", "hv"))
    return TransformParams(**fields)


def _aspect(raw: str) -> tuple[float, float]:
    """``W:H`` (``16:9``, ``1.91:1``): two positive numbers, each at most 10000, a ratio
    between 1:100 and 100:1."""
    parts = raw.split(":")
    if len(parts) != 2:
        raise BadParameter(f"ar must be W:H, such as 16:9, got {raw!r}")
    width, height = (_float("ar", part.strip(" "), 0.0001, 10_000) for part in parts)
    if not 0.01 <= width / height <= 100:
        raise BadParameter(f"ar must be between 1:100 and 100:1, got {raw!r}")
    divisor = math.gcd(int(width), int(height)) if width.is_integer() and height.is_integer() else 1
    return width / divisor, height / divisor


def _scaled(value: int, dpr: float) -> int:
    return _capped(round(value * dpr))


def _capped(side: int) -> int:
    if side > MAX_DIMENSION * 4:
        raise BadParameter(f"w/h times dpr (or completed by ar) exceeds {MAX_DIMENSION * 4} pixels")
    return max(1, side)
