"""Hostile admin credentials and bodies get a 4xx, never a 500: non-ASCII tokens in every
place a credential travels (bearer header, sign-in form, session cookie, CSRF header),
JSON nested far past anything the API takes (400, however long), and bodies past the cap
(413, refused while streaming)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.integration import nasty
from tests.support import LoupeServer

TOKEN = "s3crét-tökén"  # a non-ASCII token must work as UTF-8, and nothing else
TIMEOUT = 20.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoupeServer]:
    root = tmp_path_factory.mktemp("admin-hostile-root")
    (root / "a.jpg").write_bytes(nasty.jpeg(64, 48))
    running = LoupeServer(
        root,
        tmp_path_factory.mktemp("admin-hostile-data"),
        env={"LOUPE_ADMIN_LOGIN_ATTEMPTS_PER_MINUTE": "1000"},  # many wrong tokens follow
        args=("--admin-token", TOKEN),
    )
    yield running
    running.stop()


def bearer(value: bytes) -> dict[str, bytes]:
    return {"Authorization": b"Bearer " + value}


def session(server: LoupeServer) -> tuple[str, str]:
    """A signed-in reviewer's cookie and CSRF token."""
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        signed_in = client.post("/admin/login", data={"token": TOKEN, "reviewer": "Ann"})
        assert signed_in.status_code == 303, signed_in.text
        cookie = client.cookies["loupe_session"]
        page = client.get("/admin/").text
    csrf = page.split('name="loupe-csrf" content="', 1)[1].split('"', 1)[0]
    return cookie, csrf


def test_the_non_ascii_token_itself_works_as_utf8(server: LoupeServer) -> None:
    url = f"{server.url}/admin/api/metrics"
    assert httpx.get(url, headers=bearer(TOKEN.encode()), timeout=TIMEOUT).status_code == 200
    latin1 = httpx.get(url, headers=bearer(TOKEN.encode("latin-1")), timeout=TIMEOUT)
    assert latin1.status_code == 403


@pytest.mark.parametrize(
    "offered",
    [
        "é".encode(),
        "s3crét-tökén".encode("latin-1"),
        b"\xff\xfe\x7f",
        "токен🔑".encode(),
        b"admin\x80",
    ],
)
def test_a_non_ascii_bearer_token_is_403(server: LoupeServer, offered: bytes) -> None:
    for method, path in (("GET", "/admin/api/metrics"), ("GET", "/admin/api/review")):
        response = httpx.request(
            method, server.url + path, headers=bearer(offered), timeout=TIMEOUT
        )
        nasty.is_problem(response, 403)


@pytest.mark.parametrize(
    "form",
    [
        "token=%C3%A9t%C3%A9",
        "token=%FF%FE",
        "token=s3cr%E9t-t%F6k%E9n",  # the right token, but latin-1 encoded
        "token=%F0%9F%94%91&reviewer=%C3%A9",
        "token=" + "é" * 300,
    ],
)
def test_a_non_ascii_login_form_is_403(server: LoupeServer, form: str) -> None:
    response = httpx.post(
        server.url + "/admin/login",
        content=form.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 403, response.text
    assert "loupe_session" not in response.headers.get("set-cookie", "")


def test_a_login_form_with_too_many_fields_is_400(server: LoupeServer) -> None:
    response = httpx.post(
        server.url + "/admin/login",
        content=b"&".join([b"a=1"] * 50),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 400, response.text


@pytest.mark.parametrize(
    "cookie",
    [
        "é".encode(),
        b"Ann|9999999999|00|\xc3\xa9\xc3\xa9",
        b"Ann|\xd9\xa1\xd9\xa2|00|abc",  # Arabic-Indic digits as the expiry
        b"\xff|\xfe|\xfd|\xfc",
        b'"\\303\\251|1|2|3"',  # octal escapes, unquoted by the cookie parser
    ],
)
def test_a_non_ascii_session_cookie_is_401(server: LoupeServer, cookie: bytes) -> None:
    headers = {"Cookie": b"loupe_session=" + cookie}
    api = httpx.get(server.url + "/admin/api/review", headers=headers, timeout=TIMEOUT)
    nasty.is_problem(api, 401)
    page = httpx.get(server.url + "/admin/", headers=headers, timeout=TIMEOUT)
    assert page.status_code == 200, page.text  # the sign-in form
    assert 'id="login"' in page.text


@pytest.mark.parametrize("csrf", ["é".encode(), b"\xff" * 64, "🔑".encode() * 16])
def test_a_non_ascii_csrf_header_is_403(server: LoupeServer, csrf: bytes) -> None:
    cookie, _ = session(server)
    response = httpx.put(
        server.url + "/admin/api/rules",
        headers={"Cookie": f"loupe_session={cookie}", "X-Loupe-CSRF": csrf},
        json={"prefix": "shop", "rule": "never-crop", "reason": "test"},
        timeout=TIMEOUT,
    )
    nasty.is_problem(response, 403)


JSON_ENDPOINTS = [
    ("PUT", "/admin/api/overrides/a.jpg"),
    ("PUT", "/admin/api/alt/a.jpg"),
    ("PUT", "/admin/api/rules"),
    ("POST", "/admin/api/review/1"),
]


def send_json(server: LoupeServer, method: str, path: str, body: bytes) -> httpx.Response:
    headers = {**bearer(TOKEN.encode()), "Content-Type": "application/json"}
    return httpx.request(method, server.url + path, headers=headers, content=body, timeout=TIMEOUT)


@pytest.mark.parametrize(("method", "path"), JSON_ENDPOINTS)
@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000,
        b"[" * 5_000 + b"]" * 5_000,
        b'{"rect": ' + b'{"a": ' * 3_000 + b"1" + b"}" * 3_000 + b"}",
        b'{"text": "[[[[", "value": ' + b"[" * 40 + b"]" * 40 + b"}",
    ],
    ids=["open-100k", "closed-5k", "objects-3k", "after-a-string"],
)
def test_deeply_nested_json_is_400(
    server: LoupeServer, method: str, path: str, body: bytes
) -> None:
    response = send_json(server, method, path, body)
    problem = nasty.is_problem(response, 400)
    assert "nest" in str(problem["detail"]), problem


@pytest.mark.parametrize(("method", "path"), JSON_ENDPOINTS)
def test_a_huge_body_is_413(server: LoupeServer, method: str, path: str) -> None:
    body = b'{"reason": "' + b"x" * 4_000_000 + b'"}'
    response = send_json(server, method, path, body)
    nasty.is_problem(response, 413)


def test_brackets_inside_strings_are_not_nesting(server: LoupeServer) -> None:
    response = httpx.put(
        server.url + "/admin/api/rules",
        headers=bearer(TOKEN.encode()),
        json={"prefix": "shop", "rule": "never-crop", "reason": "[" * 500 + '\\"{' * 50},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
