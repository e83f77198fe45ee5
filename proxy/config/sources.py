"""Where images come from: the local folder and the HTTP origins behind the SSRF guard."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from proxy.config.base import Section


class OriginConfig(Section):
    url: str
    allow_hosts: tuple[str, ...] = Field(
        (), description="hosts this origin may fetch from, redirects included; empty = any public"
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parsed = urlsplit(value)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"origin URL must be http(s)://host/..., got {value!r}")
        return value if value.endswith("/") else value + "/"


class SourcesConfig(Section):
    root: Path = Path("./images")
    origins: dict[str, OriginConfig] = Field(
        default_factory=dict, description="/img/NAME/... -> an HTTP origin"
    )
    allow_private_networks: bool = Field(
        False, description="let origins reach loopback/private addresses (link-local never)"
    )
    connect_timeout_s: float = Field(3.0, gt=0)
    read_timeout_s: float = Field(10.0, gt=0)
    max_redirects: int = Field(3, ge=0, le=10)
    revalidate_after_s: float = Field(60.0, ge=0, description="reuse an origin's ETag this long")
    max_concurrent_fetches: int = Field(
        4, ge=1, description="origin downloads at once (server.queue_limit more wait; then 503)"
    )
    watch: bool = Field(
        True, description="notice replaced or deleted files under root (file-system events)"
    )
    rescan_s: float = Field(
        15.0, ge=0, description="full rescan of root this often, the watch's fallback; 0 = none"
    )

    @field_validator("origins", mode="before")
    @classmethod
    def _origins_from_text(cls, value: object) -> object:
        """``NAME=URL,NAME=URL`` (environment, flags) or a mapping (TOML)."""
        if isinstance(value, str):
            value = [part for part in value.split(",") if part.strip()]
        if isinstance(value, list | tuple):
            pairs = {}
            for item in value:
                name, sep, url = str(item).partition("=")
                if not sep or not name.strip():
                    raise ValueError(f"origin must be NAME=URL, got {item!r}")
                pairs[name.strip()] = {"url": url.strip()}
            return pairs
        if isinstance(value, dict):
            return {k: {"url": v} if isinstance(v, str) else v for k, v in value.items()}
        return value

    @field_validator("origins")
    @classmethod
    def _origin_names(cls, value: dict[str, OriginConfig]) -> dict[str, OriginConfig]:
        for name in value:
            if not name or "/" in name or name in (".", ".."):
                raise ValueError(f"origin name {name!r} must be one path segment")
        return value
