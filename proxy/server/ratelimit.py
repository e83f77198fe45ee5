"""Too many requests from one client: the error, and who the client is. The counting itself
(``proxy.windows.SlidingWindow``) is in memory, per node; the set of clients tracked is
bounded, so a flood of addresses cannot grow it."""

from __future__ import annotations

from starlette.requests import Request

from proxy.errors import LoupeError


class TooManyRequests(LoupeError):
    """Too many attempts from one client: try again after ``retry_after_s``."""

    def __init__(self, detail: str, *, retry_after_s: float) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, round(retry_after_s)))})


def client_of(request: Request) -> str:
    """The peer address: the one identity a client cannot choose (a forwarded-for header
    is whatever the client writes, unless a proxy this server trusts wrote it)."""
    return request.client.host if request.client else "unknown"
