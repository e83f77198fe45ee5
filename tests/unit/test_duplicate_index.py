"""The near-duplicate index returns exactly what comparing against every hash returns."""

from __future__ import annotations

import random
import threading

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from proxy.duplicates.index import (
    PENDING_MIN,
    DuplicateIndex,
    chunk_layout,
    chunks,
    hamming,
    parse_phash,
)

FAST = settings(max_examples=200, deadline=None)
hashes64 = st.integers(0, 2**64 - 1)


def brute(
    hashes: dict[str, int], query: int, distance: int, exclude: str | None = None
) -> list[tuple[str, int]]:
    hits = [(key, hamming(h, query)) for key, h in hashes.items() if key != exclude]
    return sorted((hit for hit in hits if hit[1] <= distance), key=lambda hit: (hit[1], hit[0]))


@st.composite
def flipped(draw: st.DrawFn, value: int, distance: int, bits: int) -> int:
    """``value`` with exactly ``distance`` distinct bits flipped."""
    positions = draw(
        st.lists(st.integers(0, bits - 1), min_size=distance, max_size=distance, unique=True)
    )
    for position in positions:
        value ^= 1 << position
    return value


@st.composite
def libraries(draw: st.DrawFn) -> tuple[int, int, int, dict[str, int], list[str], int | None]:
    """(bits, max_distance, query, hashes, removed keys, query distance): random hashes plus
    neighbours planted at every distance 0..r+1 from the query, some of them twice."""
    bits = draw(st.sampled_from([64, 64, 64, 17, 32, 40]))
    max_distance = draw(st.integers(0, min(16, bits - 1)))
    query = draw(st.integers(0, 2**bits - 1))
    hashes = {
        f"r{n}": h for n, h in enumerate(draw(st.lists(st.integers(0, 2**bits - 1), max_size=40)))
    }
    for distance in range(max_distance + 2):
        for copy in range(draw(st.integers(1, 2))):
            hashes[f"p{distance}-{copy}"] = draw(flipped(query, distance, bits))
    removed = draw(st.lists(st.sampled_from(sorted(hashes)), max_size=5))
    asked = draw(st.none() | st.integers(0, max_distance))
    return bits, max_distance, query, hashes, removed, asked


@FAST
@given(libraries(), st.data())
def test_near_equals_brute_force(
    library: tuple[int, int, int, dict[str, int], list[str], int | None], data: st.DataObject
) -> None:
    bits, max_distance, query, hashes, removed, asked = library
    index = DuplicateIndex(max_distance, bits)
    keys = sorted(hashes)
    split = data.draw(st.integers(0, len(keys)), label="split")
    index.add_many((key, hashes[key]) for key in keys[:split])  # in the tables
    for key in keys[split:]:  # pending, scanned by brute force
        index.add(key, hashes[key])
    for key in removed:
        index.remove(key)
        hashes.pop(key, None)
    exclude = data.draw(st.none() | st.sampled_from(keys), label="exclude")
    distance = max_distance if asked is None else asked
    assert index.near(query, asked, exclude=exclude) == brute(hashes, query, distance, exclude)
    assert len(index) == len(hashes)


@FAST
@given(st.integers(0, 6), hashes64, st.lists(hashes64, min_size=1, max_size=20), st.data())
def test_readding_a_key_replaces_its_hash(
    max_distance: int, query: int, others: list[int], data: st.DataObject
) -> None:
    index = DuplicateIndex(max_distance)
    near = data.draw(flipped(query, max_distance, 64))
    index.add_many([("a", near)])
    for n, h in enumerate(others):
        index.add(f"o{n}", h)
    index.add("a", near ^ (2**64 - 1))  # now as far as can be
    assert "a" not in dict(index.near(query))
    index.add("a", query)
    assert index.near(query)[0] == ("a", 0)
    assert index.near(query, exclude="a") == brute(
        {f"o{n}": h for n, h in enumerate(others)}, query, max_distance
    )


def test_rebuilds_keep_every_hash_findable() -> None:
    """Enough adds, re-adds and removals to rebuild the tables (and compact) several times."""
    rng = random.Random(7)
    index = DuplicateIndex(6)
    hashes: dict[str, int] = {}
    bases = [rng.getrandbits(64) for _ in range(50)]
    for n in range(3 * PENDING_MIN):
        key = f"k{rng.randrange(2 * PENDING_MIN)}"
        if n % 5 == 4:
            index.remove(key)
            hashes.pop(key, None)
            continue
        value = rng.choice(bases) ^ (1 << rng.randrange(64)) ^ (1 << rng.randrange(64))
        index.add(key, value)
        hashes[key] = value
    assert len(index) == len(hashes)
    for base in bases:
        assert index.near(base) == brute(hashes, base, 6)
        assert index.near(base, 2) == brute(hashes, base, 2)


def test_concurrent_adds_and_queries() -> None:
    index = DuplicateIndex(4)
    base = random.Random(3).getrandbits(64)
    errors: list[BaseException] = []

    def writer(thread: int) -> None:
        try:
            for n in range(2000):
                index.add(f"{thread}-{n}", base ^ (1 << (n % 64)))
                if n % 3 == 0:
                    index.remove(f"{thread}-{n - 1}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def reader() -> None:
        try:
            for _ in range(300):
                assert all(distance == 1 for _, distance in index.near(base))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(3)]
    threads += [threading.Thread(target=reader) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    survivors = {key for key, _ in index.near(base)}
    assert len(survivors) == len(index)
    assert "0-1998" in survivors and "0-1997" not in survivors


def test_rejects_a_wider_query_than_indexed_and_bad_hashes() -> None:
    index = DuplicateIndex(3)
    with pytest.raises(ValueError):
        index.near(0, 4)
    with pytest.raises(ValueError):
        index.near(0, -1)
    with pytest.raises(ValueError):
        index.add("big", 2**64)
    with pytest.raises(ValueError):
        DuplicateIndex(65)
    index.remove("never-added")  # ignored
    assert len(index) == 0 and index.near(0) == []


# -- chunks, hamming, parse_phash -------------------------------------------------------


@FAST
@given(hashes64, st.integers(1, 64))
def test_chunks_are_disjoint_and_cover_every_bit(phash: int, parts: int) -> None:
    layout = chunk_layout(parts)
    widths = [width for _, width in layout]
    assert sum(widths) == 64 and max(widths) - min(widths) <= 1
    assert widths == sorted(widths, reverse=True)  # the wider chunks come first
    rebuilt = 0
    for value, width in zip(chunks(phash, parts), widths, strict=True):
        assert 0 <= value < 2**width
        rebuilt = (rebuilt << width) | value  # most significant chunk first
    assert rebuilt == phash


@FAST
@given(hashes64)
def test_eight_chunks_are_the_bytes_of_the_hex_string(phash: int) -> None:
    text = f"{phash:016x}"
    assert chunks(phash, 8) == [int(text[2 * i : 2 * i + 2], 16) for i in range(8)]
    assert chunk_layout(7)[0] == (54, 10) and chunk_layout(7)[1:3] == [(45, 9), (36, 9)]


@FAST
@given(hashes64, st.integers(1, 17), st.data())
def test_pigeonhole_some_chunk_matches_within_parts_minus_one(
    phash: int, parts: int, data: st.DataObject
) -> None:
    other = data.draw(flipped(phash, data.draw(st.integers(0, parts - 1)), 64))
    assert any(a == b for a, b in zip(chunks(phash, parts), chunks(other, parts), strict=True))


@FAST
@given(hashes64, hashes64, hashes64)
def test_hamming_is_a_metric(a: int, b: int, c: int) -> None:
    assert hamming(a, b) == bin(a ^ b).count("1") == hamming(b, a)
    assert hamming(a, a) == 0
    assert hamming(a, c) <= hamming(a, b) + hamming(b, c)


@FAST
@given(hashes64, st.booleans())
def test_parse_phash_round_trips(phash: int, upper: bool) -> None:
    text = f"{phash:016x}"
    assert parse_phash(text.upper() if upper else text) == phash


@FAST
@given(st.text(max_size=20))
def test_parse_phash_rejects_everything_else(text: str) -> None:
    assume(not (len(text) == 16 and all(ch in "0123456789abcdefABCDEF" for ch in text)))
    with pytest.raises(ValueError):
        parse_phash(text)


@pytest.mark.parametrize(
    "text",
    [
        "0x0123456789abcd",
        " 0123456789abcdef",
        "0123456789abcde",
        "0123_456789abcdef",
        "+123456789abcdef",
        "0123456789abcdeg",
        "0123456789abcdef0",
    ],
)
def test_parse_phash_rejects_what_int_would_take(text: str) -> None:
    with pytest.raises(ValueError):
        parse_phash(text)
