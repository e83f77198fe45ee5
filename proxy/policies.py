"""Compression policies: which qualities a kind of content may be given (a fixed quality
for each lossy format of the formats table).

The defaults are embedded so an installed wheel works without the repo's ``config/``;
``config/policies.toml`` documents the same table (a test keeps the two equal) and
``images.policies_file`` points at a replacement.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from proxy.config import read_toml
from proxy.errors import ConfigError
from proxy.formats import LOSSY_FORMATS


@dataclass(frozen=True)
class Policy:
    name: str
    lossy: bool
    min_quality: int | None = None
    target: float | None = None
    consider_lossless: bool = False
    default_quality: Mapping[str, int] = field(default_factory=dict)

    def quality_for(self, fmt: str) -> int:
        """The fixed quality used when nothing was measured."""
        return int(self.default_quality.get(fmt, self.min_quality or 80))


def _policy(name: str, raw: Mapping[str, Any]) -> Policy:
    known = {"min_quality", "target", "lossy", "consider_lossless", "default_quality"}
    unknown = set(raw) - known
    if unknown:
        raise ConfigError(f"policy {name!r}: unknown keys {sorted(unknown)}")
    quality = dict(raw.get("default_quality", {}))
    for fmt, q in quality.items():
        if fmt not in LOSSY_FORMATS or not isinstance(q, int) or not 1 <= q <= 100:
            raise ConfigError(
                f"policy {name!r}: default_quality.{fmt} must be 1-100 for "
                + "/".join(LOSSY_FORMATS)
            )
    lossy = raw.get("lossy", True)
    if lossy and set(quality) != set(LOSSY_FORMATS):
        raise ConfigError(
            f"policy {name!r}: a lossy policy needs default_quality for " + ", ".join(LOSSY_FORMATS)
        )
    return Policy(
        name=name,
        lossy=bool(lossy),
        min_quality=raw.get("min_quality"),
        target=raw.get("target"),
        consider_lossless=bool(raw.get("consider_lossless", False)),
        default_quality=MappingProxyType(quality),
    )


def parse_policies(raw: Mapping[str, Any]) -> dict[str, Policy]:
    return {name: _policy(name, body) for name, body in raw.items()}


DEFAULT_POLICIES: Mapping[str, Policy] = MappingProxyType(
    parse_policies(
        {
            "general": {
                "min_quality": 50,
                "target": 75,
                "lossy": True,
                "default_quality": {"jpeg": 80, "webp": 80, "avif": 60},
            },
            "product": {
                "min_quality": 85,
                "target": 80,
                "lossy": True,
                "default_quality": {"jpeg": 88, "webp": 88, "avif": 72},
            },
            "art": {
                "min_quality": 88,
                "target": 85,
                "lossy": True,
                "default_quality": {"jpeg": 90, "webp": 90, "avif": 76},
            },
            "screenshot": {
                "target": 85,
                "lossy": True,
                "consider_lossless": True,
                "default_quality": {"jpeg": 90, "webp": 90, "avif": 75},
            },
            "medical": {"min_quality": 95, "lossy": False},
            "legal": {"min_quality": 100, "lossy": False},
        }
    )
)


def load_policies(path: Path | None) -> Mapping[str, Policy]:
    if path is None:
        return DEFAULT_POLICIES
    policies = parse_policies(read_toml(path))
    missing = set(DEFAULT_POLICIES) - set(policies)
    if missing:
        raise ConfigError(f"{path}: missing policies {sorted(missing)}")
    return MappingProxyType(policies)


def policy_for_path(path: str, by_prefix: Mapping[str, str]) -> str | None:
    """The policy configured for the longest matching path prefix, if any."""
    clean = path.lstrip("/")
    matches = [prefix for prefix in by_prefix if clean.startswith(prefix.lstrip("/"))]
    return by_prefix[max(matches, key=len)] if matches else None
