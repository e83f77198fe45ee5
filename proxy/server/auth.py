"""Who may use ``/admin``: a bearer token for API clients, or a session cookie for the
reviewers' page (signed with the token, so rotating the token logs everyone out).

Cookie-authenticated writes must also carry ``X-Loupe-CSRF``, derived from the session, which
a cross-site page cannot read; the cookie is also ``SameSite=Strict``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from starlette.requests import Request

from proxy.errors import Forbidden, Unauthorized

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


class AdminAuth:
    def __init__(self, token: str | None) -> None:
        self.token = token

    def new_session(self, reviewer: str) -> str:
        nonce = secrets.token_hex(8)
        expires = int(time.time()) + SESSION_SECONDS
        body = f"{reviewer}|{expires}|{nonce}"
        assert self.token is not None
        return f"{body}|{_mac(self.token, 'session|' + body)}"

    def csrf_for(self, session: str) -> str:
        assert self.token is not None
        return _mac(self.token, "csrf|" + session)

    def session_reviewer(self, session: str | None) -> str | None:
        """The reviewer a valid, unexpired session cookie names; None otherwise."""
        if not session or self.token is None:
            return None
        body, _, mac = session.rpartition("|")
        parts = body.split("|")
        if len(parts) != 3 or not same(wire_bytes(mac), _mac(self.token, "session|" + body)):
            return None
        reviewer, expires, _nonce = parts
        if not (expires.isascii() and expires.isdigit()) or int(expires) < time.time():
            return None
        return reviewer or "reviewer"

    def check_token(self, offered: bytes) -> bool:
        """``offered``: the bytes sent (a header's raw value, a form field's UTF-8)."""
        return self.token is not None and same(offered, self.token)

    def require(self, request: Request) -> str:
        """The reviewer's name, or 401 (no credentials) / 403 (wrong ones, admin closed)."""
        if self.token is None:
            raise Forbidden("the admin API is closed: start the server with --admin-token")
        header = request.headers.get("authorization", "")
        if header:
            scheme, _, offered = header.partition(" ")
            if scheme.lower() != "bearer" or not self.check_token(wire_bytes(offered.strip())):
                raise Forbidden("wrong admin token")
            return request.headers.get("x-loupe-reviewer", "api")[:64] or "api"
        session = request.cookies.get(SESSION_COOKIE)
        reviewer = self.session_reviewer(session)
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
