"""One canonical spelling per source, on every route that names one: other spellings are a
308 to the canonical path (the query kept) or a 404, never a second source that moderation,
rules, overrides or purges would not know."""

from __future__ import annotations

import shutil
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests.integration import nasty
from tests.support import LoupeServer

TOKEN = "spell"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CAFE = unicodedata.normalize("NFC", "café.png")


@pytest.fixture(scope="module")
def server(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoupeServer]:
    root = tmp_path_factory.mktemp("spell-root")
    (root / "shop").mkdir()
    shutil.copy(data_root / "kodak" / "kodim03.png", root / "shop" / "a.png")
    shutil.copy(data_root / "kodak" / "kodim06.png", root / "shop" / CAFE)
    running = LoupeServer(
        root, tmp_path_factory.mktemp("spell-data"), args=("--admin-token", TOKEN)
    )
    yield running
    running.stop()


def raw_get(
    server: LoupeServer, target: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    """GET with the request target sent byte for byte (httpx would normalise it)."""
    with httpx.Client(timeout=60) as client:
        request = client.build_request(
            "GET", server.url + "/", headers=headers, extensions={"target": target.encode()}
        )
        return client.send(request)


REDIRECTED = [
    "shop//a.png",
    "/shop/a.png",
    "shop/a.png/",
    "shop/a.png//",
    "./shop/a.png",
    "shop/./a.png",
    "shop/a.png/.",
    "%2e/shop/a.png",
    "shop/%2E/a.png",
    "shop%2F%2Fa.png",
    "shop%2F.%2Fa.png",
]


@pytest.mark.parametrize("spelling", REDIRECTED)
@pytest.mark.parametrize("route", ["/img", "/meta", "/admin/api/preview"])
def test_other_spellings_are_redirected_to_the_canonical_path(
    server: LoupeServer, route: str, spelling: str
) -> None:
    query = "w=40&fm=png" if route != "/meta" else "w=40&h=40"
    response = raw_get(server, f"{route}/{spelling}?{query}", AUTH)
    nasty.is_problem(response, 308)
    assert response.headers["location"] == f"{route}/shop/a.png?{query}"
    assert response.headers["cache-control"] == "public, max-age=60"  # a CDN may keep it


def test_nfd_is_redirected_to_nfc(server: LoupeServer) -> None:
    nfd = quote(unicodedata.normalize("NFD", f"shop/{CAFE}"))
    response = raw_get(server, f"/img/{nfd}?w=40")
    nasty.is_problem(response, 308)
    assert response.headers["location"] == f"/img/{quote(f'shop/{CAFE}')}?w=40"
    assert httpx.get(server.url + response.headers["location"], timeout=60).status_code == 200


@pytest.mark.parametrize(
    "spelling", ["shop/a.png.", "shop/a.png%20", "shop./a.png", "shop/%20a.png"]
)
def test_trailing_dots_and_spaces_name_no_source(server: LoupeServer, spelling: str) -> None:
    nasty.is_problem(raw_get(server, f"/img/{spelling}?w=40"), 404)


@pytest.mark.parametrize(
    ("method", "route"),
    [
        ("GET", "/admin/api/overrides"),
        ("PUT", "/admin/api/overrides"),
        ("DELETE", "/admin/api/overrides"),
        ("GET", "/admin/api/alt"),
        ("PUT", "/admin/api/alt"),
        ("GET", "/admin/api/crops"),
        ("POST", "/admin/api/purge"),
    ],
)
def test_admin_routes_redirect_too(server: LoupeServer, method: str, route: str) -> None:
    response = httpx.request(
        method,
        f"{server.url}{route}/shop//a.png?w=10&h=10",
        headers=AUTH,
        json={"aspect": "1:1", "rect": [0, 0, 10, 10], "text": "x"},
        timeout=30,
    )
    nasty.is_problem(response, 308)
    assert response.headers["location"] == f"{route}/shop/a.png?w=10&h=10"


def test_an_override_on_the_canonical_path_is_the_only_answer(server: LoupeServer) -> None:
    put = httpx.put(
        f"{server.url}/admin/api/overrides/shop/a.png",
        json={"aspect": "1:1", "rect": [0, 0, 300, 300]},
        headers=AUTH,
        timeout=30,
    )
    assert put.status_code == 200, put.text
    query = "w=50&h=50&fit=crop&fm=png"
    for spelling in REDIRECTED:
        response = httpx.get(
            f"{server.url}/img/{spelling}?{query}", follow_redirects=True, timeout=60
        )
        assert response.status_code == 200, (spelling, response.text)
        assert "by=user" in response.headers["x-loupe-crop"], spelling


def test_rule_prefixes_are_canonical(server: LoupeServer) -> None:
    body = {"prefix": "./shop//", "rule": "lossless-only", "reason": "archive"}
    put = httpx.put(f"{server.url}/admin/api/rules", json=body, headers=AUTH, timeout=10)
    assert put.status_code == 200 and put.json()["prefix"] == "shop", put.text
    try:
        response = httpx.get(f"{server.url}/img/shop/a.png?w=30", timeout=60)
        assert response.headers["x-loupe-rules"] == "lossless-only"
    finally:
        httpx.delete(
            f"{server.url}/admin/api/rules",
            params={"prefix": "shop/", "rule": "lossless-only"},
            headers=AUTH,
            timeout=10,
        )
