"""ETags, conditional requests, HEAD, Cache-Control, Server-Timing, the result cache and
request coalescing, against servers whose caches start empty."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.imaging import NO_MODERN, TIMEOUT, decode, get, size
from tests.support import LoupeServer

PHOTO = "kodak/kodim06.png"  # 768x512
BIG = "generated/large_6000x4000_flower_upscaled.jpg"
_STRONG_ETAG = re.compile(r'^"[\x21\x23-\x7e]+"$')
_TIMING = re.compile(r"^([A-Za-z0-9_-]+)(?:;dur=([0-9.]+))?(?:;desc=\"[^\"]*\")?$")


@pytest.fixture(scope="module")
def fresh(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoupeServer]:
    """A server of its own, so cache states here do not depend on other test files."""
    running = LoupeServer(data_root, tmp_path_factory.mktemp("loupe-http"))
    yield running
    running.stop()


def _timings(header: str) -> dict[str, float]:
    entries: dict[str, float] = {}
    for part in header.split(","):
        found = _TIMING.match(part.strip())
        assert found, f"malformed Server-Timing entry {part!r}"
        entries[found[1]] = float(found[2] or 0)
    return entries


def test_miss_then_hit_with_the_same_bytes(fresh: LoupeServer) -> None:
    first = get(fresh, PHOTO, "w=211&fm=jpeg")
    second = get(fresh, PHOTO, "w=211&fm=jpeg")
    assert first.headers["x-loupe-cache"] == "miss"
    assert second.headers["x-loupe-cache"] == "hit"
    assert first.content == second.content
    assert first.headers["etag"] == second.headers["etag"]
    assert size(decode(second)) == (211, 141)


def test_equivalent_urls_share_one_cache_entry(fresh: LoupeServer) -> None:
    first = get(fresh, PHOTO, "w=212&h=300&fm=jpeg&fit=clip&dpr=1")
    assert first.headers["x-loupe-cache"] == "miss"
    again = get(fresh, PHOTO, "fm=jpeg&h=300&w=212")
    assert again.headers["x-loupe-cache"] == "hit"
    assert again.headers["etag"] == first.headers["etag"]
    doubled = get(fresh, PHOTO, "w=106&h=150&dpr=2&fm=jpeg")
    assert doubled.headers["x-loupe-cache"] == "hit"


def test_etag_is_strong_and_tracks_the_bytes(fresh: LoupeServer) -> None:
    small = get(fresh, PHOTO, "w=213&fm=jpeg")
    other = get(fresh, PHOTO, "w=214&fm=jpeg")
    for response in (small, other):
        etag = response.headers["etag"]
        assert not etag.startswith("W/"), "the ETag must be strong"
        assert _STRONG_ETAG.match(etag), etag
    assert small.headers["etag"] != other.headers["etag"]


def test_if_none_match_gives_304(fresh: LoupeServer) -> None:
    response = get(fresh, PHOTO, "w=215&fm=jpeg")
    etag = response.headers["etag"]
    for condition in (
        etag,
        f'"nope", {etag}',
        f'"a",{etag} , "b"',
        f"W/{etag}",
        f'W/"nope", W/{etag}',
        "*",
    ):
        headers = {**NO_MODERN, "If-None-Match": condition}
        conditional = get(fresh, PHOTO, "w=215&fm=jpeg", headers=headers)
        assert conditional.status_code == 304, condition
        assert conditional.content == b""
        assert conditional.headers["etag"] == etag
        assert "max-age=" in conditional.headers["cache-control"]
    for condition in ('"nope"', 'W/"nope", "other"', etag.strip('"')):
        headers = {**NO_MODERN, "If-None-Match": condition}
        unconditional = get(fresh, PHOTO, "w=215&fm=jpeg", headers=headers)
        assert unconditional.status_code == 200, condition
        assert unconditional.content == response.content


def test_304_with_auto_format_still_varies(fresh: LoupeServer) -> None:
    response = get(fresh, PHOTO, "w=216", headers={"Accept": "image/webp"})
    headers = {"Accept": "image/webp", "If-None-Match": response.headers["etag"]}
    conditional = get(fresh, PHOTO, "w=216", headers=headers)
    assert conditional.status_code == 304
    assert conditional.headers["vary"].lower() == "accept"


def test_head_has_the_headers_but_no_body(fresh: LoupeServer) -> None:
    head_first = get(fresh, PHOTO, "w=217&fm=webp", method="HEAD")
    assert head_first.status_code == 200
    assert head_first.content == b""
    full = get(fresh, PHOTO, "w=217&fm=webp")
    head = get(fresh, PHOTO, "w=217&fm=webp", method="HEAD")
    assert head.status_code == 200
    assert head.content == b""
    assert int(head.headers["content-length"]) == len(full.content) > 0
    assert int(head_first.headers["content-length"]) == len(full.content)
    for name in ("content-type", "etag", "cache-control", "x-loupe-crop", "x-loupe-quality"):
        assert head.headers[name] == full.headers[name] == head_first.headers[name], name
    assert head.headers["content-type"] == "image/webp"


def test_cache_control_has_max_age(fresh: LoupeServer) -> None:
    response = get(fresh, PHOTO, "w=218&fm=jpeg")
    directives = [part.strip() for part in response.headers["cache-control"].split(",")]
    ages = [int(part.split("=", 1)[1]) for part in directives if part.startswith("max-age=")]
    assert ages and ages[0] > 0
    assert "no-store" not in directives and "private" not in directives


def test_server_timing_names_the_stages(fresh: LoupeServer) -> None:
    miss = get(fresh, PHOTO, "w=219&h=219&fit=crop&fm=jpeg")
    assert miss.headers["x-loupe-cache"] == "miss"
    stages = _timings(miss.headers["server-timing"])
    assert len(stages) >= 5, stages
    assert {"load", "encode"} <= set(stages), stages
    assert all(duration >= 0 for duration in stages.values())
    hit = get(fresh, PHOTO, "w=219&h=219&fit=crop&fm=jpeg")
    assert hit.headers["x-loupe-cache"] == "hit"
    assert _timings(hit.headers["server-timing"])


def test_accept_classes_are_separate_variants(fresh: LoupeServer) -> None:
    variants = {
        "image/jpeg": "image/jpeg",
        "image/webp": "image/webp",
        "image/avif,image/webp": "image/avif",
    }
    etags = set()
    # A fixed quality: a q=auto answer is provisional, and replaced once the lane verified it.
    for accept, mime in variants.items():
        first = get(fresh, PHOTO, "w=220&q=80", headers={"Accept": accept})
        assert first.headers["x-loupe-cache"] == "miss", accept
        assert first.headers["content-type"] == mime
        etags.add(first.headers["etag"])
    assert len(etags) == len(variants)
    # Each variant is now cached for its own class, and a different Accept string of the
    # same class reuses it.
    again = get(fresh, PHOTO, "w=220&q=80", headers={"Accept": "image/webp,image/png;q=0.9"})
    assert again.headers["x-loupe-cache"] == "hit"
    assert again.headers["content-type"] == "image/webp"
    jpeg = get(fresh, PHOTO, "w=220&q=80", headers={"Accept": "*/*"})
    assert jpeg.headers["x-loupe-cache"] == "hit"
    assert jpeg.headers["content-type"] == "image/jpeg"


def test_explicit_format_does_not_split_on_accept(fresh: LoupeServer) -> None:
    first = get(fresh, PHOTO, "w=221&fm=png", headers={"Accept": "image/webp"})
    second = get(fresh, PHOTO, "w=221&fm=png", headers={"Accept": "image/avif"})
    assert first.headers["x-loupe-cache"] == "miss"
    assert second.headers["x-loupe-cache"] == "hit"
    assert first.headers["etag"] == second.headers["etag"]


def test_errors_are_not_cached_as_images(fresh: LoupeServer) -> None:
    response = get(fresh, "kodak/missing.png", "w=100")
    assert response.status_code == 404
    assert "etag" not in response.headers


# --- coalescing ------------------------------------------------------------------------------


async def _concurrently(server: LoupeServer, query: str, count: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(timeout=TIMEOUT, limits=limits, headers=NO_MODERN) as client:
        url = f"{server.url}/img/{BIG}?{query}"
        return list(await asyncio.gather(*(client.get(url) for _ in range(count))))


def test_identical_first_requests_compute_once(fresh: LoupeServer) -> None:
    """Eight concurrent first requests for one uncached variant: one render, seven joins."""
    renders = fresh.metric("loupe_renders_total")
    coalesced = fresh.metric("loupe_cache_total", 'result="coalesced"')
    responses = asyncio.run(_concurrently(fresh, "w=2001&fm=jpeg", 8))
    assert [r.status_code for r in responses] == [200] * 8
    assert fresh.metric("loupe_renders_total") - renders == 1
    states = sorted(r.headers["x-loupe-cache"] for r in responses)
    assert states == ["coalesced"] * 7 + ["miss"]
    assert fresh.metric("loupe_cache_total", 'result="coalesced"') - coalesced == 7
    assert len({r.headers["etag"] for r in responses}) == 1
    assert len({r.content for r in responses}) == 1
    assert size(decode(responses[0])) == (2001, 1334)
    later = get(fresh, BIG, "w=2001&fm=jpeg")
    assert later.headers["x-loupe-cache"] == "hit"
    assert fresh.metric("loupe_renders_total") - renders == 1
