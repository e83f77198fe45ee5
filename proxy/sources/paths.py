"""The one spelling of a source path.

Every layer that keys anything by source (moderation, rules, overrides, purges, the store,
the lane, the caches, ``/meta``) takes a ``SourcePath``, and the only way to make one from
outside input is :func:`canonical_path`. So ``a.png/``, ``//a.png``, ``./a.png`` or
``%2e/a.png`` can never become a second source beside ``a.png``: the server redirects them
to the canonical spelling (``request_source_path``), and everything else is refused.
Rules, generations and purges sit on a ``SourcePrefix``: a canonical path (every
``SourcePath`` is one) or ``EVERY_SOURCE``; paths read back from the store were canonical
when written.

Refused (400): ``..`` segments, backslashes, control and format characters (NUL, bidi
overrides, zero-width joiners), characters that stand in for a slash or a dot under Unicode
compatibility (the fullwidth solidus U+FF0F, fullwidth full stops U+FF0E), undecodable
UTF-8 and percent-escapes left after decoding (double encoding). Too long: a segment over
``MAX_SEGMENT_BYTES`` names no file (404), a path over ``MAX_PATH_BYTES`` is 414.
"""

from __future__ import annotations

import re
import unicodedata
from typing import NewType

from proxy.errors import LoupeError, SourceNotFound

# Where an exception rule or a decision generation sits: a canonical folder or source path,
# or "" (``EVERY_SOURCE``). Every ``SourcePath`` is one (the prefix of itself).
SourcePrefix = NewType("SourcePrefix", str)
SourcePath = NewType("SourcePath", SourcePrefix)
EVERY_SOURCE = SourcePrefix("")

MAX_SEGMENT_BYTES = 255  # NAME_MAX of every common file system
MAX_PATH_BYTES = 1024  # far below PATH_MAX, a store key and an origin URL
_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


class BadPath(LoupeError):
    """A source path that cannot be one (.., a backslash, a control character...)."""


class PathTooLong(LoupeError):
    """A source path longer than the limit."""


class NotCanonical(LoupeError):
    """Another spelling of a source: a permanent redirect to its canonical path."""

    def __init__(self, canonical: SourcePath, location: str) -> None:
        super().__init__(
            f"the canonical path of this source is {canonical!r}",
            headers={"Location": location},
        )
        self.canonical = canonical


def _refuse_characters(path: str) -> None:
    if "\\" in path:
        raise BadPath("backslashes are not allowed in source paths")
    if "\ufffd" in path:
        raise BadPath("the path is not valid UTF-8")
    if _ESCAPE.search(path):
        raise BadPath("the path is percent-encoded twice")
    for char in path:
        if unicodedata.category(char) in _REFUSED_CATEGORIES:
            raise BadPath(f"the path holds the control or format character U+{ord(char):04X}")


def _refuse_compatibility_tricks(segments: list[str]) -> None:
    """A character that a compatibility-normalising origin or file system would read as
    ``/``, ``\\`` or a dot segment (fullwidth solidus, one-dot leader, ...)."""
    for segment in segments:
        folded = unicodedata.normalize("NFKC", segment)
        if folded == segment:
            continue
        if "/" in folded or "\\" in folded or folded.strip() in (".", ".."):
            raise BadPath(f"the segment {segment!r} reads as a separator or a dot segment")


def canonical_path(raw: str) -> SourcePath:
    """The canonical spelling of ``raw`` (a decoded path, with or without slashes around it):
    NFC, no empty or ``.`` segments, no leading or trailing ``/``. Raises ``BadPath``,
    ``PathTooLong`` or ``SourceNotFound`` for paths no source can have."""
    if len(raw.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise PathTooLong(f"source paths are at most {MAX_PATH_BYTES} bytes")
    _refuse_characters(raw)
    text = unicodedata.normalize("NFC", raw)
    segments = [segment for segment in text.split("/") if segment not in ("", ".")]
    if ".." in segments:
        raise BadPath("'..' segments are not allowed in source paths")
    if not segments:
        raise SourceNotFound("no source path given")
    _refuse_compatibility_tricks(segments)
    for segment in segments:
        if len(segment.encode()) > MAX_SEGMENT_BYTES:
            raise SourceNotFound(f"no source has a name longer than {MAX_SEGMENT_BYTES} bytes")
        if segment != segment.strip() or segment.endswith("."):
            raise SourceNotFound(
                f"no source name ends in a dot or starts or ends with a space: {segment!r}"
            )
    return SourcePath(SourcePrefix("/".join(segments)))


def canonical_prefix(raw: str) -> SourcePath | None:
    """A folder or source prefix (exception rules): canonical, or None for "every source"."""
    if not raw.strip().strip("/"):
        return None
    return canonical_path(raw.strip())


def split_first(path: SourcePath) -> tuple[str, SourcePath | None]:
    """The first segment of a canonical path and the rest (canonical too), or None when the
    path has one segment."""
    first, _, rest = path.partition("/")
    return first, SourcePath(SourcePrefix(rest)) if rest else None


def joined(folder: str, path: SourcePath) -> SourcePath:
    """``path`` inside ``folder`` (one canonical segment, an origin's name)."""
    return SourcePath(SourcePrefix(f"{folder}/{path}"))


def ancestors(path: SourcePath) -> list[SourcePrefix]:
    """Every prefix a folder rule or generation can sit on: ``""`` (every source), each
    parent folder, and the path itself."""
    parts = path.split("/")
    return [EVERY_SOURCE, *(SourcePrefix("/".join(parts[: n + 1])) for n in range(len(parts)))]
