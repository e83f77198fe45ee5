"""Every error leaves as ``application/problem+json`` (RFC 9457)."""

from __future__ import annotations

import json
import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from proxy.errors import LoupeError

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"


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
    if exc.status >= 500:  # every server-side failure is logged with its cause
        log.warning(
            "%d %s on %s %s: %s", exc.status, exc.slug, request.method, request.url.path, exc.detail
        )
    cacheable = exc.status in (308, 400, 404, 413, 414, 415, 422)
    return problem(
        exc.status,
        exc.title,
        exc.detail,
        slug=exc.slug,
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
