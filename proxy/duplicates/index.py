"""Find the sources whose perceptual hash lies within a few bits of another's, without
comparing against every hash in the library.

Multi-index hashing (Norouzi, Punjani and Fleet, 2012): the 64 bits are cut into ``m``
disjoint chunks, and each chunk is a table from its value to the hashes that have it. If two
hashes differ in at most ``d = s * m + a`` bits (``0 <= a < m``), then one of the first
``a + 1`` chunks differs in at most ``s`` bits or one of the others in at most ``s - 1``
(otherwise the total would be at least ``m * s + a + 1``). So a query reads, in each table,
the buckets of its own chunk value with up to ``s`` (or ``s - 1``) bits flipped, and checks
the full distance of only those candidates. With ``m = d + 1`` this is the plain pigeonhole
rule (some chunk matches exactly), which ``chunks`` serves for the SQL store.

In memory the index uses 16-bit chunks (``m = 4`` for 64 bits) rather than ``d + 1`` narrow
ones. Measured on 100k random hashes, ``d = 6``: seven 9-10-bit exact-match dict tables read
~1,400 candidates a query and took ~220 us in Python, slower than a numpy brute force
(~75 us); four 16-bit tables read 52 buckets and ~80 candidates. The tables are numpy arrays
(slots sorted by chunk value, plus each bucket's start), so one query is a dozen vectorised
steps: ~23 us at 100k hashes (brute force ~78 us), ~39 us at 1M (brute force ~740 us), see
``bench/duplicates_bench.py``.

Updates append to a pending tail that queries scan by brute force; the tables are rebuilt
when the tail grows past ``max(PENDING_MIN, built / 16)`` (a radix sort per chunk, with the
lock held: ~5 ms at 100k hashes, ~25 ms when removed keys are compacted too), so an ``add``
costs amortised O(1) and a query never scans much. ``add_many`` rebuilds once.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from itertools import combinations

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]

PHASH_BITS = 64
TABLE_BITS = 16  # widest chunk of the in-memory index: 2**16 + 1 bucket starts per table
PENDING_MIN = 4096  # hashes added since the last rebuild that queries may scan by brute force

_PHASH_HEX = re.compile(r"[0-9a-fA-F]{16}")
_POPCOUNT8 = np.array([bin(value).count("1") for value in range(256)], dtype=np.uint8)


def hamming(a: int, b: int) -> int:
    """Number of bits in which two hashes differ."""
    return (a ^ b).bit_count()


def parse_phash(text: str) -> int:
    """The integer of a phash string: exactly 16 hex digits (either case), nothing else."""
    if not isinstance(text, str) or not _PHASH_HEX.fullmatch(text):
        raise ValueError(f"a phash is 16 hex digits, got {text!r}")
    return int(text, 16)


def chunk_layout(parts: int, bits: int = PHASH_BITS) -> list[tuple[int, int]]:
    """``(shift, width)`` of each chunk, most significant first; see :func:`chunks`."""
    if not 1 <= parts <= bits:
        raise ValueError(f"cannot cut {bits} bits into {parts} chunks")
    base, wider = divmod(bits, parts)
    layout = []
    shift = bits
    for number in range(parts):
        width = base + (1 if number < wider else 0)
        shift -= width
        layout.append((shift, width))
    return layout


def chunks(phash: int, parts: int, bits: int = PHASH_BITS) -> list[int]:
    """The values of ``parts`` disjoint chunks that together hold every bit of ``phash``.

    Layout (stored by the SQL store, so it must not change): chunks are taken from the most
    significant bit down; the first ``bits % parts`` chunks are ``bits // parts + 1`` bits
    wide and the rest ``bits // parts``; chunk ``i`` is ``(phash >> shift_i) & (2**width_i - 1)``
    with ``shift_i = bits - (widths of chunks 0..i)``. For 64 bits in 8 parts, chunk ``i`` is
    byte ``i`` of the big-endian hash, i.e. hex digits ``2i`` and ``2i + 1`` of the phash
    string; in 7 parts the widths are 10, 9, 9, 9, 9, 9, 9. Any hash within ``parts - 1``
    bits of another equals it on at least one chunk.
    """
    _check_hash(phash, bits)
    return [(phash >> shift) & ((1 << width) - 1) for shift, width in chunk_layout(parts, bits)]


def _check_hash(phash: int, bits: int) -> None:
    if not 0 <= phash < 1 << bits:
        raise ValueError(f"hash {phash!r} does not fit in {bits} unsigned bits")


def _popcount(values: U64) -> npt.NDArray[np.uint8]:
    if hasattr(np, "bitwise_count"):  # numpy >= 2
        return np.bitwise_count(values)
    per_byte = _POPCOUNT8[values.view(np.uint8)].reshape(-1, 8)
    counts: npt.NDArray[np.uint8] = per_byte.sum(axis=1, dtype=np.uint8)
    return counts


def _probes(widths: list[int], distance: int) -> tuple[I64, I64]:
    """For a query at ``distance``: the table number and the bits to flip in that table's
    chunk value, for every bucket the query must read (see the module doc)."""
    radius, wider = divmod(distance, len(widths))
    tables: list[int] = []
    flips: list[int] = []
    for number, width in enumerate(widths):
        reach = radius if number <= wider else radius - 1
        for count in range(min(reach, width) + 1):
            for positions in combinations(range(width), count):
                tables.append(number)
                flips.append(sum(1 << position for position in positions))
    return np.array(tables, dtype=np.int64), np.array(flips, dtype=np.int64)


class DuplicateIndex:
    """Keys and their hashes, queried for all keys within a Hamming distance. Thread-safe:
    one lock guards every method (a query holds it for tens of microseconds, an occasional
    rebuild for milliseconds)."""

    def __init__(self, max_distance: int = 6, bits: int = PHASH_BITS) -> None:
        if not 1 <= bits <= PHASH_BITS:
            raise ValueError(f"bits must be 1..{PHASH_BITS}, got {bits}")
        if not 0 <= max_distance <= bits:
            raise ValueError(f"max_distance must be 0..{bits}, got {max_distance}")
        self.max_distance = max_distance
        self.bits = bits
        self._parts = -(-bits // TABLE_BITS)
        layout = chunk_layout(self._parts, bits)
        self._layout = [(shift, (1 << width) - 1) for shift, width in layout]
        self._shifts = np.array([shift for shift, _ in layout], dtype=np.uint64)
        self._masks = np.array([mask for _, mask in self._layout], dtype=np.uint64)
        sizes = [1 << width for _, width in layout]
        self._table_starts = np.cumsum([0, *sizes[:-1]], dtype=np.int64)
        self._buckets = sum(sizes)
        widths = [width for _, width in layout]
        self._plans = [_probes(widths, d) for d in range(max_distance + 1)]
        self._lock = threading.Lock()
        # Slot state: slots [0, built) are in the tables, [built, used) are pending.
        self._hashes: U64 = np.zeros(1024, dtype=np.uint64)
        self._alive = np.zeros(1024, dtype=np.bool_)
        self._keys: list[str] = []
        self._slots: dict[str, int] = {}
        self._used = 0
        self._built = 0
        self._order: I64 = np.zeros(0, dtype=np.int64)  # slots by (table, chunk value)
        self._bucket_starts: I64 = np.zeros(self._buckets + 1, dtype=np.int64)

    def __len__(self) -> int:
        with self._lock:
            return len(self._slots)

    def add(self, key: str, phash: int) -> None:
        """Index ``phash`` under ``key``; re-adding a key replaces its hash."""
        _check_hash(phash, self.bits)
        with self._lock:
            self._append(key, phash)
            self._maybe_rebuild()

    def add_many(self, items: Iterable[tuple[str, int]]) -> None:
        """``add`` for each pair, with one rebuild at the end (loading a library)."""
        pairs = list(items)
        for _, phash in pairs:
            _check_hash(phash, self.bits)
        with self._lock:
            for key, phash in pairs:
                self._append(key, phash)
            self._rebuild()

    def remove(self, key: str) -> None:
        """Forget ``key``; absent keys are ignored (removals may race with each other)."""
        with self._lock:
            slot = self._slots.pop(key, None)
            if slot is not None:
                self._alive[slot] = False
                self._maybe_rebuild()

    def near(
        self, phash: int, max_distance: int | None = None, *, exclude: str | None = None
    ) -> list[tuple[str, int]]:
        """Every ``(key, distance)`` within ``max_distance`` (default: the index's) of
        ``phash``, ``exclude`` left out, sorted by distance then key."""
        distance = self.max_distance if max_distance is None else max_distance
        if not 0 <= distance <= self.max_distance:
            raise ValueError(f"max_distance must be 0..{self.max_distance}, got {distance}")
        _check_hash(phash, self.bits)
        with self._lock:
            query = np.uint64(phash)
            tabled = self._table_candidates(phash, distance)
            slots = set(tabled[_popcount(self._hashes[tabled] ^ query) <= distance].tolist())
            if self._used > self._built:
                tail = _popcount(self._hashes[self._built : self._used] ^ query) <= distance
                slots.update((np.flatnonzero(tail) + self._built).tolist())
            found = [
                (self._keys[slot], hamming(int(self._hashes[slot]), phash))
                for slot in slots
                if self._alive[slot] and self._keys[slot] != exclude
            ]
        return sorted(found, key=lambda hit: (hit[1], hit[0]))

    # -- internals (called with the lock held) ------------------------------------------

    def _table_candidates(self, phash: int, distance: int) -> I64:
        """Slots in every bucket the query must read; a slot may appear more than once."""
        if self._built == 0:
            return np.zeros(0, dtype=np.int64)
        tables, flips = self._plans[distance]
        values = np.array([(phash >> shift) & mask for shift, mask in self._layout])
        buckets = self._table_starts[tables] + (values[tables] ^ flips)
        first = self._bucket_starts[buckets]
        lengths = self._bucket_starts[buckets + 1] - first
        total = int(lengths.sum())
        if total == 0:
            return np.zeros(0, dtype=np.int64)
        ends = np.cumsum(lengths)
        positions = np.repeat(first - (ends - lengths), lengths) + np.arange(total)
        return self._order[positions]

    def _append(self, key: str, phash: int) -> None:
        old = self._slots.get(key)
        if old is not None:
            self._alive[old] = False
        if self._used == len(self._hashes):
            self._hashes = np.resize(self._hashes, 2 * self._used)
            self._alive = np.resize(self._alive, 2 * self._used)
        slot = self._used
        self._hashes[slot] = phash
        self._alive[slot] = True
        self._keys.append(key)
        self._slots[key] = slot
        self._used += 1

    def _maybe_rebuild(self) -> None:
        pending = self._used - self._built
        dead = self._used - len(self._slots)
        if pending > max(PENDING_MIN, self._built // 16) or dead > max(
            PENDING_MIN, self._used // 4
        ):
            self._rebuild()

    def _rebuild(self) -> None:
        """Drop dead slots (if any), then sort every slot into the tables (radix sort)."""
        if len(self._slots) < self._used:
            self._compact()
        count = self._built = self._used
        values = (self._hashes[None, :count] >> self._shifts[:, None]) & self._masks[:, None]
        orders = [np.argsort(row.astype(np.uint16), kind="stable") for row in values]
        self._order = np.concatenate(orders).astype(np.int64)
        buckets = (values.astype(np.int64) + self._table_starts[:, None]).ravel()
        counts = np.bincount(buckets, minlength=self._buckets)
        self._bucket_starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

    def _compact(self) -> None:
        live = np.flatnonzero(self._alive[: self._used])
        count = len(live)
        self._keys = [self._keys[slot] for slot in live.tolist()]
        self._slots = {key: slot for slot, key in enumerate(self._keys)}
        hashes = np.zeros(max(1024, 2 * count), dtype=np.uint64)
        hashes[:count] = self._hashes[live]
        self._hashes = hashes
        self._alive = np.zeros(len(hashes), dtype=np.bool_)
        self._alive[:count] = True
        self._used = count
