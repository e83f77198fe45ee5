"""The image formats Loupe reads and writes: one table, like imgproxy's ``imagetype``.

A row says everything the proxy asks of a format: its MIME type, whether it is encoded
lossily at a quality (``Q``), whether it carries alpha and animation, the libvips loader
that reads it and the saver (suffix and fixed options) that writes it. Output formats are
what ``fm`` names and negotiation picks; source formats what validation lets in (an AVIF
source is read, and named, as HEIF). Every list of formats elsewhere is a lookup here.

A leaf: nothing of the proxy is imported, so negotiation, processing, QA and the policies
all share this vocabulary without importing one another.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, get_args

# In the table's order; the table test keeps the two equal.
OutputFormat = Literal["jpeg", "png", "webp", "avif", "gif"]
SourceFormat = Literal["jpeg", "png", "webp", "gif", "heif", "tiff", "svg"]


@dataclass(frozen=True)
class ImageFormat:
    name: str
    mime: str
    loader: str  # the libvips loader that reads it: ``vips-loader`` without ``_buffer``
    lossy: bool  # encoded at a quality (Q); PNG and GIF have no quality knob
    alpha: bool  # keeps an alpha channel
    animation: bool  # keeps every frame
    saver: str | None = None  # libvips saver suffix (``write_to_buffer``); None: never written
    # The options of every save, beside those finalize sets per plan (quality, effort...).
    save_options: Mapping[str, Any] = field(default_factory=dict)
    source: bool = False  # accepted as a source: validation sniffs and allows it by this name
    opt_in: bool = False  # a source only where the configuration allows it (SVG)
    suffixes: tuple[str, ...] = ()  # file name endings of such sources (lower case)


TABLE: tuple[ImageFormat, ...] = (
    ImageFormat(
        "jpeg",
        "image/jpeg",
        "jpegload",
        lossy=True,
        alpha=False,
        animation=False,
        saver=".jpg",
        save_options=MappingProxyType({"optimize_coding": True, "keep": "icc"}),
        source=True,
        suffixes=(".jpg", ".jpeg"),
    ),
    ImageFormat(
        "png",
        "image/png",
        "pngload",
        lossy=False,
        alpha=True,
        animation=False,
        saver=".png",
        save_options=MappingProxyType({"keep": "icc"}),
        source=True,
        suffixes=(".png",),
    ),
    ImageFormat(
        "webp",
        "image/webp",
        "webpload",
        lossy=True,
        alpha=True,
        animation=True,
        saver=".webp",
        save_options=MappingProxyType({"keep": "icc"}),
        source=True,
        suffixes=(".webp",),
    ),
    ImageFormat(
        "avif",
        "image/avif",
        "heifload",
        lossy=True,
        alpha=True,
        animation=False,
        saver=".avif",
        save_options=MappingProxyType({"compression": "av1", "keep": "icc"}),
    ),
    ImageFormat(
        "gif",
        "image/gif",
        "gifload",
        lossy=False,
        alpha=True,
        animation=True,
        saver=".gif",
        save_options=MappingProxyType({"keep": "none"}),
        source=True,
        suffixes=(".gif",),
    ),
    ImageFormat(
        "heif",
        "image/heif",
        "heifload",
        lossy=True,
        alpha=True,
        animation=False,
        source=True,
        suffixes=(".avif", ".heic", ".heif"),
    ),
    ImageFormat(
        "tiff",
        "image/tiff",
        "tiffload",
        lossy=False,
        alpha=True,
        animation=False,
        source=True,
        suffixes=(".tif", ".tiff"),
    ),
    ImageFormat(
        "svg",
        "image/svg+xml",
        "svgload",
        lossy=False,
        alpha=True,
        animation=False,
        source=True,
        opt_in=True,
        suffixes=(".svg",),
    ),
)

FORMATS: Mapping[str, ImageFormat] = MappingProxyType({fmt.name: fmt for fmt in TABLE})
OUTPUT_NAMES: tuple[OutputFormat, ...] = get_args(OutputFormat)
SOURCE_NAMES: tuple[SourceFormat, ...] = get_args(SourceFormat)
OUTPUTS: Mapping[OutputFormat, ImageFormat] = MappingProxyType(
    {name: FORMATS[name] for name in OUTPUT_NAMES}
)
# Formats encoded at a quality, in table order (the quality predictor's one-hot order).
LOSSY_FORMATS: tuple[OutputFormat, ...] = tuple(n for n in OUTPUT_NAMES if OUTPUTS[n].lossy)
ALPHA_FORMATS: frozenset[OutputFormat] = frozenset(n for n in OUTPUT_NAMES if OUTPUTS[n].alpha)
ANIMATED_FORMATS: frozenset[OutputFormat] = frozenset(
    n for n in OUTPUT_NAMES if OUTPUTS[n].animation
)


def output(name: OutputFormat) -> ImageFormat:
    """The row of an output format."""
    return OUTPUTS[name]


def output_by_mime(mime: str) -> ImageFormat | None:
    """The output format served as ``mime``, or None."""
    return next((fmt for fmt in OUTPUTS.values() if fmt.mime == mime), None)


def source_by_loader(loader: str) -> SourceFormat | None:
    """The source format a ``vips-loader`` name (``jpegload_buffer``...) reads, or None."""
    return next((name for name in SOURCE_NAMES if loader.startswith(FORMATS[name].loader)), None)


def allowed_sources(*, svg: bool) -> frozenset[SourceFormat]:
    """The source formats validation lets in; ``svg``: the opt-in ones too."""
    return frozenset(name for name in SOURCE_NAMES if svg or not FORMATS[name].opt_in)


def source_suffixes(*, svg: bool) -> frozenset[str]:
    """The file name endings of the sources ``allowed_sources`` lets in."""
    return frozenset(s for name in allowed_sources(svg=svg) for s in FORMATS[name].suffixes)
