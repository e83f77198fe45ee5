"""The exception hierarchy every layer raises; the server maps it to problem+json (RFC 9457).

Each class fixes its HTTP status so code deep in the pipeline never thinks in HTTP terms,
yet the edge can answer precisely. Anything that is not a ``LoupeError`` is a bug (500).
"""

from __future__ import annotations


class LoupeError(Exception):
    """Base of every error Loupe raises on purpose."""

    status: int = 500
    slug: str = "internal-error"
    title: str = "Internal error"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}

    @property
    def type_uri(self) -> str:
        return f"https://loupe.dev/problems/{self.slug}"


class ConfigError(LoupeError):
    """The configuration is invalid; raised at start-up, never while serving."""

    slug = "config-error"
    title = "Invalid configuration"


class BadParameter(LoupeError):
    status = 400
    slug = "bad-parameter"
    title = "Bad parameter"


class Unauthorized(LoupeError):
    status = 401
    slug = "unauthorized"
    title = "Unauthorized"


class Forbidden(LoupeError):
    status = 403
    slug = "forbidden"
    title = "Forbidden"


class SourceNotFound(LoupeError):
    status = 404
    slug = "source-not-found"
    title = "No such source"


class SourceTooLarge(LoupeError):
    status = 413
    slug = "source-too-large"
    title = "Source too large"


class UnsupportedImage(LoupeError):
    status = 415
    slug = "unsupported-image"
    title = "Not a supported image"


class DamagedImage(LoupeError):
    status = 422
    slug = "damaged-image"
    title = "Damaged image"


class OriginFailed(LoupeError):
    status = 502
    slug = "origin-failed"
    title = "Origin failed"


class OriginTimeout(LoupeError):
    status = 504
    slug = "origin-timeout"
    title = "Origin timed out"


class Overloaded(LoupeError):
    status = 503
    slug = "overloaded"
    title = "Server overloaded"

    def __init__(self, detail: str, *, retry_after_s: int = 1) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after_s)})


class DeadlineExceeded(Overloaded):
    slug = "deadline-exceeded"
    title = "Processing deadline exceeded"


class SourceChanged(LoupeError):
    """The bytes changed between locating a source and reading it: never render bytes
    other than the ones the identity (and so moderation and the cache key) names."""

    status = 503
    slug = "source-changed"
    title = "Source changed while being read"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"Retry-After": "1"})
