"""Admin sessions over real HTTP: signing out ends the session in the store (a copied cookie
stops working), the cookie is Secure when ``admin.secure_cookies`` says TLS ends in front,
wrong tokens are rate-limited per client (429 + Retry-After, the right token included), the
cleartext h2c upgrade is refused unless ``server.h2c`` allows it, and no redirect reflects
the Host header."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest

from tests.integration import nasty
from tests.support import LoupeServer

TOKEN = "session-secret"
TIMEOUT = 20.0


def start(tmp_path_factory: pytest.TempPathFactory, **env: str) -> LoupeServer:
    root = tmp_path_factory.mktemp("sessions-root")
    (root / "a.jpg").write_bytes(nasty.jpeg(64, 48))
    environ = {"LOUPE_ADMIN_LOGIN_ATTEMPTS_PER_MINUTE": "1000", **env}
    data = tmp_path_factory.mktemp("sessions-data")
    return LoupeServer(root, data, env=environ, args=("--admin-token", TOKEN))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoupeServer]:
    running = start(tmp_path_factory)
    yield running
    running.stop()


def sign_in(server: LoupeServer, token: str = TOKEN) -> httpx.Response:
    return httpx.post(
        server.url + "/admin/login",
        data={"token": token, "reviewer": "Ann"},
        timeout=TIMEOUT,
        follow_redirects=False,
    )


def cookie_of(response: httpx.Response) -> str:
    assert response.status_code == 303, response.text
    return str(response.cookies["loupe_session"])


def with_cookie(server: LoupeServer, cookie: str, path: str = "/admin/api/review") -> int:
    headers = {"Cookie": f"loupe_session={cookie}"}
    return httpx.get(server.url + path, headers=headers, timeout=TIMEOUT).status_code


def test_signing_out_ends_the_session_for_every_copy_of_the_cookie(server: LoupeServer) -> None:
    stolen = cookie_of(sign_in(server))
    other = cookie_of(sign_in(server))  # another reviewer's session stays open
    assert with_cookie(server, stolen) == 200
    out = httpx.post(
        server.url + "/admin/logout",
        headers={"Cookie": f"loupe_session={stolen}"},
        timeout=TIMEOUT,
        follow_redirects=False,
    )
    assert out.status_code == 303
    assert with_cookie(server, stolen) == 401
    page = httpx.get(
        server.url + "/admin/", headers={"Cookie": f"loupe_session={stolen}"}, timeout=TIMEOUT
    )
    assert 'id="login"' in page.text  # the sign-in form, not the queue
    assert with_cookie(server, other) == 200


def test_the_cookie_is_secure_only_when_configured_or_https(
    server: LoupeServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    plain = sign_in(server).headers["set-cookie"].lower()
    assert "httponly" in plain and "samesite=strict" in plain
    assert "secure" not in plain.replace("samesite", "")
    behind_tls = start(tmp_path_factory, LOUPE_ADMIN_SECURE_COOKIES="true")
    try:
        response = sign_in(behind_tls)
        cookie = response.headers["set-cookie"].lower()
        assert "; secure" in cookie, cookie
        out = httpx.post(
            behind_tls.url + "/admin/logout",
            headers={"Cookie": f"loupe_session={cookie_of(response)}"},
            timeout=TIMEOUT,
        )
        assert "; secure" in out.headers["set-cookie"].lower()
    finally:
        behind_tls.stop()


def test_wrong_tokens_are_rate_limited_per_client(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    limited = start(tmp_path_factory, LOUPE_ADMIN_LOGIN_ATTEMPTS_PER_MINUTE="4")
    try:
        statuses = [sign_in(limited, f"guess-{n}").status_code for n in range(3)]
        wrong_bearer = httpx.get(
            limited.url + "/admin/api/metrics",
            headers={"Authorization": "Bearer guess-3"},
            timeout=TIMEOUT,
        )
        statuses.append(wrong_bearer.status_code)
        assert statuses == [403, 403, 403, 403], statuses
        refused = sign_in(limited, "guess-4")
        assert refused.status_code == 429, refused.text
        assert int(refused.headers["retry-after"]) >= 1
        # Past the budget the right token is refused too: guessing learns nothing more.
        assert sign_in(limited, TOKEN).status_code == 429
        api = httpx.get(
            limited.url + "/admin/api/metrics",
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=TIMEOUT,
        )
        nasty.is_problem(api, 429)
        assert int(api.headers["retry-after"]) >= 1
    finally:
        limited.stop()


def raw_exchange(server: LoupeServer, request: bytes) -> bytes:
    """Send ``request`` byte for byte and return what comes back first."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as conn:
        conn.sendall(request)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = conn.recv(65536)
            if not chunk:
                break
            received += chunk
        return received


H2C_UPGRADE = (
    b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
    b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
)


def test_the_h2c_upgrade_is_off_by_default(
    server: LoupeServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    answer = raw_exchange(server, H2C_UPGRADE)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    preface = raw_exchange(server, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    assert not preface.startswith(b"\x00"), preface[:50]  # no HTTP/2 SETTINGS frame
    allowed = start(tmp_path_factory, LOUPE_SERVER_H2C="true")
    try:
        assert raw_exchange(allowed, H2C_UPGRADE).startswith(b"HTTP/1.1 101")
    finally:
        allowed.stop()


@pytest.mark.parametrize(
    "path",
    ["/admin", "/healthz/", "/admin/api/review/", "/admin/login/", "/metrics/", "/readyz/"],
)
@pytest.mark.parametrize("host", [b"evil.example", b"evil.example:8443", b"[::1]:9"])
def test_redirects_never_reflect_the_host(server: LoupeServer, path: str, host: bytes) -> None:
    request = (
        b"GET " + path.encode() + b" HTTP/1.1\r\nHost: " + host + b"\r\n"
        b"X-Forwarded-Host: evil.example\r\nConnection: close\r\n\r\n"
    )
    head = raw_exchange(server, request).split(b"\r\n\r\n", 1)[0].decode("latin-1")
    status = int(head.split(" ", 2)[1])
    assert 300 <= status < 400, head
    location = next(
        line.split(":", 1)[1].strip()
        for line in head.split("\r\n")
        if line.lower().startswith("location:")
    )
    assert location.startswith("/") and not location.startswith(("//", "/\\")), location
    assert "evil" not in location and "::1" not in location, location


def test_sign_in_and_out_redirect_by_path(server: LoupeServer) -> None:
    signed_in = sign_in(server)
    assert signed_in.headers["location"] == "/admin/"
    out = httpx.post(
        server.url + "/admin/logout",
        headers={"Host": "evil.example"},
        timeout=TIMEOUT,
        follow_redirects=False,
    )
    assert out.headers["location"] == "/admin/"
