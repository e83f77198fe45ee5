"""Output-format negotiation: the ``Accept`` header plus what the source needs.

Pure functions, so the rules (AVIF, then WebP, then JPEG, or PNG for alpha; animation
stays animated where the format can animate; lossless-only policies) are easy to test.
What each format can carry (alpha, animation) is the formats table's.
"""

from __future__ import annotations

from dataclasses import dataclass

from proxy.formats import ANIMATED_FORMATS, OutputFormat, output
from proxy.params import Format


@dataclass(frozen=True)
class AcceptClass:
    """Which modern formats a client takes; the only part of ``Accept`` that changes output."""

    avif: bool
    webp: bool

    @property
    def key(self) -> str:
        return ("avif," if self.avif else "") + ("webp" if self.webp else "")

    @classmethod
    def from_key(cls, key: str) -> AcceptClass:
        """The class whose ``key`` this is (as the lane's jobs and cache entries carry it)."""
        return cls(avif="avif" in key, webp="webp" in key)


def parse_accept(header: str | None) -> AcceptClass:
    accepted: set[str] = set()
    for part in (header or "").split(","):
        media, *options = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for option in options:
            name, _, value = option.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            accepted.add(media.lower())
    return AcceptClass(avif=output("avif").mime in accepted, webp=output("webp").mime in accepted)


@dataclass(frozen=True)
class FormatChoice:
    format: OutputFormat
    lossless: bool
    animated: bool
    note: str | None = None


def choose_format(
    requested: Format, accept: AcceptClass, *, has_alpha: bool, animated: bool, lossy_allowed: bool
) -> FormatChoice:
    if not lossy_allowed:
        # Lossless-only policies override the request: PNG or lossless WebP, never lossy.
        wants_webp = requested == "webp" or (requested == "auto" and accept.webp)
        fmt: OutputFormat = "webp" if wants_webp else "png"
        note = None if requested in ("auto", fmt) else f"policy-lossless:{requested}->{fmt}"
        return FormatChoice(fmt, True, animated and fmt in ANIMATED_FORMATS, note)
    if requested != "auto":
        can_animate = animated and requested in ANIMATED_FORMATS
        note = "animation-dropped" if animated and not can_animate else None
        return FormatChoice(requested, requested == "png", can_animate, note)
    if animated:
        fmt = "webp" if accept.webp else "gif"
        return FormatChoice(fmt, False, True)
    if accept.avif:
        return FormatChoice("avif", False, False)
    if accept.webp:
        return FormatChoice("webp", False, False)
    return FormatChoice("png", True, False) if has_alpha else FormatChoice("jpeg", False, False)
