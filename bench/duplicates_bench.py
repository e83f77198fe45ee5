#!/usr/bin/env python3
"""Time ``proxy.duplicates.index.DuplicateIndex.near`` against a numpy brute force, in one run.

It is a script, not a test. Run from the repository root:

    python3 bench/duplicates_bench.py                 # 100k hashes, 2,000 queries
    python3 bench/duplicates_bench.py --n 1000000 --queries 5000 --distance 6

The library: ``--n`` random 64-bit hashes, plus, around each of ``--queries / 2`` random
centres, one planted near-duplicate at every distance 0..r+1 (``r = --distance``), so every
pigeonhole boundary is exercised and the r+1 one must not be found. It is loaded one
``add`` at a time, as a growing library would be (the index then has a pending tail that
queries scan), and the load is timed too. Queries: the centres and as many fresh random
hashes (which mostly find nothing, the common case).

The baseline is the same search done by brute force over a numpy ``uint64`` array: XOR
with the query, popcount (``np.bitwise_count``), threshold, then the same (key, distance)
list sorted the same way. Both are timed over the same queries, alternately, best of
``--repeat`` passes; the recall (share of the brute-force hits the index returned) must be
1.0, and the script exits with status 1 when any query's answers differ.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from proxy.duplicates.index import DuplicateIndex  # noqa: E402

Hits = list[tuple[str, int]]


class BruteForce:
    """Every hash in one array: the search the index has to beat."""

    def __init__(self, keys: list[str], hashes: list[int], max_distance: int) -> None:
        self.keys = np.array(keys, dtype=object)
        self.hashes: npt.NDArray[np.uint64] = np.array(hashes, dtype=np.uint64)
        self.max_distance = max_distance

    def near(self, phash: int) -> Hits:
        distances = np.bitwise_count(self.hashes ^ np.uint64(phash))
        found = np.flatnonzero(distances <= self.max_distance)
        hits = zip(self.keys[found].tolist(), distances[found].tolist(), strict=True)
        return sorted(hits, key=lambda hit: (hit[1], hit[0]))


def flip(value: int, count: int, rng: random.Random) -> int:
    for position in rng.sample(range(64), count):
        value ^= 1 << position
    return value


def library(
    n: int, centres: int, distance: int, rng: random.Random
) -> tuple[dict[str, int], list[int]]:
    hashes = {f"r{i}": rng.getrandbits(64) for i in range(n)}
    middles = [rng.getrandbits(64) for _ in range(centres)]
    for c, centre in enumerate(middles):
        for d in range(distance + 2):
            hashes[f"c{c}-d{d}"] = flip(centre, d, rng)
    return hashes, middles


def best_pass(search: Callable[[int], Hits], queries: list[int]) -> tuple[float, list[Hits]]:
    start = time.perf_counter()
    answers = [search(q) for q in queries]
    return time.perf_counter() - start, answers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="random hashes in the library")
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--distance", type=int, default=6, help="near-duplicate radius r")
    parser.add_argument("--repeat", type=int, default=3, help="passes; the best is kept")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if not hasattr(np, "bitwise_count"):
        print("numpy >= 2 is needed for the brute-force baseline (np.bitwise_count)")
        return 2

    rng = random.Random(args.seed)
    hashes, centres = library(args.n, args.queries // 2, args.distance, rng)
    queries = centres + [rng.getrandbits(64) for _ in range(args.queries - len(centres))]
    rng.shuffle(queries)
    keys = list(hashes)

    index = DuplicateIndex(args.distance)
    start = time.perf_counter()
    for key in tqdm(keys, desc="add", unit="hash", unit_scale=True, leave=False):
        index.add(key, hashes[key])
    load_s = time.perf_counter() - start
    brute = BruteForce(keys, [hashes[key] for key in keys], args.distance)

    best_index = best_brute = float("inf")
    answers_index: list[Hits] = []
    answers_brute: list[Hits] = []
    for _ in tqdm(range(args.repeat), desc="passes", leave=False):
        seconds, answers_index = best_pass(index.near, queries)
        best_index = min(best_index, seconds)
        seconds, answers_brute = best_pass(brute.near, queries)
        best_brute = min(best_brute, seconds)

    expected = sum(len(hits) for hits in answers_brute)
    found = sum(
        len(set(got) & set(want)) for got, want in zip(answers_index, answers_brute, strict=True)
    )
    differing = sum(got != want for got, want in zip(answers_index, answers_brute, strict=True))
    recall = found / expected if expected else 1.0
    per_query = 1e6 / len(queries)

    print(f"library: {len(hashes):,} hashes ({args.n:,} random + planted), r = {args.distance}")
    print(f"load (one add at a time): {load_s:.2f} s, {1e6 * load_s / len(hashes):.1f} us/hash")
    print(f"queries: {len(queries):,}, hits: {expected:,}, best of {args.repeat} passes")
    print(f"index      : {best_index * per_query:8.1f} us/query  ({best_index:.3f} s)")
    print(f"brute force: {best_brute * per_query:8.1f} us/query  ({best_brute:.3f} s)")
    print(f"speed-up   : {best_brute / best_index:8.1f}x")
    print(f"recall     : {recall:.4f}  (queries whose answers differ: {differing})")
    return 0 if differing == 0 and recall == 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
