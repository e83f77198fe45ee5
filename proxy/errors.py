"""The exception hierarchy every layer raises: what went wrong, in the domain's words.

No class knows HTTP: ``proxy.server.problems`` holds the one table that maps each class to
its status and problem type (RFC 9457), so code deep in the pipeline never thinks in HTTP
terms, yet the edge answers precisely. Anything that is not a ``LoupeError`` is a bug (500).
"""

from __future__ import annotations


class LoupeError(Exception):
    """Base of every error Loupe raises on purpose."""

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}


class ConfigError(LoupeError):
    """The configuration is invalid; raised at start-up, never while serving."""


class BadParameter(LoupeError):
    """A request parameter or body the API does not take."""


class Unauthorized(LoupeError):
    """No credentials where they are needed."""


class Forbidden(LoupeError):
    """Credentials that do not allow this."""


class SourceNotFound(LoupeError):
    """No such source (or override, rule, or other thing a request names)."""


class SourceTooLarge(LoupeError):
    """The source exceeds the byte or pixel limits."""


class UnsupportedImage(LoupeError):
    """The source is not an image Loupe reads."""


class DamagedImage(LoupeError):
    """The source is an image, but a damaged one."""


class OriginFailed(LoupeError):
    """The HTTP origin behind a source failed."""


class OriginTimeout(LoupeError):
    """The HTTP origin behind a source did not answer in time."""


class Overloaded(LoupeError):
    """Too much work queued: try again after ``retry_after_s``."""

    def __init__(self, detail: str, *, retry_after_s: int = 1) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after_s)})


class DeadlineExceeded(Overloaded):
    """The work did not finish within its deadline."""


class SourceChanged(LoupeError):
    """The bytes changed between locating a source and reading it: never render bytes
    other than the ones the identity (and so moderation and the cache key) names."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"Retry-After": "1"})
