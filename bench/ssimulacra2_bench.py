#!/usr/bin/env python3
"""Time ``proxy.quality.ssimulacra2`` per megapixel on one core, with baselines in the same run.

It is a script, not a test. Run from the repository root:

    python3 bench/ssimulacra2_bench.py            # reference pairs + 6 large images
    python3 bench/ssimulacra2_bench.py --quick    # fewer images, one repeat
    python3 bench/ssimulacra2_bench.py --large 20 --repeat 5 --json /tmp/s2.json

What is timed: ``score(reference, distorted)`` on images already decoded into memory, i.e.
the sRGB -> linear conversion, every scale and the pooling; decoding is excluded (timed
separately as ``score_files`` for the comparison with the PyPI package, which only takes
paths). Each figure is the best of ``--repeat`` runs per pair, summed over the pairs and
divided by their megapixels. The process is pinned to one CPU and libvips, OpenBLAS and
OpenMP are limited to one thread before they are imported. libvips' operation cache is
off, so a repeat cannot reuse the previous run's work.

Baselines, measured in the same run on the same pairs:
- ``pypi``: the ``ssimulacra2`` package (pure numpy/scipy, float64), when installed
  (``pip install ssimulacra2``), timed from files like our ``score_files``;
- ``all-exact``: this module with every map computed through its slow bit-exact path
  (the reference's float32 recursion emulated operation by operation).

Images: ``--data`` (default ``$LOUPE_SHARED_DIR`` or ``../shared``): the pairs listed in
``reference/ssimulacra2/scores.json`` and ``data/wikipedia/*.png`` re-encoded as JPEG q=50.
"""

from __future__ import annotations

import os

for _var in ("VIPS_CONCURRENCY", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import pyvips  # noqa: E402

from proxy.quality import ssimulacra2  # noqa: E402

GOAL_MS_PER_MP = 150.0


@dataclass
class Pair:
    name: str
    reference: pyvips.Image
    distorted: pyvips.Image
    ref_path: Path
    dist_path: Path
    expected: float | None  # the C++ score, when known

    @property
    def megapixels(self) -> float:
        return int(self.reference.width) * int(self.reference.height) / 1e6


@dataclass
class Result:
    label: str
    seconds: float = 0.0
    megapixels: float = 0.0
    deltas: list[float] = field(default_factory=list)

    @property
    def ms_per_mp(self) -> float:
        return 1000.0 * self.seconds / self.megapixels if self.megapixels else float("nan")


def best_of(repeat: int, fn: Callable[[], float]) -> tuple[float, float]:
    """(best wall time, value) over ``repeat`` runs."""
    best, value = float("inf"), float("nan")
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, value


def load(path: Path) -> pyvips.Image:
    return pyvips.Image.new_from_file(str(path)).copy_memory()


def reference_pairs(shared: Path, limit: int | None) -> list[Pair]:
    folder = shared / "reference" / "ssimulacra2"
    table_path = folder / "scores.json"
    if not table_path.is_file():
        print(f"(no reference pairs: {table_path} not found)")
        return []
    table = json.loads(table_path.read_text())
    names = sorted(table)[:limit]
    return [
        Pair(
            name,
            load(folder / table[name]["reference"]),
            load(folder / name),
            folder / table[name]["reference"],
            folder / name,
            float(table[name]["ssimulacra2"]),
        )
        for name in names
    ]


def large_pairs(shared: Path, count: int, scratch: Path) -> list[Pair]:
    sources = sorted((shared / "data" / "wikipedia").glob("*.png"))[:count]
    pairs = []
    for src in sources:
        reference = load(src)
        if reference.hasalpha():
            reference = reference.flatten(background=[255, 255, 255])
        reference = reference.colourspace("srgb").cast("uchar").copy_memory()
        distorted = pyvips.Image.new_from_buffer(reference.jpegsave_buffer(Q=50), "")
        ref_path, dist_path = scratch / f"{src.stem}.png", scratch / f"{src.stem}_q50.png"
        reference.write_to_file(str(ref_path))
        distorted.write_to_file(str(dist_path))  # lossless: both tools read the same pixels
        pairs.append(Pair(src.name, reference, load(dist_path), ref_path, dist_path, None))
    return pairs


def all_exact(pair: Pair) -> float:
    lin1 = ssimulacra2._linear(ssimulacra2._prepare(pair.reference), None)
    lin2 = ssimulacra2._linear(ssimulacra2._prepare(pair.distorted), None)
    return ssimulacra2._score_linear(lin1, lin2, min_weight=0.0, exact_scale=0, exact_weight=0.0)


def run(
    label: str, pairs: list[Pair], repeat: int, fn: Callable[[Pair], float], verbose: bool
) -> Result:
    result = Result(label)
    for pair in pairs:
        seconds, value = best_of(repeat, lambda p=pair: fn(p))  # type: ignore[misc]
        result.seconds += seconds
        result.megapixels += pair.megapixels
        if pair.expected is not None:
            result.deltas.append(value - pair.expected)
        if verbose:
            print(f"    {label:10s} {pair.name:28s} {seconds * 1000:8.1f} ms  score {value:8.4f}")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_shared = os.environ.get("LOUPE_SHARED_DIR", str(REPO.parent / "shared"))
    parser.add_argument("--data", default=default_shared, help="the shared folder")
    parser.add_argument("--large", type=int, default=6, help="wikipedia images (0: none)")
    parser.add_argument("--pairs", type=int, default=None, help="limit the reference pairs")
    parser.add_argument("--repeat", type=int, default=3, help="runs per pair, best kept")
    parser.add_argument("--no-baseline", action="store_true", help="skip the slow baselines")
    parser.add_argument("--quick", action="store_true", help="8 pairs, 2 large, 1 repeat")
    parser.add_argument("--verbose", action="store_true", help="print every pair")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    if args.quick:
        args.pairs, args.large, args.repeat = 8, 2, 1

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    pyvips.cache_set_max(0)
    shared = Path(args.data)
    try:  # the PyPI package of the same name, when installed
        pypi_score = importlib.import_module("ssimulacra2").compute_ssimulacra2
    except ImportError:
        pypi_score = None

    figures: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="s2bench-") as tmp:
        sets = {
            "reference pairs": reference_pairs(shared, args.pairs),
            f"wikipedia q50 x{args.large}": large_pairs(shared, args.large, Path(tmp)),
        }
        for set_name, pairs in sets.items():
            if not pairs:
                continue
            mp = sum(p.megapixels for p in pairs)
            print(f"\n== {set_name}: {len(pairs)} pairs, {mp:.2f} MP, best of {args.repeat}")
            results = [
                run(
                    "score",
                    pairs,
                    args.repeat,
                    lambda p: ssimulacra2.score(p.reference, p.distorted),
                    args.verbose,
                ),
                run(
                    "files",
                    pairs,
                    args.repeat,
                    lambda p: ssimulacra2.score_files(str(p.ref_path), str(p.dist_path)),
                    args.verbose,
                ),
            ]
            if not args.no_baseline:
                results.append(run("all-exact", pairs, 1, all_exact, args.verbose))
                if pypi_score is not None:
                    results.append(
                        run(
                            "pypi",
                            pairs,
                            1,
                            lambda p: float(pypi_score(str(p.ref_path), str(p.dist_path))),
                            args.verbose,
                        )
                    )
                else:
                    print("  (pypi baseline skipped: pip install ssimulacra2)")
            ours = results[0].ms_per_mp
            print(f"  {'':10s} {'ms/MP':>9s} {'x ours':>8s} {'max |d| vs C++':>15s}")
            for r in results:
                worst = max((abs(d) for d in r.deltas), default=float("nan"))
                print(f"  {r.label:10s} {r.ms_per_mp:9.1f} {r.ms_per_mp / ours:8.2f} {worst:15.4f}")
                figures[f"{set_name} / {r.label}"] = {
                    "ms_per_mp": r.ms_per_mp,
                    "max_abs_delta": worst,
                }
            verdict = "meets" if ours <= GOAL_MS_PER_MP else "MISSES"
            print(
                f"  score(): {ours:.1f} ms/MP on one core {verdict} the {GOAL_MS_PER_MP:.0f} goal"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
