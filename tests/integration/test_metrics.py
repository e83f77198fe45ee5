"""``GET /metrics``: Prometheus text with request, latency, cache and stage series."""

from __future__ import annotations

import re

import httpx

from tests.integration.imaging import TIMEOUT, get
from tests.support import LoupeServer

PHOTO = "kodak/kodim10.png"


def _metrics(server: LoupeServer) -> str:
    response = httpx.get(server.url + "/metrics", timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def _types(text: str) -> dict[str, str]:
    return dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE))


def test_metric_families_and_types(server: LoupeServer) -> None:
    assert get(server, PHOTO, "w=101&fm=jpeg").status_code == 200
    assert get(server, PHOTO, "w=101&fm=jpeg").status_code == 200
    text = _metrics(server)
    types = _types(text)
    assert (
        types.get("loupe_requests") == "counter" or types.get("loupe_requests_total") == "counter"
    )
    assert types["loupe_request_seconds"] == "histogram"
    assert types.get("loupe_cache") == "counter" or types.get("loupe_cache_total") == "counter"
    assert types["loupe_stage_seconds"] == "histogram"
    assert re.search(r'^loupe_requests_total\{[^}]*route="/img"[^}]*\} \d', text, re.MULTILINE)
    assert re.search(r'^loupe_request_seconds_bucket\{[^}]*le="\+Inf"', text, re.MULTILINE)
    assert re.search(r'^loupe_request_seconds_count\{[^}]*route="/img"', text, re.MULTILINE)
    assert re.search(r'^loupe_cache_total\{result="miss"\} \d', text, re.MULTILINE)
    assert re.search(r'^loupe_cache_total\{result="hit"\} \d', text, re.MULTILINE)
    stages = set(re.findall(r'^loupe_stage_seconds_count\{stage="([^"]+)"\}', text, re.MULTILINE))
    assert {"load", "encode"} <= stages and len(stages) >= 5, stages


def test_counters_move_with_requests(server: LoupeServer) -> None:
    ok = server.metric("loupe_requests_total", 'route="/img",status="200"')
    bad = server.metric("loupe_requests_total", 'route="/img",status="400"')
    timed = server.metric("loupe_request_seconds_count", 'route="/img"')
    misses = server.metric("loupe_cache_total", 'result="miss"')
    hits = server.metric("loupe_cache_total", 'result="hit"')
    renders = server.metric("loupe_renders_total")
    encodes = server.metric("loupe_stage_seconds_count", 'stage="encode"')

    assert get(server, PHOTO, "w=102&fm=jpeg").status_code == 200
    assert get(server, PHOTO, "w=102&fm=jpeg").status_code == 200
    assert get(server, PHOTO, "w=0").status_code == 400

    assert server.metric("loupe_requests_total", 'route="/img",status="200"') == ok + 2
    assert server.metric("loupe_requests_total", 'route="/img",status="400"') == bad + 1
    assert server.metric("loupe_request_seconds_count", 'route="/img"') == timed + 3
    assert server.metric("loupe_cache_total", 'result="miss"') == misses + 1
    assert server.metric("loupe_cache_total", 'result="hit"') == hits + 1
    assert server.metric("loupe_renders_total") == renders + 1
    assert server.metric("loupe_stage_seconds_count", 'stage="encode"') == encodes + 1
