"""The fetch connects to the address the guard checked, never to a second DNS answer.

The origin's host name exists only in the test's resolver: if httpx resolved it again
(a rebinding window), the fetch would fail. The request must reach the loopback origin
with the original Host header, after exactly one resolution per hop.
"""

from __future__ import annotations

import asyncio
import ipaddress
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import httpx
import pytest

from proxy.errors import Forbidden
from proxy.sources.http import HttpSource, OriginPolicy
from proxy.sources.netguard import IPAddress, refusal

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082"
)


class _Recorder(BaseHTTPRequestHandler):
    hosts: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).hosts.append(self.headers.get("Host", ""))
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(PNG)))
        self.end_headers()
        self.wfile.write(PNG)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture()
def origin() -> Iterator[int]:
    _Recorder.hosts = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()


def _policy(allow_private: bool) -> OriginPolicy:
    return OriginPolicy(
        allow_hosts=(),
        allow_private=allow_private,
        max_redirects=2,
        revalidate_after_s=60,
        max_bytes=1_000_000,
    )


class LoopbackResolver:
    """Stands in for DNS: the test host name resolves to 127.0.0.1, checked by the guard's
    own rule, and every lookup is recorded."""

    def __init__(self) -> None:
        self.lookups: list[str] = []

    async def __call__(self, host: str, port: int, *, allow_private: bool) -> list[IPAddress]:
        self.lookups.append(host)
        address = ipaddress.ip_address("127.0.0.1")
        reason = refusal(address, allow_private=allow_private)
        if reason:
            raise Forbidden(reason)
        return [address]


async def fetch(origin: int, allow_private: bool, resolver: LoopbackResolver) -> bytes:
    async with httpx.AsyncClient(follow_redirects=False, trust_env=False) as client:
        source = HttpSource(
            "o",
            f"http://images.loupe-test.invalid:{origin}/",
            _policy(allow_private),
            client,
            resolver,
        )
        ref = await source.locate("a.png")
        return await source.read(ref, 1_000_000)


def test_connects_to_the_checked_address_with_the_original_host(origin: int) -> None:
    resolver = LoopbackResolver()
    assert asyncio.run(fetch(origin, True, resolver)) == PNG
    assert resolver.lookups == ["images.loupe-test.invalid"], "one resolution, by the guard"
    assert _Recorder.hosts == [f"images.loupe-test.invalid:{origin}"]


def test_the_checked_answer_is_refused_before_any_connection(origin: int) -> None:
    with pytest.raises(Forbidden):
        asyncio.run(fetch(origin, False, LoopbackResolver()))
    assert _Recorder.hosts == []
