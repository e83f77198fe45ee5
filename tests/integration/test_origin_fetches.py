"""Origin downloads are single-flighted per URL and admitted before a byte moves: 48
simultaneous requests (48 different sizes) for one new origin image make one download, and
past the fetch limit a request is shed with 503 instead of downloading."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.integration import nasty
from tests.support import LoupeServer


class SlowOrigin:
    """A loopback origin that counts GETs per path and takes ``delay_s`` to answer."""

    def __init__(self, body: bytes, delay_s: float) -> None:
        self.gets: Counter[str] = Counter()
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: object) -> None:
                pass

            def do_GET(self) -> None:
                with lock:
                    outer.gets[self.path] += 1
                time.sleep(delay_s)
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", '"v1"')
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def origin() -> Iterator[SlowOrigin]:
    running = SlowOrigin(nasty.jpeg(1600, 1200), delay_s=1.0)  # ~2 MB of noise
    yield running
    running.close()


def start(origin: SlowOrigin, data: Path, **env: str) -> LoupeServer:
    root = data / "root"
    root.mkdir(parents=True, exist_ok=True)
    environ = {
        "LOUPE_SOURCES_ORIGINS": f"o={origin.url}",
        "LOUPE_SOURCES_ALLOW_PRIVATE_NETWORKS": "true",
        **env,
    }
    return LoupeServer(root, data / "data", env=environ)


async def burst(server: LoupeServer, paths: list[str]) -> list[int]:
    limits = httpx.Limits(max_connections=len(paths), max_keepalive_connections=len(paths))
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        responses = await asyncio.gather(
            *(
                client.get(f"{server.url}/img/o/{path}", params={"w": 100 + n, "fm": "jpeg"})
                for n, path in enumerate(paths)
            )
        )
    return [response.status_code for response in responses]


def test_48_simultaneous_requests_download_the_image_once(
    origin: SlowOrigin, tmp_path: Path
) -> None:
    server = start(origin, tmp_path, LOUPE_SERVER_QUEUE_LIMIT="64")
    try:
        statuses = asyncio.run(burst(server, ["shared.jpg"] * 48))
        assert set(statuses) <= {200, 503} and statuses.count(200) >= 24, statuses
        assert origin.gets["/shared.jpg"] == 1, origin.gets
        # Other sizes later reuse the same bytes: no download either.
        again = httpx.get(f"{server.url}/img/o/shared.jpg?w=77&fm=jpeg", timeout=30)
        assert again.status_code == 200
        assert origin.gets["/shared.jpg"] == 1, origin.gets
    finally:
        server.stop()


def test_downloads_past_the_limit_are_shed_before_they_start(
    origin: SlowOrigin, tmp_path: Path
) -> None:
    server = start(
        origin,
        tmp_path,
        LOUPE_SOURCES_MAX_CONCURRENT_FETCHES="2",
        LOUPE_SERVER_QUEUE_LIMIT="2",
    )
    try:
        paths = [f"distinct-{n}.jpg" for n in range(10)]
        statuses = asyncio.run(burst(server, paths))
        assert set(statuses) <= {200, 503}, statuses
        assert statuses.count(503) >= 1, statuses
        downloaded = sum(origin.gets[f"/{path}"] for path in paths)
        assert downloaded == statuses.count(200) <= 4, (origin.gets, statuses)
    finally:
        server.stop()
