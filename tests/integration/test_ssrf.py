"""HTTP origins and the SSRF guard, against a recording origin on 127.0.0.1.

By default (sources.allow_private_networks off) every spelling of a loopback, private,
link-local, unspecified or reserved address is refused with 403 BEFORE any connection:
the recording origin must see no request at all. With private networks allowed, the
ordinary origin behaviour is checked end to end (cache, conditional GET, status mapping,
timeouts, byte cap, redirect limit), and redirects are still guarded hop by hop.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import pyvips

from tests.integration import nasty
from tests.integration.imaging import NO_MODERN
from tests.support import LoupeServer

TIMEOUT = 15.0
SLOW_S = 1.5
TRICKLE_S = 0.3  # per byte: under the 0.5 s read timeout
DEADLINE_S = 2.0  # server.request_deadline_s, which also caps a whole origin fetch
LIMIT = 200_000


@dataclass(frozen=True)
class Seen:
    path: str
    headers: dict[str, str]
    status: int


class RecordingOrigin:
    """A tiny threaded origin that records every request it receives."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        self.etag = '"v1"'
        self.image = bytes(nasty.gradient(40, 30).pngsave_buffer())
        origin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: object) -> None:
                pass

            def do_GET(self) -> None:
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    origin.handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _reply(
        self,
        handler: BaseHTTPRequestHandler,
        status: int,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        *,
        length: bool = True,
    ) -> None:
        with self.lock:
            self.seen.append(Seen(handler.path, dict(handler.headers.items()), status))
        handler.send_response(status)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        if length:
            handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path.split("?", 1)[0]
        if path == "/img.png":
            if handler.headers.get("If-None-Match") == self.etag:
                self._reply(handler, 304, headers={"ETag": self.etag})
            else:
                headers = {"Content-Type": "image/png", "ETag": self.etag}
                self._reply(handler, 200, self.image, headers)
        elif path == "/missing.png":
            self._reply(handler, 404, b"nope")
        elif path == "/boom.png":
            self._reply(handler, 500, b"boom")
        elif path == "/slow.png":
            with self.lock:
                self.seen.append(Seen(handler.path, dict(handler.headers.items()), 0))
            time.sleep(SLOW_S)
            handler.send_response(200)
            handler.send_header("Content-Length", str(len(self.image)))
            handler.end_headers()
            handler.wfile.write(self.image)
        elif path == "/trickle.png":  # each byte within the read timeout, forever in all
            with self.lock:
                self.seen.append(Seen(handler.path, dict(handler.headers.items()), 0))
            handler.send_response(200)
            handler.send_header("Content-Length", "100")
            handler.end_headers()
            for _ in range(100):
                handler.wfile.write(b"x")
                handler.wfile.flush()
                time.sleep(TRICKLE_S)
        elif path == "/big.png":
            self._reply(handler, 200, self.image + b"\0" * LIMIT, {"Content-Type": "image/png"})
        elif path == "/big-stream.png":  # no Content-Length: only the streaming cap can stop it
            body = self.image + b"\0" * LIMIT
            self._reply(handler, 200, body, {"Content-Type": "image/png"}, length=False)
        elif path.startswith("/redirect/"):
            left = int(path.rsplit("/", 1)[1])
            target = "/img.png" if left == 0 else f"/redirect/{left - 1}"
            self._reply(handler, 302, headers={"Location": target})
        elif path == "/to-metadata":
            self._reply(handler, 302, headers={"Location": "http://169.254.169.254/latest/"})
        elif path == "/to-mapped-metadata":
            self._reply(handler, 302, headers={"Location": "http://[::ffff:a9fe:a9fe]/latest/"})
        elif path == "/to-file":
            self._reply(handler, 302, headers={"Location": "file:///etc/passwd"})
        elif path == "/to-localhost":
            location = f"http://localhost:{self.port}/img.png"
            self._reply(handler, 302, headers={"Location": location})
        else:
            self._reply(handler, 404)

    def paths(self) -> list[str]:
        with self.lock:
            return [seen.path for seen in self.seen]

    def clear(self) -> None:
        with self.lock:
            self.seen.clear()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def origin() -> Iterator[RecordingOrigin]:
    running = RecordingOrigin()
    yield running
    running.close()


def hostile_origins(port: int) -> dict[str, str]:
    """Names -> origin URLs that all point at loopback or other forbidden ranges."""
    return {
        "loopback": f"http://127.0.0.1:{port}/",
        "localhost": f"http://localhost:{port}/",
        "decimal": f"http://2130706433:{port}/",
        "hex": f"http://0x7f000001:{port}/",
        "octal": f"http://0177.0.0.1:{port}/",
        "short": f"http://127.1:{port}/",
        "mapped": f"http://[::ffff:127.0.0.1]:{port}/",
        "mappedhex": f"http://[::ffff:7f00:1]:{port}/",
        "nat64": f"http://[64:ff9b::7f00:1]:{port}/",
        "sixtofour": f"http://[2002:7f00:1::]:{port}/",
        "v6loopback": f"http://[::1]:{port}/",
        "userinfo": f"http://images.example.com@127.0.0.1:{port}/",
        "unspecified": f"http://0.0.0.0:{port}/",
        "metadata": "http://169.254.169.254/",
        "ten": "http://10.0.0.1/",
        "home": "http://192.168.1.1/",
        "cgnat": "http://100.64.0.1/",
        "multicast": "http://224.0.0.1/",
    }


@pytest.fixture(scope="module")
def guarded(
    origin: RecordingOrigin, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LoupeServer]:
    """Default config: private networks off."""
    spec = ",".join(f"{name}={url}" for name, url in hostile_origins(origin.port).items())
    running = LoupeServer(
        tmp_path_factory.mktemp("ssrf-root"),
        tmp_path_factory.mktemp("ssrf-data"),
        env={"LOUPE_SOURCES_ORIGINS": spec, "LOUPE_SOURCES_CONNECT_TIMEOUT_S": "1"},
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def private(
    origin: RecordingOrigin, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LoupeServer]:
    running = LoupeServer(
        tmp_path_factory.mktemp("private-root"),
        tmp_path_factory.mktemp("private-data"),
        env={
            "LOUPE_SOURCES_ORIGINS": f"o={origin.url}",
            "LOUPE_SOURCES_ALLOW_PRIVATE_NETWORKS": "true",
            "LOUPE_SOURCES_REVALIDATE_AFTER_S": "0",
            "LOUPE_SOURCES_READ_TIMEOUT_S": "0.5",
            "LOUPE_SOURCES_MAX_REDIRECTS": "2",
            "LOUPE_LIMITS_MAX_SOURCE_BYTES": str(LIMIT),
            "LOUPE_SERVER_REQUEST_DEADLINE_S": str(DEADLINE_S),
        },
    )
    yield running
    running.stop()


def img(server: LoupeServer, path: str, query: str = "w=20&fm=png") -> httpx.Response:
    url = f"{server.url}/img/{path}" + (f"?{query}" if query else "")
    return httpx.get(url, headers=NO_MODERN, timeout=TIMEOUT)


@pytest.mark.parametrize("name", list(hostile_origins(1)))
def test_forbidden_addresses_are_never_contacted(
    guarded: LoupeServer, origin: RecordingOrigin, name: str
) -> None:
    origin.clear()
    started = time.monotonic()
    response = img(guarded, f"{name}/img.png")
    body = nasty.is_problem(response, 403)
    assert body["type"] == "https://loupe.dev/problems/forbidden"
    assert origin.paths() == [], f"{name}: the origin was contacted"
    assert time.monotonic() - started < 2.0, "refused before any connection attempt"


def test_guarded_server_is_still_healthy(guarded: LoupeServer, origin: RecordingOrigin) -> None:
    assert httpx.get(guarded.url + "/healthz", timeout=5).status_code == 200
    assert guarded.metric("loupe_requests_total", 'route="/img",status="500"') == 0
    assert origin.paths() == []


def test_origin_image_cache_and_conditional_get(
    private: LoupeServer, origin: RecordingOrigin
) -> None:
    origin.clear()
    first = img(private, "o/img.png")
    assert first.status_code == 200, first.text
    assert first.headers["x-loupe-cache"] == "miss"
    image = pyvips.Image.new_from_buffer(first.content, "")
    assert (image.width, image.height) == (20, 15)
    second = img(private, "o/img.png")
    assert second.status_code == 200
    assert second.headers["x-loupe-cache"] == "hit"
    assert second.content == first.content
    with origin.lock:
        seen = list(origin.seen)
    assert [s.path for s in seen] == ["/img.png", "/img.png"]
    assert "If-None-Match" not in seen[0].headers
    assert seen[1].headers.get("If-None-Match") == '"v1"', seen[1].headers
    assert seen[1].status == 304
    assert seen[0].headers.get("Host") == f"127.0.0.1:{origin.port}"
    # A new ETag at the origin is a new source: rendered afresh, with the new pixels.
    origin.etag = '"v2"'
    origin.image = bytes(nasty.gradient(30, 40).pngsave_buffer())
    try:
        third = img(private, "o/img.png")
        assert third.status_code == 200
        assert third.headers["x-loupe-cache"] == "miss"
        image = pyvips.Image.new_from_buffer(third.content, "")
        assert (image.width, image.height) == (20, 27)
    finally:
        origin.etag = '"v1"'
        origin.image = bytes(nasty.gradient(40, 30).pngsave_buffer())


@pytest.mark.parametrize(
    ("path", "status", "slug"),
    [
        ("missing.png", 404, "source-not-found"),
        ("boom.png", 502, "origin-failed"),
        ("slow.png", 504, "origin-timeout"),
        ("trickle.png", 504, "origin-timeout"),
        ("big.png", 413, "source-too-large"),
        ("big-stream.png", 413, "source-too-large"),
        ("redirect/2", 502, "origin-failed"),
        ("to-metadata", 403, "forbidden"),
        ("to-mapped-metadata", 403, "forbidden"),
        ("to-file", 403, "forbidden"),
    ],
)
def test_origin_failures_map_to_problems(
    private: LoupeServer, origin: RecordingOrigin, path: str, status: int, slug: str
) -> None:
    origin.clear()
    started = time.monotonic()
    body = nasty.is_problem(img(private, f"o/{path}"), status)
    assert body["type"] == f"https://loupe.dev/problems/{slug}", body
    elapsed = time.monotonic() - started
    if path == "slow.png":
        assert elapsed < SLOW_S, f"the 0.5 s read timeout did not fire ({elapsed:.2f} s)"
    if path == "trickle.png":
        assert elapsed < DEADLINE_S + 1.5, f"no overall fetch deadline ({elapsed:.2f} s)"
    if path == "redirect/2":  # the first request and two followed redirects, no more
        assert origin.paths() == ["/redirect/2", "/redirect/1", "/redirect/0"]
    if path.startswith("to-"):
        assert origin.paths() == [f"/{path}"], "only the first hop reached an origin"


def test_redirects_within_the_limit_are_followed(
    private: LoupeServer, origin: RecordingOrigin
) -> None:
    origin.clear()
    response = img(private, "o/redirect/1", "w=10&fm=png")
    assert response.status_code == 200, response.text
    assert origin.paths() == ["/redirect/1", "/redirect/0", "/img.png"]


def test_private_server_is_still_healthy(private: LoupeServer) -> None:
    assert httpx.get(private.url + "/healthz", timeout=5).status_code == 200
    assert private.metric("loupe_requests_total", 'route="/img",status="500"') == 0


def test_allow_hosts_guards_redirects(origin: RecordingOrigin, tmp_path: Path) -> None:
    config = tmp_path / "loupe.toml"
    config.write_text(
        "[sources]\n"
        "allow_private_networks = true\n"
        "[sources.origins.o]\n"
        f'url = "{origin.url}"\n'
        'allow_hosts = ["127.0.0.1"]\n'
    )
    server = LoupeServer(tmp_path / "root", tmp_path / "data", args=("--config", str(config)))
    try:
        origin.clear()
        assert img(server, "o/img.png").status_code == 200
        origin.clear()
        body = nasty.is_problem(img(server, "o/to-localhost"), 403)
        assert "allow list" in str(body["detail"]), body
        assert origin.paths() == ["/to-localhost"]
    finally:
        server.stop()
