"""Validation, before any pixel is decoded: byte limit, magic bytes against the allowed
formats (the formats table's sources), polyglot and malware checks, then the header's
pixel and frame limits.

Rule-based and cheap, so hostile input is refused with a specific 4xx before libvips
does real work. libvips' untrusted loaders (ImageMagick, PDF, ...) are blocked process-
wide as well (``runtime.configure_process``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pyvips

from proxy.config import LimitsConfig
from proxy.errors import DamagedImage, SourceTooLarge, UnsupportedImage
from proxy.formats import SourceFormat, allowed_sources, source_by_loader
from proxy.processing.plan import SourceInfo

Scanner = Callable[[bytes], None]


class PolyglotImage(UnsupportedImage):
    """An image that also carries another file format."""


def sniff(blob: bytes) -> SourceFormat | None:
    """The format the leading bytes declare, or None."""
    head = blob[:64]
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[4:8] == b"ftyp" and head[8:12] in (
        b"avif",
        b"avis",
        b"heic",
        b"heix",
        b"mif1",
        b"msf1",
    ):
        return "heif"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in blob[:4096].lower()):
        return "svg"
    return None


def _zip_directory(blob: bytes) -> bool:
    """A ZIP end-of-central-directory record that a ZIP reader would really find: it must
    end exactly at the end of the file (after its comment), which random pixels never do."""
    tail_start = max(0, len(blob) - 65_557)
    found = blob.rfind(b"PK\x05\x06", tail_start)
    while found != -1:
        if found + 22 <= len(blob):
            comment = int.from_bytes(blob[found + 20 : found + 22], "little")
            if found + 22 + comment == len(blob):
                return True
        found = blob.rfind(b"PK\x05\x06", tail_start, found)
    return False


def _polyglot_marker(blob: bytes) -> str | None:
    """Another format hidden in the image: a ZIP (JAR, DOCX) directory, or markup/script."""
    if _zip_directory(blob):
        return "a ZIP archive"
    lowered = blob[:4096].lower()
    for marker in (b"<script", b"<html", b"<?php"):
        if marker in lowered:
            return "markup or script"
    return None


@dataclass(frozen=True)
class ValidationRules:
    limits: LimitsConfig
    allow_svg: bool = False
    scan: Scanner | None = None

    @property
    def allowed(self) -> frozenset[SourceFormat]:
        return allowed_sources(svg=self.allow_svg)


# The options of the common load (no shrink, one frame, top to bottom): the header opened
# with them during validation is the image ``load`` uses, so it is not parsed twice.
COMMON_LOAD = {"access": "sequential", "fail_on": "truncated"}


def validate(blob: bytes, rules: ValidationRules) -> tuple[SourceInfo, pyvips.Image]:
    """Header facts, and the header image opened with ``COMMON_LOAD`` options."""
    limits = rules.limits
    if not blob:
        raise UnsupportedImage("the source is empty (0 bytes)")
    if len(blob) > limits.max_source_bytes:
        raise SourceTooLarge(f"source is {len(blob)} bytes; the limit is {limits.max_source_bytes}")
    declared = sniff(blob)
    if declared is None or declared not in rules.allowed:
        kind = (
            "is not an image format Loupe reads"
            if declared is None
            else f"is {declared}, not allowed"
        )
        raise UnsupportedImage(f"the source {kind}")
    hidden = _polyglot_marker(blob)
    if hidden and declared != "svg":
        raise PolyglotImage(f"the {declared} source also contains {hidden}; refused")
    if rules.scan is not None:
        rules.scan(blob)
    return probe(blob, declared, limits)


def probe(blob: bytes, declared: str, limits: LimitsConfig) -> tuple[SourceInfo, pyvips.Image]:
    """Header facts; the pixel and frame limits hold before anything is decoded."""
    try:
        header = pyvips.Image.new_from_buffer(blob, "", **COMMON_LOAD)
        loader = str(header.get("vips-loader"))
    except pyvips.Error as exc:
        raise DamagedImage(
            f"cannot read the {declared} header: {str(exc).splitlines()[0]}"
        ) from None
    actual = source_by_loader(loader)
    if actual != declared:
        raise UnsupportedImage(f"the bytes say {declared} but libvips reads {loader}; refused")
    fields = set(header.get_fields())
    pages = int(header.get("n-pages")) if "n-pages" in fields else 1
    try:
        orientation = int(header.get("orientation")) if "orientation" in fields else 1
    except (pyvips.Error, ValueError):
        orientation = 1  # broken EXIF: show the image as stored
    orientation = orientation if 1 <= orientation <= 8 else 1
    width, height = header.width, header.height
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    if width * height > limits.max_source_pixels:
        raise SourceTooLarge(
            f"source is {width}x{height} = {width * height} pixels; "
            f"the limit is {limits.max_source_pixels}"
        )
    if pages > limits.max_frames:
        raise SourceTooLarge(f"source has {pages} frames; the limit is {limits.max_frames}")
    info = SourceInfo(
        format=declared,
        width=width,
        height=height,
        pages=pages,
        orientation=orientation,
        has_alpha=bool(header.hasalpha()),
        bytes=len(blob),
    )
    return info, header
