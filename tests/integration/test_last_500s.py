"""Inputs that used to answer 500, each with its correct status:

all-black source as JPEG or WebP (and other lossy outputs) ..... 200: black, like the source
a 300-character path segment ................................... 404 (no file has that name)
a path longer than 1024 bytes .................................. 414
a NUL byte (raw or %00) in a path, on the PostgreSQL store ..... 400, on every route with a
                                                                 path: /img, /meta, admin
an origin's 304 to an unconditional request .................... 502
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest
import pyvips

from tests.integration import nasty
from tests.integration.listeners import Answer, Listener
from tests.support import LoupeServer, postgres_schema

TOKEN = "no-500s"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def black(width: int, height: int, bands: int = 3) -> pyvips.Image:
    kind = "srgb" if bands >= 3 else "b-w"
    return pyvips.Image.black(width, height, bands=bands).cast("uchar").copy(interpretation=kind)


def unsolicited_304(path: str, _headers: dict[str, str]) -> Answer:
    if path == "/fine.png":
        return 200, {"Content-Type": "image/png", "ETag": '"1"'}, nasty.png(40, 30)
    return 304, {"ETag": '"1"'}, b""


@pytest.fixture(scope="module")
def origin() -> Iterator[Listener]:
    running = Listener(unsolicited_304)
    yield running
    running.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, origin: Listener) -> Iterator[LoupeServer]:
    root = tmp_path_factory.mktemp("last-500s-root")
    black(640, 480).jpegsave(str(root / "black.jpg"))
    black(640, 480).webpsave(str(root / "black.webp"))
    black(900, 600, bands=1).webpsave(str(root / "grey-black.webp"), lossless=True)
    black(320, 200).pngsave(str(root / "black.png"))
    (root / "photo.png").write_bytes(nasty.png(64, 48))
    with postgres_schema() as store:
        running = LoupeServer(
            root,
            tmp_path_factory.mktemp("last-500s-data"),
            env={
                "LOUPE_SOURCES_ORIGINS": f"o=http://127.0.0.1:{origin.port}/",
                "LOUPE_SOURCES_ALLOW_PRIVATE_NETWORKS": "true",
            },
            args=("--store", store, "--admin-token", TOKEN),
        )
        try:
            yield running
        finally:
            running.stop()


@pytest.mark.parametrize("name", ["black.jpg", "black.webp", "grey-black.webp", "black.png"])
@pytest.mark.parametrize(
    "query", ["w=300", "w=300&fm=jpeg", "w=300&fm=webp", "fm=webp", "w=200&fm=avif", "w=90&q=5"]
)
def test_an_all_black_source_is_served_black(server: LoupeServer, name: str, query: str) -> None:
    response = httpx.get(f"{server.url}/img/{name}?{query}", timeout=60)
    assert response.status_code == 200, response.text
    image = pyvips.Image.new_from_buffer(response.content, "")
    assert image.max() <= 16, "the output is the source: black"


@pytest.mark.parametrize("route", ["/img", "/meta", "/admin/api/alt", "/admin/api/overrides"])
def test_a_300_character_segment_is_404_and_a_very_long_path_414(
    server: LoupeServer, route: str
) -> None:
    segment = "a" * 300 + ".png"
    response = httpx.get(f"{server.url}{route}/dir/{segment}", headers=AUTH, timeout=30)
    nasty.is_problem(response, 404)
    long = "/".join(["folder"] * 400) + "/x.png"  # 2.8 KB
    response = httpx.get(f"{server.url}{route}/{long}", headers=AUTH, timeout=30)
    nasty.is_problem(response, 414)
    response = httpx.get(f"{server.url}{route}/o/{long}", headers=AUTH, timeout=30)
    nasty.is_problem(response, 414)  # an origin URL as long is never built


NUL_TARGETS = [
    ("GET", "/img/photo%00.png?w=10"),
    ("GET", "/img/dir%00/photo.png?w=10"),
    ("GET", "/img/o/a%00.png"),
    ("GET", "/meta/photo%00.png"),
    ("GET", "/admin/api/overrides/photo%00.png"),
    ("DELETE", "/admin/api/overrides/photo%00.png"),
    ("GET", "/admin/api/alt/photo%00.png"),
    ("GET", "/admin/api/crops/photo%00.png?w=10&h=10"),
    ("POST", "/admin/api/purge/photo%00.png"),
    ("GET", "/admin/api/preview/photo%00.png"),
    ("DELETE", "/admin/api/rules?prefix=shop%00&rule=never-crop"),
]


@pytest.mark.parametrize(("method", "target"), NUL_TARGETS)
def test_a_nul_in_a_path_is_400_on_postgresql(
    server: LoupeServer, method: str, target: str
) -> None:
    response = httpx.request(method, server.url + target, headers=AUTH, timeout=30)
    nasty.is_problem(response, 400)


@pytest.mark.parametrize("route", ["/admin/api/overrides/photo%00.png", "/admin/api/alt/p%00.png"])
def test_a_nul_in_a_path_with_a_body_is_400_on_postgresql(server: LoupeServer, route: str) -> None:
    body = {"aspect": "1:1", "rect": [0, 0, 10, 10], "text": "x"}
    response = httpx.put(server.url + route, json=body, headers=AUTH, timeout=30)
    nasty.is_problem(response, 400)


def test_a_nul_in_a_rule_prefix_is_400_on_postgresql(server: LoupeServer) -> None:
    body = {"prefix": "shop\u0000/", "rule": "never-crop", "reason": "test"}
    response = httpx.put(f"{server.url}/admin/api/rules", json=body, headers=AUTH, timeout=30)
    nasty.is_problem(response, 400)


@pytest.mark.parametrize(
    "target",
    ["/img/photo.png%0a", "/meta/photo.png%0A", "/admin/api/overrides/dir/%0a", "/img/a%0a/b"],
)
def test_a_line_feed_in_a_path_is_refused_never_stripped(server: LoupeServer, target: str) -> None:
    """A route's pattern would match ``photo.png\n`` as ``photo.png`` (a regex "$" matches
    before a final line feed): another spelling of a source, and a redirect built from it
    would be an illegal header."""
    response = httpx.get(server.url + target, headers=AUTH, timeout=30)
    assert response.status_code in (400, 404), response.text
    nasty.is_problem(response)


def test_a_raw_nul_in_the_request_line_is_400(server: LoupeServer) -> None:
    for target in (b"/img/photo\x00.png", b"/meta/photo\x00.png", b"/img/%00/photo.png"):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: loupe\r\n\r\n")
            status_line = sock.recv(4096).split(b"\r\n", 1)[0]
        assert status_line.split()[1] == b"400", (target, status_line)


def test_an_unsolicited_304_from_an_origin_is_502(server: LoupeServer, origin: Listener) -> None:
    assert httpx.get(f"{server.url}/img/o/fine.png?w=10", timeout=30).status_code == 200
    nasty.is_problem(httpx.get(f"{server.url}/img/o/nothing.png?w=10", timeout=30), 502)
    nasty.is_problem(httpx.get(f"{server.url}/meta/o/nothing.png", timeout=30), 502)


def test_none_of_it_was_a_500(server: LoupeServer) -> None:
    for route in ("/img", "/meta", "/admin"):
        assert server.metric("loupe_requests_total", f'route="{route}",status="500"') == 0
