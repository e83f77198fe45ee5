"""Checks on every encoded output before it is cached or served: a broken, mis-sized,
mis-tagged, bloated or blank image caught here is one response, not a year in every cache.

One decode and one ``stats`` pass (min/max per band) feed every check, so a 600x400 JPEG is
checked in a few milliseconds when ``q=auto`` already measured its score. Garbage bytes are
a failed ``decodes`` check, never an exception.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import pyvips

from proxy.config import QAConfig
from proxy.formats import OUTPUTS
from proxy.quality import ssimulacra2

CHECKS = ("decodes", "dimensions", "quality", "srgb", "bytes", "not-blank")
NOT_RUN = "not run: does not decode"

# libvips loader (``vips-loader`` without ``_buffer``) of each output type, and the types
# loaded with every page: the formats table's.
LOADERS = {fmt.mime: fmt.loader for fmt in OUTPUTS.values()}
ANIMATABLE = frozenset(fmt.mime for fmt in OUTPUTS.values() if fmt.animation)
# 16-bit sRGB/grey is still sRGB: only the sample depth differs.
SRGB_INTERPRETATIONS = frozenset({"srgb", "b-w", "rgb16", "grey16"})
GREY_INTERPRETATIONS = frozenset({"b-w", "grey16"})
# A header claiming more pixels than this many times the expected ones is not decoded: the
# output is wrong anyway, and a bogus header must not cost a huge allocation.
MAX_DECODE_FACTOR = 4
MIN_BYTES_ABOVE_PIXELS = 64 * 64
BLACK_REFERENCE_MAX = 16  # the brightest 8-bit value of a source that counts as black
# The D50-adapted colorants (rXYZ, gXYZ, bXYZ) of sRGB, as every matrix sRGB profile
# stores them. Display P3 red is (0.515, 0.241, -0.001), Adobe RGB red (0.610, 0.311, 0.019).
SRGB_COLORANTS = (
    (0.4361, 0.2225, 0.0139),
    (0.3851, 0.7169, 0.0971),
    (0.1431, 0.0606, 0.7141),
)
COLORANT_TOLERANCE = 0.01


@dataclass(frozen=True)
class Check:
    name: str  # one of CHECKS
    ok: bool
    detail: str


@dataclass(frozen=True)
class QAReport:
    checks: tuple[Check, ...]

    @property
    def passed(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(check for check in self.checks if not check.ok)

    def to_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
        }


@dataclass(frozen=True)
class Expectation:
    """What the request asked for. ``floor``: the SSIMULACRA2 score to meet (None: quality is
    not checked, e.g. a fixed ``q=``); ``score``: the one ``q=auto`` already measured."""

    width: int
    height: int  # per frame for animations
    mime: str
    lossy: bool
    floor: float | None
    score: float | None
    frames: int = 1


@dataclass(frozen=True)
class QALimits:
    max_bytes_per_pixel: float = 4.0
    min_bytes: int = 64

    @classmethod
    def from_config(cls, qa: QAConfig) -> QALimits:
        return cls(max_bytes_per_pixel=qa.max_bytes_per_pixel, min_bytes=qa.min_bytes)


@dataclass(frozen=True)
class _Decoded:
    image: pyvips.Image
    loader: str
    page_height: int
    frames: int
    bands: list[tuple[float, float]]  # (min, max) of each band, alpha last when present


def check_output(
    body: bytes,
    expected: Expectation,
    limits: QALimits,
    *,
    reference: pyvips.Image | None = None,
) -> QAReport:
    """Run every check in ``CHECKS`` order. ``reference``: the image that was encoded (same
    size), to score against when no score is given and to tell a blank output from a blank
    source."""
    decoded = _decode(body, expected, full=reference is not None)
    if isinstance(decoded, str):
        failed = Check("decodes", False, decoded)
        return QAReport((failed, *(Check(name, False, NOT_RUN) for name in CHECKS[1:])))
    return QAReport(
        (
            Check("decodes", True, f"{decoded.loader}: {decoded.image.bands} bands"),
            _dimensions(decoded, expected),
            _quality(decoded, expected, reference),
            _srgb(decoded.image),
            _bytes(len(body), decoded, expected, limits),
            _not_blank(decoded, expected, reference),
        )
    )


def _decode(body: bytes, expected: Expectation, full: bool = True) -> _Decoded | str:
    """The decoded output, or why it does not decode."""
    prefix = LOADERS.get(expected.mime)
    if prefix is None:
        return f"no check for output type {expected.mime!r}"
    options: dict[str, Any] = {"fail_on": "error"}  # truncated data is an error, not grey
    if expected.mime in ANIMATABLE:
        options["n"] = -1
    try:
        image = pyvips.Image.new_from_buffer(body, "", **options)
        loader = str(image.get("vips-loader")).removesuffix("_buffer")
        if loader != prefix:
            return f"read by {loader}, not as {expected.mime}"
        if expected.mime == "image/avif":
            compression = (
                image.get("heif-compression") if image.get_typeof("heif-compression") else None
            )
            if compression != "av1":
                return f"HEIF with {compression} compression, not AVIF"
        pixels = int(image.width) * int(image.height)
        budget = MAX_DECODE_FACTOR * expected.width * expected.height * max(expected.frames, 1)
        if pixels > max(budget, 1 << 20):
            return f"header says {image.width}x{image.height}: not decoded"
        sampled = image
        small_copy_ok = not full and min(image.width, image.height) >= 64
        if expected.mime == "image/jpeg" and small_copy_ok:
            # DCT scaling: every coefficient is still entropy-decoded (a damaged stream
            # fails the same), only the full-size inverse DCT is skipped (1/8: the DC
            # coefficient alone): 3.8 -> 1.8 ms for a 600x400 output.
            sampled = pyvips.Image.new_from_buffer(body, "", fail_on="error", shrink=8)
        elif expected.mime == "image/webp" and small_copy_ok and expected.frames == 1:
            # libwebp's scaled decoding reconstructs every macroblock into its rescaler;
            # only the full-size colour conversion is skipped: ~2x cheaper.
            sampled = pyvips.Image.webpload_buffer(body, fail_on="error", scale=0.25)
        stats = sampled.stats().tolist()  # decodes every pixel, once
    except pyvips.Error as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        return "does not decode: " + "; ".join(lines[1:] or lines)
    page_height = int(image.get("page-height")) if image.get_typeof("page-height") else 0
    if not 0 < page_height <= image.height or image.height % page_height:
        page_height = int(image.height)
    return _Decoded(
        image=image,
        loader=loader,
        page_height=page_height,
        frames=int(image.height) // page_height,
        bands=[(float(row[0]), float(row[1])) for row in stats[1:]],
    )


def _dimensions(decoded: _Decoded, expected: Expectation) -> Check:
    got = f"{decoded.image.width}x{decoded.page_height}"
    want = f"{expected.width}x{expected.height}"
    if decoded.frames != 1 or expected.frames != 1:
        got += f" x {decoded.frames} frames"
        want += f" x {expected.frames} frames"
    if got == want:
        return Check("dimensions", True, f"{got} as requested")
    merged = (
        expected.mime in ANIMATABLE
        and (decoded.image.width, decoded.page_height) == (expected.width, expected.height)
        and 1 <= decoded.frames < expected.frames
    )
    if merged:  # cgif and libwebp fold an identical frame into the one before (its delay too)
        return Check(
            "dimensions",
            True,
            f"{got}: {expected.frames} rendered, identical consecutive frames merged",
        )
    return Check("dimensions", False, f"{got}, expected {want}")


def _quality(decoded: _Decoded, expected: Expectation, reference: pyvips.Image | None) -> Check:
    floor = expected.floor
    if floor is None:
        return Check("quality", True, "skipped: no floor (fixed quality)")
    if not expected.lossy:
        return Check("quality", True, "skipped: lossless output")
    if expected.score is not None:
        value, how = expected.score, "measured"
    elif reference is not None:
        try:
            value, how = ssimulacra2.score(reference, decoded.image), "computed"
        except (ValueError, pyvips.Error) as exc:
            return Check("quality", False, f"cannot score against the reference: {exc}")
    else:
        return Check("quality", False, f"floor {floor:g} but no score and no reference")
    if value >= floor:
        return Check("quality", True, f"score {value:.1f} ({how}) meets floor {floor:g}")
    return Check("quality", False, f"score {value:.1f} ({how}) below floor {floor:g}")


def _srgb(image: pyvips.Image) -> Check:
    interpretation = str(image.interpretation)
    if interpretation not in SRGB_INTERPRETATIONS:
        return Check("srgb", False, f"{interpretation} pixels, not sRGB")
    if not image.get_typeof("icc-profile-data"):
        return Check("srgb", True, f"{interpretation}, untagged (sRGB by default)")
    grey = interpretation in GREY_INTERPRETATIONS
    ok, why = srgb_profile(bytes(image.get("icc-profile-data")), grey=grey)
    return Check("srgb", ok, f"{interpretation}, {why}")


def srgb_profile(profile: bytes, *, grey: bool = False) -> tuple[bool, str]:
    """Whether an ICC profile describes sRGB (a grey profile on ``grey`` pixels), and why.

    A matrix profile is judged by its colorants, whatever it is called (the 480-byte libvips
    and "c2" profiles say little); a LUT-only profile by a description naming sRGB."""
    try:
        space, description, colorants = _icc_summary(profile)
    except (ValueError, struct.error, UnicodeDecodeError) as exc:
        return False, f"unreadable ICC profile: {exc}"
    name = f"ICC {space} profile {description!r}"
    if space == "GRAY":
        return grey, f"{name} {'on grey pixels' if grey else 'on colour pixels'}"
    if space != "RGB":
        return False, f"{name} is not sRGB"
    if colorants is not None:
        close = all(
            abs(got - want) <= COLORANT_TOLERANCE
            for pair in zip(colorants, SRGB_COLORANTS, strict=True)
            for got, want in zip(*pair, strict=True)
        )
        return close, f"{name} {'has' if close else 'lacks'} the sRGB primaries"
    named = "srgb" in description.lower()
    return named, f"{name} {'names' if named else 'does not name'} sRGB"


def _icc_summary(
    profile: bytes,
) -> tuple[str, str, list[tuple[float, float, float]] | None]:
    """(colour space, description, rXYZ/gXYZ/bXYZ or None) from the header and tag table."""
    if len(profile) < 132 or profile[36:40] != b"acsp":
        raise ValueError("no ICC header")
    space = profile[16:20].decode("ascii", "replace").strip()
    (count,) = struct.unpack_from(">I", profile, 128)
    if count > (len(profile) - 132) // 12:
        raise ValueError(f"{count} tags do not fit in {len(profile)} bytes")
    tags: dict[bytes, bytes] = {}
    for number in range(count):
        signature, offset, size = struct.unpack_from(">4sII", profile, 132 + 12 * number)
        if offset + size <= len(profile):
            tags[signature] = profile[offset : offset + size]
    description = _icc_text(tags.get(b"desc", b""))
    matrix = [tags.get(signature) for signature in (b"rXYZ", b"gXYZ", b"bXYZ")]
    colorants = [_icc_xyz(tag) for tag in matrix if tag is not None]
    return space, description, colorants if len(colorants) == 3 else None


def _icc_text(tag: bytes) -> str:
    """A ``desc`` (ICC v2), ``mluc`` (v4, first record) or ``text`` tag as a string."""
    kind = tag[:4]
    if kind == b"desc" and len(tag) >= 12:
        (length,) = struct.unpack_from(">I", tag, 8)
        return tag[12 : 12 + length].split(b"\0")[0].decode("latin-1")
    if kind == b"mluc" and len(tag) >= 28:
        (records,) = struct.unpack_from(">I", tag, 8)
        length, offset = struct.unpack_from(">II", tag, 20)
        if records and offset + length <= len(tag):
            return tag[offset : offset + length].decode("utf-16-be").rstrip("\0")
    if kind == b"text":
        return tag[8:].split(b"\0")[0].decode("latin-1")
    return ""


def _icc_xyz(tag: bytes) -> tuple[float, float, float]:
    if tag[:4] != b"XYZ " or len(tag) < 20:
        raise ValueError("colorant is not an XYZ tag")
    x, y, z = struct.unpack_from(">iii", tag, 8)
    return x / 65536, y / 65536, z / 65536


HEADER_ALLOWANCE = 4096


def _bytes(size: int, decoded: _Decoded, expected: Expectation, limits: QALimits) -> Check:
    frame_pixels = int(decoded.image.width) * decoded.page_height
    pixels = frame_pixels * decoded.frames
    per_pixel = size / pixels
    # Headers (JFIF, VP8X, the AVIF boxes, an sRGB profile) cost the same at any size, so
    # a thumbnail's bytes per pixel says nothing until they are allowed for.
    allowed = limits.max_bytes_per_pixel * pixels + HEADER_ALLOWANCE * decoded.frames
    if expected.lossy and size > allowed:
        return Check(
            "bytes",
            False,
            f"{size} bytes for {pixels} px: {per_pixel:.2f} B/px above "
            f"{limits.max_bytes_per_pixel:g} (+{HEADER_ALLOWANCE} B of headers) for a lossy output",
        )
    if frame_pixels > MIN_BYTES_ABOVE_PIXELS and size < limits.min_bytes:
        return Check(
            "bytes",
            False,
            f"{size} bytes for {decoded.image.width}x{decoded.page_height}: below the "
            f"{limits.min_bytes}-byte minimum",
        )
    return Check("bytes", True, f"{size} bytes, {per_pixel:.3f} B/px")


def _not_blank(decoded: _Decoded, expected: Expectation, reference: pyvips.Image | None) -> Check:
    flat = all(low == high for low, high in decoded.bands)
    if reference is not None:
        if not flat:
            return Check("not-blank", True, "varies, like the reference")
        colour = "(" + ", ".join(f"{low:g}" for low, _ in decoded.bands) + ")"
        if _is_flat(reference):
            return Check("not-blank", True, f"flat {colour}, and so is the reference")
        return Check("not-blank", False, f"one flat colour {colour}; the reference is not flat")
    colour_bands = decoded.bands[:-1] if decoded.image.hasalpha() else decoded.bands
    black = max(high for _, high in colour_bands) == 0
    if black and expected.lossy:
        return Check("not-blank", False, "entirely black lossy output")
    return Check("not-blank", True, "flat" if flat else "varies")


def black_like_reference(report: QAReport, reference: bytes) -> QAReport:
    """``report`` with its black-output failure lifted when ``reference`` (the same request
    rendered losslessly) is black too: then the source is, and the output tells the truth.
    A dark source may quantise to all-black, so "black" allows ``BLACK_REFERENCE_MAX``."""
    try:
        image = pyvips.Image.new_from_buffer(reference, "", fail_on="error")
        rows = image.stats().tolist()[1:]
    except pyvips.Error:
        return report
    colour = rows[:-1] if image.hasalpha() and len(rows) > 1 else rows
    scale = 257.0 if image.format == "ushort" else 1.0
    brightest = max(row[1] for row in colour) / scale
    if brightest > BLACK_REFERENCE_MAX:
        return report
    detail = f"black, and so is the source rendered losslessly (brightest {brightest:g})"
    return QAReport(
        tuple(
            Check(check.name, True, detail) if check.name == "not-blank" else check
            for check in report.checks
        )
    )


def _is_flat(image: pyvips.Image) -> bool:
    rows = image.stats().tolist()[1:]
    return all(row[0] == row[1] for row in rows)
