"""ResultCache: a byte-bounded memory LRU in front of a disk cache that outlives the process."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from proxy.cache.results import CachedImage, ResultCache, cache_key, strong_etag

KIB = 1024


@pytest.fixture
def io() -> Iterator[ThreadPoolExecutor]:
    executor = ThreadPoolExecutor(max_workers=2)
    yield executor
    executor.shutdown(wait=True)


def image(size: int, fill: bytes = b"x") -> CachedImage:
    body = (fill * size)[:size]
    return CachedImage(body, "image/jpeg", strong_etag(body), {"X-Loupe-Quality": "80"})


def make(
    io: ThreadPoolExecutor,
    directory: Path | None,
    *,
    memory: int = 8 * KIB,
    item: int = 4 * KIB,
    disk: int = 16 * 1024 * KIB,
) -> ResultCache:
    return ResultCache(
        directory, memory_bytes=memory, memory_max_item_bytes=item, disk_bytes=disk, io=io
    )


def test_memory_is_byte_bounded_and_evicts_the_least_recently_used(
    io: ThreadPoolExecutor,
) -> None:
    async def scenario() -> None:
        cache = make(io, None, memory=8 * KIB, item=4 * KIB)
        items = {f"k{i}": image(2 * KIB, bytes([65 + i])) for i in range(4)}
        for key in ("k0", "k1", "k2"):
            await cache.put(key, items[key])
        assert cache.get_memory("k0") == items["k0"]  # touch k0: k1 is now the oldest
        await cache.put("k3", items["k3"])  # 4 x (2 KiB + overhead) > 8 KiB
        assert cache.get_memory("k1") is None
        assert await cache.get("k1") == (None, "")
        for key in ("k0", "k2", "k3"):
            assert await cache.get(key) == (items[key], "memory")
        cache.close()

    asyncio.run(scenario())


def test_memory_never_holds_more_than_its_budget(io: ThreadPoolExecutor) -> None:
    async def scenario() -> None:
        cache = make(io, None, memory=8 * KIB, item=8 * KIB)
        for i in range(20):
            await cache.put(f"k{i}", image(1000 + 300 * (i % 5)))
        held = [cache.get_memory(f"k{i}") for i in range(20)]
        kept = [item for item in held if item is not None]
        assert 2 <= len(kept) < 20
        assert sum(len(item.body) for item in kept) <= 8 * KIB
        assert held[-1] is not None  # the newest is always there

    asyncio.run(scenario())


def test_large_items_skip_memory_but_land_on_disk(io: ThreadPoolExecutor, tmp_path: Path) -> None:
    async def scenario() -> None:
        cache = make(io, tmp_path / "cache", memory=64 * KIB, item=4 * KIB)
        big, small = image(16 * KIB, b"B"), image(KIB, b"s")
        await cache.put("big", big)
        await cache.put("small", small)
        assert cache.get_memory("big") is None
        assert cache.get_memory("small") == small
        assert await cache.get("big") == (big, "disk")
        assert cache.get_memory("big") is None  # still too big after a disk hit
        assert await cache.get("small") == (small, "memory")
        cache.close()

    asyncio.run(scenario())


def test_disk_hits_are_promoted_to_memory(io: ThreadPoolExecutor, tmp_path: Path) -> None:
    async def scenario() -> None:
        cache = make(io, tmp_path / "cache", memory=4 * KIB, item=4 * KIB)
        first, second, third = image(KIB, b"1"), image(KIB, b"2"), image(KIB, b"3")
        await cache.put("a", first)
        await cache.put("b", second)
        await cache.put("c", third)  # memory holds two of these: "a" is evicted
        assert cache.get_memory("a") is None
        assert await cache.get("a") == (first, "disk")
        assert await cache.get("a") == (first, "memory")
        cache.close()

    asyncio.run(scenario())


def test_disk_survives_a_new_instance(io: ThreadPoolExecutor, tmp_path: Path) -> None:
    async def scenario() -> None:
        directory = tmp_path / "cache"
        item = image(3 * KIB, b"p")
        first = make(io, directory)
        await first.put("persist", item)
        first.close()

        second = make(io, directory)
        assert second.get_memory("persist") is None
        found, tier = await second.get("persist")
        assert tier == "disk"
        assert found == item
        assert found is not None and found.headers == {"X-Loupe-Quality": "80"}
        assert await second.get("absent") == (None, "")
        second.clear()
        assert await second.get("persist") == (None, "")
        second.close()

        third = make(io, directory)
        assert await third.get("persist") == (None, "")
        third.close()

    asyncio.run(scenario())


def test_without_memory_or_disk_nothing_is_kept(io: ThreadPoolExecutor) -> None:
    async def scenario() -> None:
        cache = make(io, None, memory=0, item=0, disk=0)
        await cache.put("k", image(10))
        assert cache.get_memory("k") is None
        assert await cache.get("k") == (None, "")

    asyncio.run(scenario())


def test_cache_key_depends_on_every_part() -> None:
    base = cache_key("a/b.jpg", "w=100", "avif,webp", "etag-1")
    assert base == cache_key("a/b.jpg", "w=100", "avif,webp", "etag-1")
    assert len(base) == 64 and int(base, 16) >= 0
    variants = {
        cache_key("a/c.jpg", "w=100", "avif,webp", "etag-1"),
        cache_key("a/b.jpg", "w=101", "avif,webp", "etag-1"),
        cache_key("a/b.jpg", "w=100", "webp", "etag-1"),
        cache_key("a/b.jpg", "w=100", "", "etag-1"),
        cache_key("a/b.jpg", "w=100", "avif,webp", "etag-2"),
    }
    assert base not in variants
    assert len(variants) == 5


def test_strong_etag_is_quoted_and_content_addressed() -> None:
    tag = strong_etag(b"abc")
    assert tag.startswith('"') and tag.endswith('"') and not tag.startswith("W/")
    assert len(tag) == 34
    assert tag == strong_etag(b"abc")
    assert tag != strong_etag(b"abd")


def test_disk_is_size_bounded(io: ThreadPoolExecutor, tmp_path: Path) -> None:
    async def scenario() -> None:
        cache = make(io, tmp_path / "cache", memory=0, item=0, disk=2048 * KIB)
        keys = [f"k{i}" for i in range(40)]
        for i, key in enumerate(keys):
            await cache.put(key, image(64 * KIB, bytes([i])))
            # disk writes run in the background, on several threads: one at a time here, so
            # the oldest is the first written (eviction is what is under test, not ordering)
            await cache.written(key)
        cache.flush()
        kept = [key for key in keys if (await cache.get(key))[0] is not None]
        assert 0 < len(kept) < 32  # 40 x 64 KiB would be 2.5 MiB
        assert "k39" in kept  # the newest survives; the oldest went first
        assert "k0" not in kept
        cache.close()

    asyncio.run(scenario())


def test_purge_drops_every_variant_of_one_source(io: ThreadPoolExecutor, tmp_path: Path) -> None:
    cache = make(io, tmp_path / "results", memory=64 * KIB)

    async def fill() -> None:
        for n in range(3):
            await cache.put(f"a{n}", image(100, b"a"), tag="shop/a.jpg")
        await cache.put("b0", image(100, b"b"), tag="shop/b.jpg")

    asyncio.run(fill())
    cache.flush()
    assert cache.purge("shop/a.jpg") >= 3
    assert all(asyncio.run(cache.get(f"a{n}"))[0] is None for n in range(3))
    assert asyncio.run(cache.get("b0"))[0] is not None
    cache.close()
    # the disk tier forgot them too: a fresh process finds nothing
    reopened = make(io, tmp_path / "results", memory=64 * KIB)
    assert asyncio.run(reopened.get("a0"))[0] is None
    assert asyncio.run(reopened.get("b0"))[0] is not None
    reopened.close()


def test_evicted_keys_leave_the_tag_index(io: ThreadPoolExecutor) -> None:
    cache = make(io, None, memory=2 * KIB, item=2 * KIB)

    async def fill() -> None:
        for n in range(20):
            await cache.put(f"k{n}", image(600), tag="many.jpg")

    asyncio.run(fill())
    memory = cache._memory
    assert memory is not None
    assert memory.tags["many.jpg"] == set(memory.keys())  # evicted keys left the index
