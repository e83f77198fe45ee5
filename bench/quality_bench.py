#!/usr/bin/env python3
"""``q=auto`` as issue #14 designed it, against the best single fixed quality, in one run.

    python3 bench/quality_bench.py             # 31 images at 800 px, several minutes
    python3 bench/quality_bench.py --quick     # 10 images, about 2 minutes, noisier
    python3 bench/quality_bench.py --images kodak/kodim01.png,kodak/kodim03.png
    python3 bench/quality_bench.py --replay replay.json --data ./images
        # the sources of the QA catches ``loupe feedback replay`` replayed, as the image set

For JPEG and WebP with the ``general`` policy (SSIMULACRA2 target 75), and AVIF against
WebP, with the real pipeline (``proxy.processing.pipeline.render``, ``RenderSettings`` as
``proxy.rendering.build_rendering`` builds them, the committed predictor and its
calibrated margin, a fresh perceptual hash per render, no decision known at the start):

(a) the **safe fixed quality**: the lowest single quality that keeps >= 95% of the images
    at or above the target (binary search over q = 1..100 with the real metric);
(b) the **first answer** (the request path: predicted quality + margin, one encode) against
    a render at the safe fixed quality of the same transform, wall time, alternating which
    runs first: goal <= 1.3x; and its score (re-measured here): goal >= 90% at >= target-2;
(c) the **final answer**: the lane's verification (``QualityTools.verify``: the search and
    the decision), then the request path again (final: one encode at the verified quality):
    goal >= 95% meet the target; bytes >= 20% (JPEG) / >= 10% (WebP) under the safe fixed
    quality; final AVIF >= 15% under final WebP;
(d) **retraining** (``quality.training.retrain``) on the pairs the verifications measured,
    plus the shipped rows: the held-out MAE before and after.

It prints the totals and PASS/FAIL per goal. The exit status is 0 whenever the run
completes (read ``overall:``), 2 when the images are missing.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pyvips

from proxy.config import ImagesConfig, LimitsConfig
from proxy.fingerprint import phash
from proxy.model_files import find_model
from proxy.negotiate import parse_accept
from proxy.params import parse_params
from proxy.policies import DEFAULT_POLICIES
from proxy.processing.avif_effort import AvifEffort
from proxy.processing.compress import QualityTools
from proxy.processing.finalize import EncoderSettings, save_options
from proxy.processing.pipeline import RenderSettings, render
from proxy.processing.rendered import Rendered
from proxy.quality import ssimulacra2, training
from proxy.quality.decisions import QualityDecisions
from proxy.quality.predictor import QualityPredictor
from proxy.rendering import PREDICTOR_FILE
from proxy.runtime import configure_process

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LOUPE_SHARED_DIR", REPO.parent / "shared"))
WIDTH = 800
POLICY = "general"
FORMATS = ("jpeg", "webp")
SAFE_SHARE = 0.95
GOAL_SAVING = {"jpeg": 0.20, "webp": 0.10}
GOAL_AVIF_UNDER_WEBP = 0.15
GOAL_FIRST_COST = 1.3
GOAL_FIRST_NEAR = 0.90  # first answers at >= target - 2
GOAL_FINAL_MEET = 0.95
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


def settings(predictor: QualityPredictor, decisions: QualityDecisions) -> RenderSettings:
    """``RenderSettings`` as ``build_rendering`` builds them with the default configuration,
    except: decisions in a folder of this run only (no store), no phash memo (every render
    pays for its hash: cold), a fixed AVIF effort, and the metric wrapped in a clock."""
    configure_process()
    policies = DEFAULT_POLICIES
    encoder = EncoderSettings(avif=AvifEffort.fixed(2))
    images = ImagesConfig()
    return RenderSettings(
        limits=LimitsConfig(),
        policies=policies,
        encoder=encoder,
        quality=QualityTools(
            metric=METRIC,
            predictor=predictor,
            decisions=decisions,
            policies=policies,
            encoder=encoder,
            fixed_above_pixels=images.fixed_quality_above_pixels,
            avif_s_per_mp=images.avif_time_budget_s,
            avif_first_answer_s=images.avif_first_answer_s,
        ),
        fingerprint=phash,  # not memoised: every q=auto render pays for its hash (cold)
    )


def verifying(conf: RenderSettings) -> RenderSettings:
    assert conf.quality is not None
    return replace(conf, quality=replace(conf.quality, verify=True))


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
        self.plan: Any = SimpleNamespace(
            format=fmt, lossless=False, quality=None, progressive=False
        )
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
    first_quality: int | None
    first_score: float
    first_bytes: int
    first_wall: float
    fixed_wall: float
    fixed_bytes: int
    final_quality: int | None
    final_score: float
    final_bytes: int
    final_stage: str
    verify_encodes: int | None
    held_out: bool
    notes: tuple[str, ...] = field(default_factory=tuple)


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


def score_of(reference: pyvips.Image, body: bytes) -> float:
    return float(ssimulacra2.score(reference, pyvips.Image.new_from_buffer(body, "")))


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
    workdir = Path(tempfile.mkdtemp(prefix="loupe-quality-bench-"))
    decisions = QualityDecisions(workdir / "decisions")
    conf = settings(predictor, decisions)
    verify_conf = verifying(conf)
    policy = DEFAULT_POLICIES[POLICY]
    target = float(policy.target or 75)
    held = held_out_groups(args.data)
    margins = predictor.calibration.margins if predictor.calibration else "default"
    print(
        f"quality_bench: {len(names)} images at {args.width} px wide, policy {POLICY} "
        f"(target {target:g}, floor {policy.min_quality}); predictor: "
        f"{model if predictor.available else 'unavailable: ' + predictor.reason}; "
        f"margins {margins}"
    )
    blobs = {n: (args.data / n).read_bytes() for n in names}
    references: dict[str, pyvips.Image] = {}
    for name in names:
        png = run_render(blobs[name], f"w={args.width}&fm=png", conf)
        references[name] = pyvips.Image.new_from_buffer(png.body, "").copy_memory()

    report: dict[str, dict[str, Any]] = {}
    rows: list[Row] = []
    pairs: list[tuple[str, Sequence[float], str, float, int]] = []
    for fmt in (*FORMATS, "avif"):
        phase = time.monotonic()
        safe: int | None = None
        share = float("nan")
        if fmt in FORMATS:
            curves = [Scores(references[n], fmt, conf.encoder) for n in names]
            safe, share = safe_fixed_quality(curves, target)
            print(
                f"\n[{fmt}] (a) safe fixed quality {safe}: {share:.0%} of images >= {target:g} "
                f"({sum(len(c.memo) for c in curves)} probes, {time.monotonic() - phase:.0f} s)"
            )
        fixed_q = safe if safe is not None else policy.quality_for(fmt)
        for name in names:
            query = f"w={args.width}&fm={fmt}&policy={POLICY}"
            blob = blobs[name]
            if len(rows) % 2:  # alternate which side runs first
                fixed, fixed_wall, _ = timed(blob, f"{query}&q={fixed_q}", conf)
                first, first_wall, _ = timed(blob, query, conf)
            else:
                first, first_wall, _ = timed(blob, query, conf)
                fixed, fixed_wall, _ = timed(blob, f"{query}&q={fixed_q}", conf)
            measured = run_render(blob, query, verify_conf)  # the lane's verify job
            final = run_render(blob, query, conf)  # the request path once verified
            phash = measured.plan.phash
            if phash and measured.features and measured.quality and (measured.score or 0) >= target:
                pairs.append((phash, measured.features, fmt, target, measured.quality))
            reference = references[name]
            rows.append(
                Row(
                    image=name,
                    fmt=fmt,
                    first_quality=first.quality,
                    first_score=score_of(reference, first.body),
                    first_bytes=len(first.body),
                    first_wall=first_wall,
                    fixed_wall=fixed_wall,
                    fixed_bytes=len(fixed.body),
                    final_quality=final.quality,
                    final_score=score_of(reference, final.body),
                    final_bytes=len(final.body),
                    final_stage=final.stage,
                    verify_encodes=measured.encodes,
                    held_out=name.rsplit(".", 1)[0] in held,
                    notes=first.notes,
                )
            )
        mine = [r for r in rows if r.fmt == fmt]
        report[fmt] = {
            "safe": safe,
            "share": share,
            "fixed_bytes": sum(r.fixed_bytes for r in mine),
            "first_bytes": sum(r.first_bytes for r in mine),
            "final_bytes": sum(r.final_bytes for r in mine),
            "first_wall": sum(r.first_wall for r in mine),
            "fixed_wall": sum(r.fixed_wall for r in mine),
            "first_near": statistics.fmean(r.first_score >= target - 2 for r in mine),
            "first_meet": statistics.fmean(r.first_score >= target for r in mine),
            "final_meet": statistics.fmean(r.final_score >= target for r in mine),
            "final_final": all(r.final_stage == "final" for r in mine),
            "first_q": statistics.fmean(r.first_quality or 0 for r in mine),
            "final_q": statistics.fmean(r.final_quality or 0 for r in mine),
            "encodes": statistics.fmean(r.verify_encodes or 0 for r in mine),
            "seconds": time.monotonic() - phase,
        }
        print(f"[{fmt}] {len(mine)} images: first answers, verifications and finals in "
              f"{report[fmt]['seconds']:.0f} s")  # fmt: skip

    if args.verbose:
        print(f"\n{'image':<28}{'fm':<5}{'q1':>4}{'sc1':>6}{'B1':>8}{'ms1':>6}{'msfx':>6}"
              f"{'qF':>4}{'scF':>6}{'BF':>8}{'Bfix':>8}")  # fmt: skip
        for r in rows:
            print(f"{r.image + ('*' if r.held_out else ''):<28}{r.fmt:<5}"
                  f"{r.first_quality or 0:>4}{r.first_score:>6.1f}{r.first_bytes:>8}"
                  f"{r.first_wall * 1000:>6.0f}{r.fixed_wall * 1000:>6.0f}"
                  f"{r.final_quality or 0:>4}{r.final_score:>6.1f}{r.final_bytes:>8}"
                  f"{r.fixed_bytes:>8}")  # fmt: skip
        print("(* = image held out from the predictor's training)")

    fmts = (*FORMATS, "avif")
    print(f"\n{'':<40}" + "".join(f"{fmt:>14}" for fmt in fmts))

    def line(label: str, fn: Callable[[dict[str, Any]], str]) -> None:
        print(f"{label:<40}" + "".join(f"{fn(report[fmt]):>14}" for fmt in fmts))

    line("safe fixed quality (>=95% pass)",
         lambda r: f"q={r['safe']} ({r['share']:.0%})" if r["safe"] else "-")  # fmt: skip
    line("first answer mean quality", lambda r: f"{r['first_q']:.1f}")
    line("final answer mean quality", lambda r: f"{r['final_q']:.1f}")
    line("bytes at safe fixed q", lambda r: f"{r['fixed_bytes']:,}" if r["safe"] else "-")
    line(
        "bytes first / final", lambda r: f"{r['first_bytes'] // 1000}k/{r['final_bytes'] // 1000}k"
    )
    line("wall s, fixed / first answer", lambda r: f"{r['fixed_wall']:.2f}/{r['first_wall']:.2f}")
    line("first answers >= target-2 / >= target",
         lambda r: f"{r['first_near']:.0%}/{r['first_meet']:.0%}")  # fmt: skip
    line("final answers >= target", lambda r: f"{r['final_meet']:.0%}")
    line("verification encodes, mean", lambda r: f"{r['encodes']:.2f}")

    verdicts: list[tuple[str, bool, str]] = []
    for fmt in FORMATS:
        r = report[fmt]
        cost = r["first_wall"] / r["fixed_wall"]
        verdicts.append((f"cold q=auto fm={fmt} first answer <= {GOAL_FIRST_COST}x the fixed "
                         "quality (wall)", cost <= GOAL_FIRST_COST, f"{cost:.2f}x"))  # fmt: skip
    for fmt in fmts:
        r = report[fmt]
        verdicts.append((f"{fmt} first answers >= {GOAL_FIRST_NEAR:.0%} at >= target-2",
                         r["first_near"] >= GOAL_FIRST_NEAR, f"{r['first_near']:.0%}"))  # fmt: skip
        verdicts.append((f"{fmt} final answers >= {GOAL_FINAL_MEET:.0%} meet the target",
                         r["final_meet"] >= GOAL_FINAL_MEET and r["final_final"],
                         f"{r['final_meet']:.0%}"))  # fmt: skip
    for fmt in FORMATS:
        r = report[fmt]
        saving = 1 - r["final_bytes"] / r["fixed_bytes"]
        verdicts.append((f"{fmt} final bytes >= {GOAL_SAVING[fmt]:.0%} under safe fixed q",
                         saving >= GOAL_SAVING[fmt], f"{saving:.1%}"))  # fmt: skip
    avif_saving = 1 - report["avif"]["final_bytes"] / report["webp"]["final_bytes"]
    verdicts.append((f"final AVIF >= {GOAL_AVIF_UNDER_WEBP:.0%} under final WebP",
                     avif_saving >= GOAL_AVIF_UNDER_WEBP, f"{avif_saving:.1%}"))  # fmt: skip

    # (d) retraining on the verified pairs of this run.
    shipped = find_model(training.DATASET_FILE, REPO / "models")
    if shipped is None or model is None:
        verdicts.append(("retraining lowers the held-out MAE", False, "no shipped rows/model"))
    else:
        try:
            outcome = training.retrain(
                model,
                predictor.calibration,
                training.load_shipped(shipped),
                training.verified_rows(pairs),
                workdir / "retrained" / "quality_predictor.onnx",
            )
            b, a = outcome.before, outcome.after
            print(f"\nretraining on {outcome.verified} verified pairs of this run + the shipped "
                  f"rows ({outcome.rows} in all): held-out MAE {b.mae:.2f} -> {a.mae:.2f} "
                  f"(all held-out rows), {b.mae_verified or 0:.2f} -> {a.mae_verified or 0:.2f} "
                  f"(this run's {b.verified_rows} held-out pairs); miss {b.miss_rate:.1%} -> "
                  f"{a.miss_rate:.1%}; {outcome.reason}")  # fmt: skip
            verdicts.append(("retraining on the verified pairs lowers the held-out MAE "
                             f"({'their own' if b.verified_rows >= 10 else 'all'} held-out rows)",
                             a.judged < b.judged, f"{b.judged:.2f} -> {a.judged:.2f}"))  # fmt: skip
        except training.TrainingUnavailable as exc:
            verdicts.append(("retraining lowers the held-out MAE", False, str(exc)))
    print()
    for label, ok, value in verdicts:
        print(f"{'PASS' if ok else 'FAIL'}  {label}: {value}")
    overall = all(ok for _, ok, _ in verdicts)
    print(f"overall: {'PASS' if overall else 'FAIL'} ({time.monotonic() - started:.0f} s)")
    decisions.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
