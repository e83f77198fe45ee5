"""No open proxy through an origin: ``/img/<origin>/<path>`` fetches below the origin's base
URL and nowhere else, whatever the path's spelling.

Origin ``o`` is ``http://127.0.0.1:<A>/base/``. A second listener B (another port on the
same, allowed host) must receive nothing, and A must never be asked for anything outside
``/base/``, for a battery of spellings: schemes, ``//host``, ``host:port``, userinfo,
percent-encoded (once and twice) slashes, backslashes and dots, ``;`` path parameters,
fullwidth characters, control characters. Each answer is a 4xx (a 308 to the canonical
spelling is followed). An https origin is never followed to plain http.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest

from proxy.errors import Forbidden
from proxy.sources.http import HttpSource, OriginPolicy
from proxy.sources.paths import canonical_path
from tests.integration import nasty
from tests.integration.imaging import raw_get
from tests.integration.listeners import Answer, Listener, self_signed
from tests.support import LoupeServer

PNG = bytes(nasty.gradient(40, 30).pngsave_buffer())


def origin_reply(path: str, _headers: dict[str, str]) -> Answer:
    if path in ("/base/img.png", "/secret.png"):
        return 200, {"Content-Type": "image/png"}, PNG
    return 404, {}, b"no"


@pytest.fixture(scope="module")
def listeners() -> Iterator[tuple[Listener, Listener]]:
    allowed, forbidden = Listener(origin_reply), Listener(origin_reply)
    yield allowed, forbidden
    allowed.close()
    forbidden.close()


@pytest.fixture(scope="module")
def proxy(
    listeners: tuple[Listener, Listener], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LoupeServer]:
    allowed, _ = listeners
    running = LoupeServer(
        tmp_path_factory.mktemp("open-proxy-root"),
        tmp_path_factory.mktemp("open-proxy-data"),
        env={
            "LOUPE_SOURCES_ORIGINS": f"o=http://127.0.0.1:{allowed.port}/base/",
            "LOUPE_SOURCES_ALLOW_PRIVATE_NETWORKS": "true",
        },
    )
    yield running
    running.stop()


def spellings(port: int) -> list[str]:
    host = f"127.0.0.1:{port}"
    return [
        f"http://{host}/img.png",
        f"HTTP://{host}/img.png",
        f"https://{host}/img.png",
        f"http:/{host}/img.png",
        f"http:{host}/img.png",
        f"http:%2F%2F{host}%2Fimg.png",
        f"//{host}/img.png",
        f"///{host}/img.png",
        f"%2F%2F{host}%2Fimg.png",
        f"%2f%2f{host}/img.png",
        f"%252F%252F{host}/img.png",
        f"{host}/img.png",
        f"%3A{port}/img.png",
        f":{port}/img.png",
        f"@{host}/img.png",
        f"user:pw@{host}/img.png",
        f"%40{host}/img.png",
        f"%5C%5C{host}%5Cimg.png",
        f"%5c{host}/img.png",
        f"%EF%BC%8F%EF%BC%8F{host}/img.png",  # fullwidth solidus
        f"%00http://{host}/img.png",
        f"%09//{host}/img.png",
        f"%20//{host}/img.png",
        "../secret.png",
        "..%2Fsecret.png",
        "..%2fsecret.png",
        "%2e%2e/secret.png",
        "%2E%2E%2Fsecret.png",
        "%252e%252e/secret.png",
        "%252e%252e%252fsecret.png",
        ".%2e/secret.png",
        "..%5Csecret.png",
        "..;/secret.png",
        "%2e%2e;/secret.png",
        "img.png/..%2F..%2Fsecret.png",
        "%EF%BC%8E%EF%BC%8E/secret.png",  # fullwidth full stops
        "./../secret.png",
        "img.png%23/../../secret.png",
        "img.png%3F/../../secret.png",
    ]


def fetch(server: LoupeServer, target: str) -> httpx.Response:
    """GET ``target`` byte for byte, following at most three redirects that stay in /img/o/."""
    response = raw_get(server, target)
    for _ in range(3):
        if response.status_code not in (301, 308):
            break
        location = response.headers["location"]
        assert location.startswith("/img/o/"), location
        response = raw_get(server, location)
    return response


def test_the_origin_itself_is_fetched_below_its_base(
    proxy: LoupeServer, listeners: tuple[Listener, Listener]
) -> None:
    allowed, _ = listeners
    allowed.clear()
    response = fetch(proxy, "/img/o/img.png?w=10&fm=png")
    assert response.status_code == 200, response.text
    assert allowed.paths() == ["/base/img.png"]


@pytest.mark.parametrize("index", range(len(spellings(1))))
def test_no_spelling_reaches_another_port_or_leaves_the_base(
    proxy: LoupeServer, listeners: tuple[Listener, Listener], index: int
) -> None:
    allowed, forbidden = listeners
    spelling = spellings(forbidden.port)[index]
    allowed.clear()
    forbidden.clear()
    response = fetch(proxy, f"/img/o/{spelling}?w=10&fm=png")
    assert forbidden.paths() == [], f"{spelling}: the second listener was contacted"
    for path in allowed.paths():
        plain = unquote(path)
        assert path.startswith("/base/"), f"{spelling}: fetched {path} outside the base"
        segments = plain.split("/")
        assert ".." not in segments and "\\" not in plain, f"{spelling}: fetched {path}"
    assert 400 <= response.status_code < 500, f"{spelling}: {response.status_code}"
    assert response.status_code != 200 or allowed.paths() == ["/base/img.png"]
    nasty.is_problem(response)


def test_nothing_was_a_500(proxy: LoupeServer) -> None:
    assert proxy.metric("loupe_requests_total", 'route="/img",status="500"') == 0


def test_an_https_origin_is_never_followed_to_plain_http(tmp_path: Path) -> None:
    plain = Listener(origin_reply)
    tls, cert = self_signed(tmp_path)

    def redirect(path: str, _headers: dict[str, str]) -> Answer:
        return 302, {"Location": f"http://localhost:{plain.port}/base/img.png"}, b""

    secure = Listener(redirect, tls=tls)
    policy = OriginPolicy(
        allow_hosts=(), allow_private=True, max_redirects=3, revalidate_after_s=0, max_bytes=10**6
    )

    async def locate() -> None:
        trusted = ssl.create_default_context(cafile=str(cert))
        async with httpx.AsyncClient(verify=trusted, trust_env=False) as client:
            origin = HttpSource("s", f"https://localhost:{secure.port}/base/", policy, client)
            await origin.locate(canonical_path("img.png"))

    try:
        with pytest.raises(Forbidden, match="plain http"):
            asyncio.run(locate())
        assert secure.paths() == ["/base/img.png"]
        assert plain.paths() == [], "the plain-http listener was contacted"
    finally:
        secure.close()
        plain.close()
