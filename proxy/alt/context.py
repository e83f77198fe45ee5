"""What the vision model may use as hints besides the pixels: where the image lives, a caption
or title from a sidecar file, and a few EXIF fields.

Only non-identifying EXIF is kept (description, date, camera): Artist, Copyright, GPS and
serial numbers name or locate people, and alt text must never do either. Everything here is
untrusted input (filenames and captions are written by anyone who can upload), so values are
trimmed, stripped of control characters and length-capped before they reach a prompt.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any

import pyvips

MAX_SIDECAR_BYTES = 64 * 1024
"""A caption file larger than this is not a caption; refusing it bounds memory and prompt size."""

MAX_FIELD_CHARS = 300
"""Longest caption, title or EXIF value passed on; longer ones are cut at a word boundary."""

# EXIF tags as libvips names them, in order of preference per hint.
_EXIF_SOURCES: dict[str, tuple[str, ...]] = {
    "description": ("exif-ifd0-ImageDescription",),
    "date": ("exif-ifd2-DateTimeOriginal", "exif-ifd2-DateTimeDigitized", "exif-ifd0-DateTime"),
}
_MAKE = "exif-ifd0-Make"
_MODEL = "exif-ifd0-Model"

# libvips renders an EXIF string as "<value> (<value>, <format>, <n> components, <n> bytes)".
_EXIF_SUFFIX = re.compile(r", [A-Za-z]+, \d+ components, \d+ bytes\)\Z")
_EXIF_DATE = re.compile(r"\A(\d{4}):(\d{2}):(\d{2})")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]+")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class AltContext:
    """Hints for one source image; stored with its alt text so a reviewer sees what the model
    was told."""

    folder: str
    filename: str
    caption: str | None = None
    title: str | None = None
    exif: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # frozen means frozen: a caller's dict must not change the context after the fact
        object.__setattr__(self, "exif", MappingProxyType(dict(self.exif)))

    def to_json(self) -> dict[str, Any]:
        return {
            "folder": self.folder,
            "filename": self.filename,
            "caption": self.caption,
            "title": self.title,
            "exif": dict(self.exif),
        }


def clean_text(value: object, limit: int = MAX_FIELD_CHARS) -> str | None:
    """A hint as one tidy line, or ``None`` when it is not a non-empty string."""
    if not isinstance(value, str):
        return None
    text = _SPACES.sub(" ", _CONTROL.sub(" ", value)).strip()
    if not text:
        return None
    if len(text) > limit:
        cut = text[:limit]
        space = cut.rfind(" ")
        text = (cut[:space] if space > limit // 2 else cut).rstrip() + "…"
    return text


def read_sidecar(source_file: Path) -> dict[str, Any] | None:
    """The JSON object in ``photo.jpg.json`` (preferred) or ``photo.json`` beside the source.

    ``None`` when there is none, it is too big, unreadable or not a JSON object: a broken
    caption file must never stop alt text, only lose the hint.
    """
    candidates = (
        source_file.with_name(source_file.name + ".json"),
        source_file.with_suffix(".json") if source_file.suffix else None,
    )
    for candidate in candidates:
        if candidate is None or candidate == source_file:
            continue
        try:
            if not candidate.is_file():
                continue
            with candidate.open("rb") as handle:
                raw = handle.read(MAX_SIDECAR_BYTES + 1)
        except OSError:
            continue
        if len(raw) > MAX_SIDECAR_BYTES:
            return None
        try:
            parsed = json.loads(raw.decode("utf-8-sig"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return None
        return parsed if isinstance(parsed, dict) else None
    return None


def exif_value(raw: object) -> str | None:
    """The value part of a libvips EXIF string (``"Canon (Canon, ASCII, 6 components, ...)"``)."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    if not isinstance(raw, str):
        return None
    suffix = _EXIF_SUFFIX.search(raw)
    if suffix is not None:
        head = raw[: suffix.start()]  # "<value> (<value>"
        half = (len(head) - 2) // 2
        if head[half : half + 2] == " (" and head[:half] == head[half + 2 :]:
            raw = head[:half]
        else:
            # the two renderings differ (libexif reformats some types): take the first
            raw = head.split(" (", 1)[0]
    return clean_text(raw)


def exif_hints(image: pyvips.Image) -> dict[str, str]:
    """Description, date and camera from an image's header; unreadable fields are skipped."""
    try:
        fields = set(image.get_fields())
    except Exception:  # pyvips raises Error or a cffi error on broken headers
        return {}

    def read(name: str) -> str | None:
        if name not in fields:
            return None
        try:
            return exif_value(image.get(name))
        except Exception:
            return None

    hints: dict[str, str] = {}
    for key, names in _EXIF_SOURCES.items():
        for name in names:
            value = read(name)
            if value:
                hints[key] = value
                break
    if "date" in hints:
        hints["date"] = _EXIF_DATE.sub(r"\1-\2-\3", hints["date"])
    make, model = read(_MAKE), read(_MODEL)
    if make and model and model.lower().startswith(make.lower()):
        make = None  # "Canon" + "Canon EOS 5D"
    camera = " ".join(part for part in (make, model) if part)
    if camera:
        hints["camera"] = camera
    return hints


def context_for(path: str, blob: bytes, sidecar: Mapping[str, Any] | None = None) -> AltContext:
    """Everything the prompt may mention about ``path``; never raises on odd input, because a
    missing hint only makes the description plainer."""
    parts = [part for part in PurePosixPath(str(path).replace("\\", "/")).parts if part != "/"]
    filename = clean_text(parts[-1] if parts else "") or ""
    folder = clean_text("/".join(parts[:-1])) or ""
    exif: dict[str, str] = {}
    try:
        image = pyvips.Image.new_from_buffer(blob, "")
    except Exception:  # pyvips.Error for unknown formats; TypeError etc. for non-bytes
        image = None
    if image is not None:
        exif = exif_hints(image)
    data: Mapping[str, Any] = sidecar if isinstance(sidecar, Mapping) else {}
    return AltContext(
        folder=folder,
        filename=filename,
        caption=clean_text(data.get("caption")),
        title=clean_text(data.get("title")),
        exif=exif,
    )
