"""Who may use ``/admin``: a bearer token for API clients, or a session cookie for the
reviewers' page. The cookie is signed with the token (rotating the token logs everyone out)
and its session is kept in the store (signing out ends it on every node: a copied cookie
stops working).

Cookie-authenticated writes must also carry ``X-Loupe-CSRF``, derived from the session, which
a cross-site page cannot read; the cookie is also ``SameSite=Strict``, and ``Secure`` when the
request came over https or ``admin.secure_cookies`` says a TLS proxy sits in front. Wrong
tokens count against their client: past ``admin.login_attempts_per_minute`` every attempt of
that client is 429, the right token included, so guessing learns nothing more.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from typing import Any

from starlette.requests import Request

from proxy.errors import Forbidden, Unauthorized
from proxy.server.ratelimit import TooManyRequests, client_of
from proxy.stores.protocols import SessionStore
from proxy.windows import SlidingWindow

SESSION_COOKIE = "loupe_session"
CSRF_HEADER = "x-loupe-csrf"
SESSION_SECONDS = 12 * 3600
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _mac(token: str, message: str) -> str:
    key, text = token.encode("utf-8", "surrogatepass"), message.encode("utf-8", "surrogatepass")
    return hmac.new(key, text, hashlib.sha256).hexdigest()


def wire_bytes(value: str) -> bytes:
    """A header or cookie value's bytes as the client sent them: starlette decodes headers
    as latin-1, and a cookie's octal escapes can reach past it (then UTF-8 stands in)."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogatepass")


def same(offered: bytes, expected: str) -> bool:
    """Constant-time equality on bytes: ``compare_digest`` raises on non-ASCII ``str``."""
    return hmac.compare_digest(offered, expected.encode("utf-8", "surrogatepass"))


def _key(nonce: str) -> str:
    """What the store keeps of a session: a digest, so the table alone opens nothing."""
    return hashlib.sha256(nonce.encode("utf-8", "surrogatepass")).hexdigest()


class AdminAuth:
    def __init__(
        self,
        token: str | None,
        store: SessionStore,
        *,
        secure_cookies: bool = False,
        attempts_per_minute: int = 10,
    ) -> None:
        self.token = token
        self.store = store
        self.secure_cookies = secure_cookies
        self.failures = SlidingWindow(attempts_per_minute, 60.0)

    # -- sessions -------------------------------------------------------------------------

    async def new_session(self, reviewer: str) -> str:
        """A signed cookie value for a session now open in the store."""
        nonce = secrets.token_hex(16)
        expires = int(time.time()) + SESSION_SECONDS
        body = f"{reviewer}|{expires}|{nonce}"
        assert self.token is not None
        await asyncio.to_thread(self.store.open_session, _key(nonce), reviewer, expires)
        return f"{body}|{_mac(self.token, 'session|' + body)}"

    def csrf_for(self, session: str) -> str:
        assert self.token is not None
        return _mac(self.token, "csrf|" + session)

    def _signed(self, session: str | None) -> tuple[str, str] | None:
        """(reviewer, nonce) of a cookie this token signed and that has not expired."""
        if not session or self.token is None:
            return None
        body, _, mac = session.rpartition("|")
        parts = body.split("|")
        if len(parts) != 3 or not same(wire_bytes(mac), _mac(self.token, "session|" + body)):
            return None
        reviewer, expires, nonce = parts
        if not (expires.isascii() and expires.isdigit()) or int(expires) < time.time():
            return None
        return reviewer or "reviewer", nonce

    async def session_reviewer(self, session: str | None) -> str | None:
        """The reviewer of a valid session cookie whose session is still open; else None."""
        signed = self._signed(session)
        if signed is None:
            return None
        reviewer, nonce = signed
        is_open = await asyncio.to_thread(self.store.session_open, _key(nonce))
        return reviewer if is_open else None

    async def end_session(self, session: str | None) -> None:
        """Sign out: the session is closed in the store, whoever holds a copy of the cookie."""
        signed = self._signed(session)
        if signed is not None:
            await asyncio.to_thread(self.store.close_session, _key(signed[1]))

    def cookie_options(self, request: Request) -> dict[str, Any]:
        return {
            "path": "/admin",
            "httponly": True,
            "samesite": "strict",
            "secure": self.secure_cookies or request.url.scheme == "https",
        }

    # -- tokens ---------------------------------------------------------------------------

    def throttle(self, request: Request) -> None:
        """429 for a client past its wrong-token budget (before its token is even looked at)."""
        wait = self.failures.retry_after(client_of(request))
        if wait is not None:
            raise TooManyRequests(
                "too many wrong admin tokens from this client; try again later",
                retry_after_s=wait,
            )

    def check_token(self, request: Request, offered: bytes) -> bool:
        """``offered``: the bytes sent (a header's raw value, a form field's UTF-8); a wrong
        one counts against the client."""
        if self.token is not None and same(offered, self.token):
            return True
        if self.token is not None:
            self.failures.record(client_of(request))
        return False

    async def require(self, request: Request) -> str:
        """The reviewer's name, or 401 (no credentials) / 403 (wrong ones, admin closed) /
        429 (too many wrong tokens from this client)."""
        if self.token is None:
            raise Forbidden("the admin API is closed: start the server with --admin-token")
        header = request.headers.get("authorization", "")
        if header:
            self.throttle(request)
            scheme, _, offered = header.partition(" ")
            if scheme.lower() != "bearer" or not self.check_token(
                request, wire_bytes(offered.strip())
            ):
                raise Forbidden("wrong admin token")
            return request.headers.get("x-loupe-reviewer", "api")[:64] or "api"
        session = request.cookies.get(SESSION_COOKIE)
        reviewer = await self.session_reviewer(session)
        if reviewer is None:
            raise Unauthorized(
                "admin token required (Authorization: Bearer ...)",
                headers={"WWW-Authenticate": 'Bearer realm="loupe-admin"'},
            )
        if request.method not in SAFE_METHODS:
            assert session is not None
            offered = request.headers.get(CSRF_HEADER, "")
            if not same(wire_bytes(offered), self.csrf_for(session)):
                raise Forbidden("missing or wrong X-Loupe-CSRF header for a cookie session")
        return reviewer
