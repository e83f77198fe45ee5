"""Overload answers 503 + Retry-After (never 500, never an unbounded queue); a render that
outlives the request deadline answers 503 ``deadline-exceeded``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.integration.imaging import NO_MODERN, TIMEOUT, assert_problem, decode, get, size
from tests.support import LoupeServer

BIG = "generated/large_6000x4000_flower_upscaled.jpg"  # 6000x4000, 24 MP


async def _burst(server: LoupeServer, queries: list[str]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(queries), max_keepalive_connections=len(queries))
    async with httpx.AsyncClient(timeout=TIMEOUT, limits=limits, headers=NO_MODERN) as client:
        requests = (client.get(f"{server.url}/img/{BIG}?{query}") for query in queries)
        return list(await asyncio.gather(*requests))


def _assert_retry_after(response: httpx.Response) -> None:
    retry_after = response.headers.get("retry-after")
    assert retry_after is not None, "503 without Retry-After"
    assert retry_after.isdigit() and int(retry_after) >= 1, retry_after


def test_overload_sheds_with_503(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    env = {"LOUPE_SERVER_PROCESSING_THREADS": "1", "LOUPE_SERVER_QUEUE_LIMIT": "0"}
    server = LoupeServer(data_root, tmp_path_factory.mktemp("loupe-shed"), env=env)
    try:
        queries = [f"w={2000 + index}&fm=jpeg" for index in range(8)]  # distinct, uncached
        responses = asyncio.run(_burst(server, queries))
        statuses = [response.status_code for response in responses]
        assert 500 not in statuses
        assert set(statuses) <= {200, 503}, statuses
        assert statuses.count(503) >= 1, f"nothing was shed: {statuses}"
        assert statuses.count(200) >= 1, f"nothing was served: {statuses}"
        for response, query in zip(responses, queries, strict=True):
            if response.status_code == 503:
                assert_problem(response, 503, "overloaded")
                _assert_retry_after(response)
                assert "no-store" in response.headers["cache-control"]
            else:
                width = int(query.split("&")[0].removeprefix("w="))
                assert decode(response).width == width
        shed = server.metric("loupe_requests_total", 'route="/img",status="503"')
        assert shed == statuses.count(503)
        # Shedding is momentary: once the burst is over the same requests succeed.
        retried = get(server, BIG, queries[statuses.index(503)])
        assert retried.status_code == 200
        assert httpx.get(server.url + "/readyz", timeout=TIMEOUT).status_code == 200
    finally:
        server.stop()


def test_deadline_exceeded_is_503(
    data_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    env = {"LOUPE_SERVER_REQUEST_DEADLINE_S": "0.001"}
    server = LoupeServer(data_root, tmp_path_factory.mktemp("loupe-deadline"), env=env)
    try:
        for _ in range(2):  # the failure is not cached either
            response = get(server, BIG, "w=2500&fm=png")
            body = assert_problem(response, 503, "deadline-exceeded")
            assert body["title"]
            _assert_retry_after(response)
            assert "etag" not in response.headers
        assert server.metric("loupe_renders_total") == 0
        assert server.metric("loupe_requests_total", 'route="/img",status="500"') == 0
        assert httpx.get(server.url + "/healthz", timeout=TIMEOUT).status_code == 200
    finally:
        server.stop()


def test_normal_deadline_serves_the_big_image(server: LoupeServer) -> None:
    image = decode(get(server, BIG, "w=600&fm=jpeg"))
    assert size(image) == (600, 400)
