"""Serving: the HTTP server and its workers, signed URLs, scanning, the admin API, logs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from proxy.config.base import SECRET, Section, comma_list


class ServerConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    workers: int | None = Field(
        None,
        ge=1,
        le=256,
        description="serving processes on one port; unset: the cores, capped by memory",
    )
    processing_threads: int | None = Field(
        None,
        ge=1,
        le=256,
        description="image threads off the event loop, per worker; unset: max(2, cores/workers)",
    )
    vips_concurrency: int | None = Field(
        None,
        ge=1,
        le=256,
        description="libvips threads per image; unset: 1 with several workers, else libvips's",
    )
    queue_limit: int = Field(32, ge=0, description="waiting renders beyond the workers before 503")
    request_deadline_s: float = Field(20.0, gt=0, description="per-request processing deadline")
    retry_after_s: int = Field(2, ge=1)
    h2c: bool = Field(
        False, description="cleartext HTTP/2 (Upgrade: h2c, prior knowledge); off = HTTP/1.1"
    )

    @property
    def render_threads(self) -> int:
        """``processing_threads`` as settled for this machine (``proxy.server.workers``), or
        2 where nothing settled it (an app built directly, in tests)."""
        return self.processing_threads or 2


class SigningConfig(Section):
    keys: tuple[str, ...] = Field(
        (),
        description="HMAC keys; the first signs, all verify (rotation). Empty = unsigned",
        json_schema_extra=SECRET,
    )

    @field_validator("keys", mode="before")
    @classmethod
    def _keys_from_text(cls, value: object) -> object:
        return comma_list(value)


class SecurityConfig(Section):
    clamd: str | None = Field(
        None, description="clamd socket path or tcp://host:port; set = scan every source"
    )
    clamd_timeout_s: float = Field(10.0, gt=0)


class AdminConfig(Section):
    token: str | None = Field(
        None,
        description="bearer token for /admin/*; unset = admin closed",
        json_schema_extra=SECRET,
    )
    secure_cookies: bool = Field(
        False, description="session cookie always Secure (behind a TLS-terminating proxy)"
    )
    login_attempts_per_minute: int = Field(
        10, ge=1, description="wrong admin tokens (form or bearer) per client per minute; 429 past"
    )
    reviews_per_client_per_minute: int = Field(
        10, ge=1, description="crop reviews (ctx=hero...) one client's requests may open a minute"
    )
    reviews_per_minute: int = Field(
        120, ge=1, description="crop reviews all anonymous requests together may open a minute"
    )


LogLevel = Literal["debug", "info", "warning", "error"]
LogFormat = Literal["text", "json"]


class LogConfig(Section):
    level: LogLevel = "info"
    access: bool = Field(True, description="one line per request: method, path, status, ...")
    format: LogFormat = Field("text", description="json: one object per line")
