"""Every error leaves as ``application/problem+json`` (RFC 9457).

The domain raises ``LoupeError`` subclasses that know nothing of HTTP; ``PROBLEMS`` is the one
table that turns each class into a status and a problem type (its slug and title). A class
missing from it answers as its nearest listed ancestor.
"""

from __future__ import annotations

import json
import logging
from typing import NamedTuple

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from proxy import errors
from proxy.errors import LoupeError
from proxy.moderation import HeldForModeration
from proxy.processing.validate import PolyglotImage
from proxy.qa.gate import OutputFailedQA
from proxy.scanners.clamd import MalwareFound
from proxy.server.bodies import BodyTooLarge, NestingTooDeep
from proxy.server.ratelimit import TooManyRequests
from proxy.sources.paths import BadPath, NotCanonical, PathTooLong
from proxy.stores.base import ReviewConflict, ReviewNotFound, StoreError

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"


class Problem(NamedTuple):
    status: int
    slug: str  # the problem type: https://loupe.dev/problems/<slug>
    title: str


PROBLEMS: dict[type[LoupeError], Problem] = {
    LoupeError: Problem(500, "internal-error", "Internal error"),
    errors.ConfigError: Problem(500, "config-error", "Invalid configuration"),
    errors.BadParameter: Problem(400, "bad-parameter", "Bad parameter"),
    NestingTooDeep: Problem(400, "json-too-deep", "JSON nested too deeply"),
    BadPath: Problem(400, "bad-path", "Bad source path"),
    errors.Unauthorized: Problem(401, "unauthorized", "Unauthorized"),
    errors.Forbidden: Problem(403, "forbidden", "Forbidden"),
    errors.SourceNotFound: Problem(404, "source-not-found", "No such source"),
    ReviewNotFound: Problem(404, "review-not-found", "No such review item"),
    ReviewConflict: Problem(409, "review-already-decided", "Review item already decided"),
    errors.SourceTooLarge: Problem(413, "source-too-large", "Source too large"),
    BodyTooLarge: Problem(413, "body-too-large", "Request body too large"),
    PathTooLong: Problem(414, "path-too-long", "Path too long"),
    errors.UnsupportedImage: Problem(415, "unsupported-image", "Not a supported image"),
    PolyglotImage: Problem(415, "polyglot-image", "Image carries another file format"),
    errors.DamagedImage: Problem(422, "damaged-image", "Damaged image"),
    MalwareFound: Problem(422, "malware-detected", "Malware detected"),
    TooManyRequests: Problem(429, "too-many-requests", "Too many requests"),
    HeldForModeration: Problem(451, "held-for-moderation", "Held for moderation"),
    OutputFailedQA: Problem(500, "output-failed-qa", "Output failed quality checks"),
    errors.OriginFailed: Problem(502, "origin-failed", "Origin failed"),
    errors.Overloaded: Problem(503, "overloaded", "Server overloaded"),
    errors.DeadlineExceeded: Problem(503, "deadline-exceeded", "Processing deadline exceeded"),
    errors.SourceChanged: Problem(503, "source-changed", "Source changed while being read"),
    StoreError: Problem(503, "store-unavailable", "Store unavailable"),
    errors.OriginTimeout: Problem(504, "origin-timeout", "Origin timed out"),
    NotCanonical: Problem(308, "not-canonical", "Not the canonical path"),
}
CACHEABLE = frozenset({308, 400, 404, 413, 414, 415, 422})  # the same request, the same answer


def problem_of(exc: LoupeError) -> Problem:
    """The status and problem type of ``exc``: its class's entry, else its nearest
    ancestor's."""
    for cls in type(exc).__mro__:
        found = PROBLEMS.get(cls)
        if found is not None:
            return found
    return PROBLEMS[LoupeError]


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    slug: str,
    instance: str,
    headers: dict[str, str] | None = None,
    max_age: int = 0,
) -> Response:
    body = {
        "type": f"https://loupe.dev/problems/{slug}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    extra = dict(headers or {})
    extra.setdefault("Cache-Control", f"public, max-age={max_age}" if max_age else "no-store")
    return Response(json.dumps(body), status_code=status, media_type=PROBLEM, headers=extra)


def from_loupe_error(request: Request, exc: LoupeError, error_max_age: int) -> Response:
    status, slug, title = problem_of(exc)
    if status >= 500:  # every server-side failure is logged with its cause
        log.warning(
            "%d %s on %s %s: %s", status, slug, request.method, request.url.path, exc.detail
        )
    cacheable = status in CACHEABLE
    return problem(
        status,
        title,
        exc.detail,
        slug=slug,
        instance=request.url.path,
        headers=exc.headers,
        max_age=error_max_age if cacheable else 0,
    )


def from_http_exception(request: Request, exc: HTTPException) -> Response:
    titles = {404: "Not found", 405: "Method not allowed"}
    return problem(
        exc.status_code,
        titles.get(exc.status_code, "HTTP error"),
        str(exc.detail),
        slug=f"http-{exc.status_code}",
        instance=request.url.path,
        headers=dict(exc.headers or {}),
    )


def from_bug(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s", request.url.path, exc_info=exc)
    return problem(
        500,
        "Internal error",
        "an unexpected error occurred; this is a bug",
        slug="internal-error",
        instance=request.url.path,
    )
