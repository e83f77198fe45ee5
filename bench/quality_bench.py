#!/usr/bin/env python3
"""``q=auto`` against the best single fixed quality, on the same images, in one run.

    python3 bench/quality_bench.py             # 31 images at 800 px, about 1.5-2 minutes
    python3 bench/quality_bench.py --quick     # 10 images, under a minute, noisier
    python3 bench/quality_bench.py --replay replay.json --data ./images
        # the sources of the QA catches ``loupe feedback replay`` replayed, as the image set

For JPEG and WebP with the ``general`` policy (SSIMULACRA2 target 75) it measures:

(a) the **safe fixed quality**: the lowest single quality that keeps >= 95% of the images
    at or above the target, found by binary search over q = 1..100 with the real metric
    (every image encoded and scored at each probed quality, then q-1 checked to fail);
(b) the **bytes** of the real ``q=auto`` pipeline (``proxy.processing.pipeline.render``
    with ``RenderSettings`` built as ``proxy/server/app.py`` builds them, the committed
    predictor, no remembered decisions) against the same renders at the safe fixed
    quality; goal: >= 20% smaller for JPEG, >= 10% for WebP;
(c) the **encodes per answer** (``SearchResult.encodes``, i.e. ``X-Loupe-Encodes``):
    goal median <= 2.5;
(d) the **cold cost** of a ``q=auto`` render against a fixed-quality render of the same
    transform, nothing cached (fresh perceptual hash, no decisions), wall and CPU time,
    measured alternately in this run: goal total wall time <= 3x.

It prints a table per image, the totals, and PASS/FAIL per goal. The exit status is 0
whenever the run completes (read ``overall:``), 2 when the images are missing.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pyvips

from proxy.config import LimitsConfig
from proxy.fingerprint import phash
from proxy.model_files import find_model
from proxy.negotiate import parse_accept
from proxy.params import parse_params
from proxy.policies import DEFAULT_POLICIES
from proxy.processing.avif_effort import AvifEffort
from proxy.processing.compress import QualityTools
from proxy.processing.finalize import EncoderSettings, save_options
from proxy.processing.pipeline import Rendered, RenderSettings, render
from proxy.quality import ssimulacra2
from proxy.quality.decisions import QualityDecisions
from proxy.quality.predictor import QualityPredictor
from proxy.server.app import PREDICTOR_FILE, configure_process

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LOUPE_SHARED_DIR", REPO.parent / "shared"))
WIDTH = 800
POLICY = "general"
FORMATS = ("jpeg", "webp")
SAFE_SHARE = 0.95
GOAL_SAVING = {"jpeg": 0.20, "webp": 0.10}
GOAL_ENCODES = 2.5
GOAL_COST = 3.0
DEFAULT_IMAGES = (
    *(f"kodak/kodim{n:02d}.png" for n in (1, 2, 3, 6, 7, 8, 9, 11, 12, 14, 16, 18, 19, 21, 24)),
    *(f"wikipedia/{n:03d}.png" for n in (1, 5, 8, 13, 17, 22, 25, 28, 33, 37, 42, 46, 49)),
    "skimage/astronaut.png",
    "skimage/coffee.png",
    "icinfo/flower_foveon.png",
)
QUICK_IMAGES = (
    "kodak/kodim01.png",
    "kodak/kodim03.png",
    "kodak/kodim08.png",
    "kodak/kodim12.png",
    "kodak/kodim21.png",
    "wikipedia/001.png",
    "wikipedia/013.png",
    "wikipedia/028.png",
    "wikipedia/042.png",
    "skimage/coffee.png",
)


# --------------------------------------------------------------------------------------
# The pipeline, as the server builds it.


class MetricClock:
    """SSIMULACRA2, timed: how much of a q=auto render the metric itself costs."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0

    def __call__(self, reference: pyvips.Image) -> Callable[[pyvips.Image], float]:
        prepared = ssimulacra2.Reference(reference)  # as the server's QualityTools does

        def measure(distorted: pyvips.Image) -> float:
            started = time.perf_counter()
            try:
                return prepared(distorted)
            finally:
                self.seconds += time.perf_counter() - started
                self.calls += 1

        return measure


METRIC = MetricClock()


def settings(predictor: QualityPredictor) -> RenderSettings:
    """``RenderSettings`` as ``create_app`` builds them with the default configuration,
    except: no decisions remembered (every q=auto answer searches), no phash memo, and the
    metric wrapped in a clock."""
    configure_process()
    policies = DEFAULT_POLICIES
    encoder = EncoderSettings(avif=AvifEffort.fixed(2))
    return RenderSettings(
        limits=LimitsConfig(),
        policies=policies,
        encoder=encoder,
        quality=QualityTools(
            metric=METRIC,
            predictor=predictor,
            decisions=QualityDecisions(None),
            policies=policies,
            encoder=encoder,
        ),
        fingerprint=phash,  # not memoised: every q=auto render pays for its hash (cold)
    )


def run_render(blob: bytes, query: str, conf: RenderSettings) -> Rendered:
    params = parse_params(query)
    return render(blob, params, parse_accept(None), conf, deadline=time.monotonic() + 120)


def timed(blob: bytes, query: str, conf: RenderSettings) -> tuple[Rendered, float, float]:
    """One render with its wall and CPU (this process, all threads) seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = run_render(blob, query, conf)
    return result, time.perf_counter() - wall, time.process_time() - cpu


# --------------------------------------------------------------------------------------
# (a) the safe fixed quality.


class Scores:
    """Memoised score of one image (its lossless rendering) at a quality, encoded with
    exactly the options ``finalize.save_options`` gives the pipeline."""

    def __init__(self, reference: pyvips.Image, fmt: str, encoder: EncoderSettings) -> None:
        self.reference = reference
        self.plan: Any = SimpleNamespace(format=fmt, lossless=False, quality=None)
        self.encoder = encoder
        self.memo: dict[int, float] = {}

    def at(self, quality: int) -> float:
        if quality not in self.memo:
            suffix, options = save_options(self.plan, self.encoder, quality)
            body = self.reference.write_to_buffer(suffix, **options)
            self.memo[quality] = ssimulacra2.score(
                self.reference, pyvips.Image.new_from_buffer(body, "")
            )
        return self.memo[quality]


def passing_share(curves: Sequence[Scores], quality: int, target: float) -> float:
    return sum(c.at(quality) >= target for c in curves) / len(curves)


def safe_fixed_quality(curves: Sequence[Scores], target: float) -> tuple[int, float]:
    """Lowest q with >= SAFE_SHARE of the images at or above the target (binary search on
    the share, which is near-monotonic in q; then stepped down while q-1 still passes)."""
    low, high = 1, 100
    if passing_share(curves, high, target) < SAFE_SHARE:
        return 100, passing_share(curves, 100, target)
    while low < high:
        middle = (low + high) // 2
        if passing_share(curves, middle, target) >= SAFE_SHARE:
            high = middle
        else:
            low = middle + 1
    while high > 1 and passing_share(curves, high - 1, target) >= SAFE_SHARE:
        high -= 1
    return high, passing_share(curves, high, target)


# --------------------------------------------------------------------------------------
# Main.


@dataclass
class Row:
    image: str
    fmt: str
    size: tuple[int, int]
    auto_quality: int | None
    auto_score: float | None
    auto_encodes: int | None
    auto_bytes: int
    fixed_bytes: int
    fixed_score: float
    auto_wall: float
    fixed_wall: float
    auto_cpu: float
    fixed_cpu: float
    held_out: bool
    notes: tuple[str, ...] = field(default_factory=tuple)
    auto_stages: dict[str, float] = field(default_factory=dict)
    fixed_stages: dict[str, float] = field(default_factory=dict)
    metric_seconds: float = 0.0


def load_train_module() -> ModuleType | None:
    """models/quality/train.py, for the held-out split (optional)."""
    path = REPO / "models" / "quality" / "train.py"
    spec = importlib.util.spec_from_file_location("loupe_quality_train", path)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        print(f"(held-out split unknown: {path} did not load: {exc})")
        sys.modules.pop(spec.name, None)
        return None
    return module


def held_out_groups(data: Path) -> set[str]:
    train = load_train_module()
    if train is None:
        return set()
    held: set[str] = train.split_groups(train.find_images(data, None), smoke=False)
    return held


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=SHARED / "data")
    parser.add_argument("--images", help="comma-separated paths under --data")
    parser.add_argument("--quick", action="store_true", help="10 images")
    parser.add_argument("--width", type=int, default=WIDTH)
    parser.add_argument("--verbose", action="store_true", help="a row per image")
    parser.add_argument(
        "--replay",
        type=Path,
        help="JSON of loupe feedback replay: its QA catches' sources (under --data) as images",
    )
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"quality_bench: images not found at {args.data} (set LOUPE_SHARED_DIR)")
        return 2
    names = (
        [n.strip() for n in args.images.split(",") if n.strip()]
        if args.images
        else list(QUICK_IMAGES if args.quick else DEFAULT_IMAGES)
    )
    if args.replay is not None:  # what QA caught in production: an extra evaluation set
        cases = json.loads(args.replay.read_text())["cases"]
        names = sorted({c["path"] for c in cases if c["component"] == "qa"})
    names = [n for n in names if (args.data / n).is_file()]
    if not names:
        print("quality_bench: none of the images exist")
        return 2
    started = time.monotonic()
    model = find_model(PREDICTOR_FILE, REPO / "models")
    predictor = QualityPredictor(model)
    conf = settings(predictor)
    policy = DEFAULT_POLICIES[POLICY]
    target = float(policy.target or 75)
    held = held_out_groups(args.data)
    print(
        f"quality_bench: {len(names)} images at {args.width} px wide, policy {POLICY} "
        f"(target {target:g}, floor {policy.min_quality}); predictor: "
        f"{model if predictor.available else 'unavailable: ' + predictor.reason}"
    )
    blobs = {n: (args.data / n).read_bytes() for n in names}
    # The lossless references: the pipeline's own PNG rendering of each transform.
    references: dict[str, pyvips.Image] = {}
    for name in names:
        png = run_render(blobs[name], f"w={args.width}&fm=png", conf)
        references[name] = pyvips.Image.new_from_buffer(png.body, "").copy_memory()

    report: dict[str, dict[str, Any]] = {}
    rows: list[Row] = []
    for fmt in FORMATS:
        phase = time.monotonic()
        curves = [Scores(references[n], fmt, conf.encoder) for n in names]
        safe, share = safe_fixed_quality(curves, target)
        probes = sum(len(c.memo) for c in curves)
        print(
            f"\n[{fmt}] (a) safe fixed quality {safe}: {share:.0%} of images >= {target:g} "
            f"({probes} encode+score probes, {time.monotonic() - phase:.0f} s)"
        )
        for name in names:
            query = f"w={args.width}&fm={fmt}&policy={POLICY}"
            blob = blobs[name]
            # Alternate the order per image so neither side always runs second.
            metric_before = METRIC.seconds
            if len(rows) % 2:
                fixed, fixed_wall, fixed_cpu = timed(blob, f"{query}&q={safe}", conf)
                auto, auto_wall, auto_cpu = timed(blob, query, conf)
            else:
                auto, auto_wall, auto_cpu = timed(blob, query, conf)
                fixed, fixed_wall, fixed_cpu = timed(blob, f"{query}&q={safe}", conf)
            metric_seconds = METRIC.seconds - metric_before
            plan = auto.plan
            group = name.rsplit(".", 1)[0]
            rows.append(
                Row(
                    image=name,
                    fmt=fmt,
                    size=(references[name].width, references[name].height),
                    auto_quality=plan.quality,
                    auto_score=plan.score,
                    auto_encodes=plan.encodes,
                    auto_bytes=len(auto.body),
                    fixed_bytes=len(fixed.body),
                    fixed_score=curves[names.index(name)].at(safe),
                    auto_wall=auto_wall,
                    fixed_wall=fixed_wall,
                    auto_cpu=auto_cpu,
                    fixed_cpu=fixed_cpu,
                    held_out=group in held,
                    notes=plan.notes,
                    auto_stages=dict(auto.timings),
                    fixed_stages=dict(fixed.timings),
                    metric_seconds=metric_seconds,
                )
            )
        mine = [r for r in rows if r.fmt == fmt]
        auto_bytes = sum(r.auto_bytes for r in mine)
        fixed_bytes = sum(r.fixed_bytes for r in mine)
        encodes = [r.auto_encodes for r in mine if r.auto_encodes is not None]
        missed = [r.image for r in mine if r.auto_score is None or r.auto_score < target]
        report[fmt] = {
            "safe": safe,
            "share": share,
            "auto_bytes": auto_bytes,
            "fixed_bytes": fixed_bytes,
            "saving": 1 - auto_bytes / fixed_bytes,
            "encodes_median": statistics.median(encodes) if encodes else float("nan"),
            "encodes_mean": statistics.fmean(encodes) if encodes else float("nan"),
            "encodes_held": [r.auto_encodes for r in mine if r.held_out],
            "auto_wall": sum(r.auto_wall for r in mine),
            "fixed_wall": sum(r.fixed_wall for r in mine),
            "auto_cpu": sum(r.auto_cpu for r in mine),
            "fixed_cpu": sum(r.fixed_cpu for r in mine),
            "ratio_median": statistics.median(r.auto_wall / r.fixed_wall for r in mine),
            "quality_mean": statistics.fmean(r.auto_quality or 0 for r in mine),
            "missed": missed,
            "notes": sorted({note for r in mine for note in r.notes}),
        }

    if args.verbose:
        print(
            f"\n{'image':<28}{'fm':<5}{'size':>9}{'q':>4}{'score':>7}{'enc':>4}"
            f"{'auto B':>9}{'fixed B':>9}{'fixed sc':>9}{'auto ms':>8}{'fixed ms':>9}"
        )
        for r in rows:
            print(
                f"{r.image + ('*' if r.held_out else ''):<28}{r.fmt:<5}"
                f"{r.size[0]:>4}x{r.size[1]:<4}{r.auto_quality or 0:>4}{r.auto_score or 0:>7.1f}"
                f"{r.auto_encodes if r.auto_encodes is not None else '-':>4}{r.auto_bytes:>9}"
                f"{r.fixed_bytes:>9}{r.fixed_score:>9.1f}{r.auto_wall * 1000:>8.0f}"
                f"{r.fixed_wall * 1000:>9.0f}"
            )
        print("(* = image held out from the predictor's training)")

    print("\nwhere the time goes, mean ms per render (pipeline stages; q=auto / fixed):")
    for fmt in FORMATS:
        mine = [r for r in rows if r.fmt == fmt]
        stages = list(mine[0].auto_stages)
        parts = [
            f"{stage} {statistics.fmean(r.auto_stages.get(stage, 0) for r in mine) * 1000:.0f}"
            f"/{statistics.fmean(r.fixed_stages.get(stage, 0) for r in mine) * 1000:.0f}"
            for stage in stages
        ]
        metric_ms = statistics.fmean(r.metric_seconds for r in mine) * 1000
        print(f"  {fmt}: " + ", ".join(parts) + f"; of which SSIMULACRA2 {metric_ms:.0f}")

    print(f"\n{'':<34}" + "".join(f"{fmt:>14}" for fmt in FORMATS))

    def line(label: str, fn: Callable[[dict[str, Any]], str]) -> None:
        print(f"{label:<34}" + "".join(f"{fn(report[fmt]):>14}" for fmt in FORMATS))

    line("safe fixed quality (>=95% pass)", lambda r: f"q={r['safe']} ({r['share']:.0%})")
    line("q=auto mean quality", lambda r: f"{r['quality_mean']:.1f}")
    line("bytes at safe fixed q", lambda r: f"{r['fixed_bytes']:,}")
    line("bytes q=auto", lambda r: f"{r['auto_bytes']:,}")
    line("(b) q=auto saving", lambda r: f"{r['saving']:.1%}")
    line("(c) encodes per answer, median", lambda r: f"{r['encodes_median']:.1f}")
    line("    encodes, mean", lambda r: f"{r['encodes_mean']:.2f}")
    line(
        "    encodes, held-out images",
        lambda r: (
            f"{statistics.fmean(r['encodes_held']):.2f} (n={len(r['encodes_held'])})"
            if r["encodes_held"]
            else "-"
        ),
    )
    line("wall s, fixed / q=auto", lambda r: f"{r['fixed_wall']:.2f}/{r['auto_wall']:.2f}")
    line("cpu s, fixed / q=auto", lambda r: f"{r['fixed_cpu']:.2f}/{r['auto_cpu']:.2f}")
    line("(d) cold cost q=auto/fixed, wall", lambda r: f"{r['auto_wall'] / r['fixed_wall']:.2f}x")
    line("    cpu", lambda r: f"{r['auto_cpu'] / max(r['fixed_cpu'], 1e-9):.2f}x")
    line("    per-image median, wall", lambda r: f"{r['ratio_median']:.2f}x")
    line("q=auto answers below target", lambda r: str(len(r["missed"])))

    verdicts = []
    print()
    for fmt in FORMATS:
        r = report[fmt]
        verdicts.append(
            (f"(b) {fmt} q=auto bytes >= {GOAL_SAVING[fmt]:.0%} smaller than safe fixed q",
             r["saving"] >= GOAL_SAVING[fmt], f"{r['saving']:.1%}")
        )  # fmt: skip
    encodes_all = [r.auto_encodes for r in rows if r.auto_encodes is not None]
    median_all = statistics.median(encodes_all) if encodes_all else float("nan")
    verdicts.append(
        (f"(c) median encodes per answer <= {GOAL_ENCODES}", median_all <= GOAL_ENCODES,
         f"{median_all:.1f}")
    )  # fmt: skip
    auto_wall = sum(r.auto_wall for r in rows)
    fixed_wall = sum(r.fixed_wall for r in rows)
    cost = auto_wall / fixed_wall
    verdicts.append(
        (f"(d) cold q=auto cost <= {GOAL_COST:g}x a fixed-quality render (wall)",
         cost <= GOAL_COST, f"{cost:.2f}x")
    )  # fmt: skip
    missed = [f"{r.image}:{r.fmt}" for r in rows if r.auto_score is None or r.auto_score < target]
    verdicts.append(("every q=auto answer meets the target", not missed, ", ".join(missed) or "ok"))
    for label, ok, value in verdicts:
        print(f"{'PASS' if ok else 'FAIL'}  {label}: {value}")
    overall = all(ok for _, ok, _ in verdicts)
    print(f"overall: {'PASS' if overall else 'FAIL'} ({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
