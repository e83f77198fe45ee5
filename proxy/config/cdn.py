"""The CDN in front: tags on responses and the purge adapters."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from proxy.config.base import SECRET, Section


class CdnConfig(Section):
    """Tags on image responses and purges sent to the CDN in front (operator-configured
    endpoints: never subject to the origins' SSRF guard)."""

    deployment: str = Field(
        "loupe",
        max_length=200,
        description="names this deployment in CDN tags (hashed; several share one CDN)",
    )
    surrogate_max_age_s: int = Field(
        31_536_000,
        ge=0,
        description="Surrogate-Control max-age once a purge adapter is configured",
    )
    webhook_url: str | None = Field(
        None, description='POST {"tags", "paths", "reason"} here on every purge'
    )
    webhook_secret: str | None = Field(
        None,
        description="HMAC-SHA256 key of the webhook body (X-Loupe-Signature: sha256=<hex>)",
        json_schema_extra=SECRET,
    )
    fastly_service_id: str | None = Field(None, description="purge by surrogate key")
    fastly_token: str | None = Field(None, json_schema_extra=SECRET)
    fastly_api_url: str = "https://api.fastly.com"
    cloudflare_zone_id: str | None = Field(None, description="purge by cache tag")
    cloudflare_token: str | None = Field(None, json_schema_extra=SECRET)
    cloudflare_api_url: str = "https://api.cloudflare.com/client/v4"
    varnish_url: str | None = Field(
        None, description="an HTTP PURGE/BAN endpoint (Varnish with xkey, or similar)"
    )
    varnish_method: Literal["PURGE", "BAN"] = "PURGE"
    varnish_header: str = Field("xkey", description="header carrying the space-separated tags")
    timeout_s: float = Field(10.0, gt=0, description="per purge request")
    backoff_s: float = Field(2.0, gt=0, description="first retry delay; doubles per failure")
    max_backoff_s: float = Field(300.0, gt=0)
    dead_after_s: float = Field(
        86_400.0, gt=0, description="a purge still failing this long is dead-lettered"
    )
    repeat_after_s: float = Field(
        5.0,
        ge=0,
        description="each purge is sent once more this much later: an edge request in flight "
        "at the first (or answered within a node's 2 s decision memo) stores the old answer "
        "after it; 0 = once",
    )
    batch: int = Field(30, ge=1, le=256, description="tags per purge request")
    poll_s: float = Field(0.5, gt=0, description="the sender looks for purges this often")

    @field_validator(
        "webhook_url", "varnish_url", "fastly_api_url", "cloudflare_api_url", mode="after"
    )
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None and (
            urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).hostname
        ):
            raise ValueError(f"must be an http(s) URL, got {value!r}")
        return value

    @property
    def purges(self) -> bool:
        """Whether any adapter is configured: purges then reach a CDN."""
        return bool(
            self.webhook_url
            or (self.fastly_service_id and self.fastly_token)
            or (self.cloudflare_zone_id and self.cloudflare_token)
            or self.varnish_url
        )
