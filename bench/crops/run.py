#!/usr/bin/env python3
"""Issues #5 and #16's crop evaluation: does ``crop=smart`` keep the people in the picture?

    python3 bench/crops/run.py                  # all labelled images, a few minutes
    python3 bench/crops/run.py --split tuning   # what tuning may look at (not held-out)
    python3 bench/crops/run.py --only kodim14   # one image
    python3 bench/crops/run.py --skip-timing    # crops and contact sheets only
    python3 bench/crops/run.py --timing-only    # the analysis timing only
    python3 bench/crops/run.py --replay replay.json --root ./images
        # the crop cases of ``loupe feedback replay`` (the humans' picks) as an extra set

Ground truth is ``faces.json`` next to this file: every face in the people images of the
shared data, boxed by hand (YuNet's detections checked by eye, its misses added), and
people whose face cannot be boxed (turned away, blurred, tiny) as ``person`` boxes; each
image has a class (portrait, group, apart, small, lying) and a split (tuning, held-out:
see the file's ``about`` and ``splits``). The labels are not the detector's, so a person
YuNet misses counts against ``smart``.

For each labelled image and each aspect (1:1, 4:5, 16:9, 9:16; 400 px on the long side)
it renders ``crop=smart``, ``center`` and ``attention`` through Loupe's real pipeline
(``proxy.processing.pipeline.render``, in-process, the analyzer configured as the server
configures it, disk cache included) and reads the source rect each render chose (what
``X-Loupe-Crop`` reports). Every (image, aspect) whose window really cuts the source
counts. A box is kept when >= 90% of it lies inside the rect; a crop *keeps the people*
when it keeps every box, or, when they cannot all fit a window of that size, as many as
the best window holds less at most one (and at least one). Goals: smart >= 95% on the
whole set and on its held-out part, no class below 90%; center and attention alongside.

It also times the analysis without saliency (thumbnail decode, phash, faces, content
class, text, person regions) on 1 MP JPEG versions of the images, one thread, against a
raw pyvips thumbnail of the same source in the same run (goal: <= 60 ms of CPU per source
megapixel; the ratio is printed), counts saliency runs while rendering every size and
aspect of a source (goal: <= 1), and writes contact sheets (``out/``, gitignored): per
image, one panel per aspect with the labelled boxes and the three strategies' rects. See
README.md here for the figures.

The exit status is 0 whenever the run completes (read ``overall:``), 2 for a setup
problem (labels, images or models missing).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pyvips

from proxy.analysis.analyzer import Analyzer, analysis_copy
from proxy.analysis.crops import candidates_for
from proxy.config import LimitsConfig, ServerConfig
from proxy.detectors.people import person_regions
from proxy.fingerprint import PhashMemo, phash
from proxy.geometry import Rect, Size
from proxy.negotiate import parse_accept
from proxy.params import parse_params
from proxy.policies import DEFAULT_POLICIES
from proxy.processing.avif_effort import AvifEffort
from proxy.processing.finalize import EncoderSettings
from proxy.processing.pipeline import RenderSettings, render
from proxy.processing.rendered import Rendered
from proxy.runtime import configure_process

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SHARED = Path(os.environ.get("LOUPE_SHARED_DIR", REPO.parent / "shared"))
LABELS = HERE / "faces.json"

ASPECTS = {"1:1": (1, 1), "4:5": (4, 5), "16:9": (16, 9), "9:16": (9, 16)}
LONG_SIDE = 400
EXTRA_LONG_SIDE = 800  # a second size of smart crops: the analysis must be reused
STRATEGIES = ("smart", "center", "attention")
KEEP_SHARE = 0.90  # a face is kept when this share of its box is inside the crop
MATCH_IOU = 0.3  # a YuNet box this close to a labelled face found it
GOAL_SMART = 0.95  # on the whole set, and on its held-out part
GOAL_CLASS = 0.90  # no class below this
CLASSES = ("portrait", "group", "apart", "small", "lying")
SPLITS = ("tuning", "held-out")
CENTER_BEFORE = 0.60  # what center kept when the issue was filed, for comparison
GOAL_ANALYSIS_MS = 60.0
TIMING_PIXELS = 1_000_000
TIMING_REPEATS = 5
# The timed analysis, as Analyzer._run does it: text and content share one text search.
COMPONENTS = ("thumbnail", "phash", "faces", "text+content", "people")

# Contact sheets: RGB colours and line widths (thick first, so identical rects stay
# visible as nested stripes).
COLOURS = {
    "attention": (255, 0, 255),
    "center": (0, 170, 255),
    "smart": (0, 220, 0),
    "face": (255, 230, 0),
    "face-missed": (255, 60, 0),
}
WIDTHS = {"attention": 9, "center": 6, "smart": 3}
PANEL = 520  # longest side of the source in one panel
PANEL_MIN_WIDTH = 640  # room for the three verdicts under a portrait source

T = TypeVar("T")


# --------------------------------------------------------------------------------------
# Labels and geometry.


@dataclass(frozen=True)
class Face:
    """A labelled box: a face, or a person whose face cannot be boxed (``kind``)."""

    x: float
    y: float
    w: float
    h: float
    source: str
    note: str = ""
    kind: str = "face"

    @property
    def area(self) -> float:
        return self.w * self.h


@dataclass(frozen=True)
class Labelled:
    name: str
    size: tuple[int, int]
    faces: tuple[Face, ...]
    klass: str = "portrait"  # CLASSES
    split: str = "tuning"  # SPLITS


def load_labels(path: Path) -> tuple[list[Labelled], dict[str, str]]:
    raw = json.loads(path.read_text())
    images = [
        Labelled(
            name,
            (entry["size"][0], entry["size"][1]),
            tuple(
                Face(
                    *(float(v) for v in face["box"]),
                    face["source"],
                    face.get("note", ""),
                    face.get("kind", "face"),
                )
                for face in entry["faces"]
            ),
            entry.get("class", "portrait"),
            entry.get("split", "tuning"),
        )
        for name, entry in raw["images"].items()
    ]
    return images, dict(raw.get("excluded", {}))


def clip(face: Face, width: int, height: int) -> Face:
    """The part of a box inside the source (a face cut by the frame counts by that part)."""
    x0, y0 = max(face.x, 0.0), max(face.y, 0.0)
    x1, y1 = min(face.x + face.w, float(width)), min(face.y + face.h, float(height))
    return Face(x0, y0, max(x1 - x0, 0.0), max(y1 - y0, 0.0), face.source, face.note, face.kind)


def share_inside(face: Face, rect: Rect) -> float:
    ox = min(face.x + face.w, rect.x + rect.w) - max(face.x, rect.x)
    oy = min(face.y + face.h, rect.y + rect.h) - max(face.y, rect.y)
    return max(ox, 0.0) * max(oy, 0.0) / face.area if face.area > 0 else 1.0


def union_size(faces: Sequence[Face]) -> tuple[float, float]:
    x0, y0 = min(f.x for f in faces), min(f.y for f in faces)
    x1, y1 = max(f.x + f.w for f in faces), max(f.y + f.h for f in faces)
    return x1 - x0, y1 - y0


def most_kept(faces: Sequence[Face], window: tuple[int, int], size: tuple[int, int]) -> int:
    """The most labelled boxes any window of this size keeps (every integer position)."""
    (ww, wh), (width, height) = window, size
    best = 0
    for y in range(height - wh + 1):
        for x in range(width - ww + 1):
            rect = Rect(x, y, ww, wh)
            best = max(best, sum(share_inside(f, rect) >= KEEP_SHARE for f in faces))
    return best


def output_size(aspect: tuple[int, int], long_side: int) -> tuple[int, int]:
    a, b = aspect
    if a >= b:
        return long_side, round(long_side * b / a)
    return round(long_side * a / b), long_side


def iou(a: Face, bx: float, by: float, bw: float, bh: float) -> float:
    ox = min(a.x + a.w, bx + bw) - max(a.x, bx)
    oy = min(a.y + a.h, by + bh) - max(a.y, by)
    inter = max(ox, 0.0) * max(oy, 0.0)
    union = a.area + bw * bh - inter
    return inter / union if union > 0 else 0.0


# --------------------------------------------------------------------------------------
# The pipeline, as the server builds it.


class SaliencyCounter:
    """Wraps the analyzer's saliency detector: the goal is one run per source, whatever
    sizes and aspects are asked for."""

    def __init__(self, analyzer: Analyzer) -> None:
        self.calls = 0
        detect = analyzer.saliency.detect

        def counted(image: pyvips.Image) -> Any:
            self.calls += 1
            return detect(image)

        analyzer.saliency.detect = counted  # type: ignore[method-assign]


def make_settings(analyzer: Analyzer, fingerprint: Callable[[bytes], str]) -> RenderSettings:
    """``RenderSettings`` as ``create_app`` builds them (default config), minus q=auto."""
    return RenderSettings(
        limits=LimitsConfig(),
        policies=DEFAULT_POLICIES,
        encoder=EncoderSettings(avif=AvifEffort.fixed(2)),
        analyzer=analyzer,
        fingerprint=fingerprint,
    )


def run_render(blob: bytes, query: str, conf: RenderSettings) -> Rendered:
    params = parse_params(query)
    return render(blob, params, parse_accept(None), conf, deadline=time.monotonic() + 120)


def crop_query(strategy: str, width: int, height: int) -> str:
    return f"w={width}&h={height}&fit=crop&crop={strategy}&fm=jpeg&q=80"


# --------------------------------------------------------------------------------------
# (1) crops.


@dataclass
class Crop:
    strategy: str  # asked for
    used: str  # what X-Loupe-Crop says placed it (smart falls back to attention)
    rect: Rect
    shares: tuple[float, ...]  # per labelled face, share inside the rect

    @property
    def keeps_all(self) -> bool:
        return all(s >= KEEP_SHARE for s in self.shares)

    @property
    def kept(self) -> int:
        return sum(s >= KEEP_SHARE for s in self.shares)


@dataclass
class Case:
    image: str
    aspect: str
    window: tuple[int, int]
    cuts: bool  # the window is smaller than the source
    fits: bool  # the union of the faces fits the window
    best: int = 0  # the most labelled boxes any window of this size keeps
    crops: dict[str, Crop] = field(default_factory=dict)
    reasons: tuple[str, ...] = ()  # of the chosen smart candidate
    klass: str = "portrait"
    split: str = "tuning"

    @property
    def eligible(self) -> bool:
        """Counted: the window really cuts the source."""
        return self.cuts

    @property
    def required(self) -> int:
        """Every box when they all fit; else as many as the best window holds, less at
        most one (and at least one when any window holds one)."""
        if self.fits:
            return len(self.crops["smart"].shares) if self.crops else 0
        return max(self.best - 1, min(self.best, 1))

    def keeps(self, strategy: str) -> bool:
        """Keeps the people: every box, or (when they cannot all fit) ``required`` of them."""
        crop = self.crops[strategy]
        return crop.keeps_all if self.fits else crop.kept >= self.required


@dataclass
class ImageResult:
    labelled: Labelled
    cases: list[Case]
    saliency_runs: int
    renders: int
    detected: list[tuple[float, float, float, float]]


def evaluate(
    item: Labelled, blob: bytes, conf: RenderSettings, counter: SaliencyCounter
) -> ImageResult:
    width, height = item.size
    faces = [clip(f, width, height) for f in item.faces]
    before = counter.calls
    cases: list[Case] = []
    detected: list[tuple[float, float, float, float]] = []
    renders = 0
    for aspect, ratio in ASPECTS.items():
        out_w, out_h = output_size(ratio, LONG_SIDE)
        case: Case | None = None
        for strategy in STRATEGIES:
            result = run_render(blob, crop_query(strategy, out_w, out_h), conf)
            renders += 1
            plan = result.plan
            if (plan.source.width, plan.source.height) != item.size:
                raise SystemExit(
                    f"{item.name}: faces.json says {item.size}, source is "
                    f"{plan.source.width}x{plan.source.height}"
                )
            rect = plan.crop.rect
            if case is None:
                uw, uh = union_size(faces)
                fits = uw <= rect.w and uh <= rect.h
                case = Case(
                    item.name,
                    aspect,
                    (rect.w, rect.h),
                    cuts=plan.layout.needs_window,
                    fits=fits,
                    best=len(faces) if fits else most_kept(faces, (rect.w, rect.h), item.size),
                    klass=item.klass,
                    split=item.split,
                )
            if strategy == "smart" and plan.analysis is not None:
                analysis = plan.analysis
                detected = [(f.x, f.y, f.w, f.h) for f in analysis.faces]
                if plan.layout.needs_window:
                    window = Size(rect.w, rect.h)
                    ranked = candidates_for(analysis, plan.layout.region, window)
                    chosen = [c for c in ranked if c.rect == rect]
                    case.reasons = chosen[0].reasons if chosen else ()
            if (rect.w, rect.h) != case.window:
                raise SystemExit(f"{item.name} {aspect}: {strategy} chose a {rect} window")
            shares = tuple(share_inside(f, rect) for f in faces)
            case.crops[strategy] = Crop(strategy, plan.crop.strategy, rect, shares)
        assert case is not None
        cases.append(case)
    # Another size of every aspect: only the analysis cache may answer it.
    for ratio in ASPECTS.values():
        out_w, out_h = output_size(ratio, EXTRA_LONG_SIDE)
        run_render(blob, crop_query("smart", out_w, out_h), conf)
        renders += 1
    return ImageResult(item, cases, counter.calls - before, renders, detected)


def concurrent_saliency_runs(blob: bytes, models: Path, cache: Path) -> tuple[int, int]:
    """The four smart aspects of one new source requested at once, through as many render
    threads as the server has: each request that starts before the first analysis is
    cached runs its own (the analyzer does not coalesce). Returns (runs, threads)."""
    threads = ServerConfig().render_threads
    analyzer = Analyzer(models, cache, PhashMemo())
    counter = SaliencyCounter(analyzer)
    conf = make_settings(analyzer, analyzer.fingerprint)
    queries = [crop_query("smart", *output_size(r, LONG_SIDE)) for r in ASPECTS.values()]
    try:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            for job in [pool.submit(run_render, blob, q, conf) for q in queries]:
                job.result()
    finally:
        analyzer.close()
    return counter.calls, threads


# --------------------------------------------------------------------------------------
# (2) analysis timing.


def one_megapixel(blob: bytes) -> bytes:
    """The source resized to about 1 MP, as a JPEG (q 90): the goal's reference input."""
    image = pyvips.Image.new_from_buffer(blob, "").autorot()
    scale = math.sqrt(TIMING_PIXELS / (image.width * image.height))
    image = image.resize(scale, kernel="lanczos3").colourspace("srgb")
    if image.hasalpha():
        image = image.flatten(background=[255, 255, 255])
    return bytes(image.cast("uchar").jpegsave_buffer(Q=90))


def clocked(fn: Callable[[], T]) -> tuple[T, float, float]:
    """Result, wall ms and CPU ms (the whole process: libvips' worker thread included)."""
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return value, (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


@dataclass
class Timing:
    wall: dict[str, list[float]] = field(default_factory=lambda: {c: [] for c in COMPONENTS})
    cpu: dict[str, list[float]] = field(default_factory=lambda: {c: [] for c in COMPONENTS})
    total_wall: list[float] = field(default_factory=list)
    total_cpu: list[float] = field(default_factory=list)
    saliency_wall: list[float] = field(default_factory=list)
    # The baseline of the same run: a raw pyvips thumbnail of the same source.
    baseline_cpu: list[float] = field(default_factory=list)
    baseline_wall: list[float] = field(default_factory=list)
    per_mp_cpu: list[float] = field(default_factory=list)  # analysis CPU ms / source MP
    ratio: list[float] = field(default_factory=list)  # analysis CPU / baseline CPU, per run
    pixels: list[int] = field(default_factory=list)


def raw_thumbnail(blob: bytes) -> bytes:
    """The baseline: what a plain resize request costs, a 400 px pyvips thumbnail saved as
    JPEG, with nothing of Loupe's around it."""
    return bytes(pyvips.Image.thumbnail_buffer(blob, LONG_SIDE, height=LONG_SIDE).jpegsave_buffer())


def time_analysis(blobs: Sequence[bytes], analyzer: Analyzer, repeats: int) -> Timing:
    """Each component of ``Analyzer._run`` but saliency, one after another on one thread
    (the analyzer overlaps faces and saliency on its pool; one core gets the sum)."""
    timing = Timing()
    previous = pyvips.concurrency_get()
    pyvips.concurrency_set(1)
    try:
        for blob in blobs:
            small = analysis_copy(blob).copy_memory()  # as the analyzer does
            head = pyvips.Image.new_from_buffer(blob, "")
            timing.pixels.append(head.width * head.height)
            _, wall, _ = clocked(lambda s=small: analyzer.saliency.detect(s))
            timing.saliency_wall.append(wall)
            salient = analyzer.saliency.detect(small)
            mask = salient.mask if salient is not None else np.zeros((1, 1), np.uint8)
            possible = analyzer.faces.detect_all(small).possible
            size = (small.width, small.height)
            steps: dict[str, Callable[[], object]] = {
                "thumbnail": lambda b=blob: analysis_copy(b).copy_memory(),
                "phash": lambda b=blob: phash(b),
                "faces": lambda s=small: analyzer.faces.detect_all(s),
                "text+content": lambda s=small: analyzer._text_and_content(s),
                # after saliency, from its mask: the person regions
                "people": partial(person_regions, mask, size, possible),
            }
            baseline = partial(raw_thumbnail, blob)
            baseline()
            for fn in steps.values():
                fn()  # warm: first-call costs (sessions, allocations) are not per source
            for _ in range(repeats):
                _, base_wall, base_cpu = clocked(baseline)
                timing.baseline_wall.append(base_wall)
                timing.baseline_cpu.append(base_cpu)
                wall_sum = cpu_sum = 0.0
                for name, fn in steps.items():
                    _, wall, cpu = clocked(fn)
                    timing.wall[name].append(wall)
                    timing.cpu[name].append(cpu)
                    wall_sum += wall
                    cpu_sum += cpu
                timing.total_wall.append(wall_sum)
                timing.total_cpu.append(cpu_sum)
                timing.per_mp_cpu.append(cpu_sum / (timing.pixels[-1] / 1e6))
                timing.ratio.append(cpu_sum / max(base_cpu, 1e-3))
    finally:
        pyvips.concurrency_set(previous)
    return timing


# --------------------------------------------------------------------------------------
# (3) contact sheets.


def text_mask(text: str, dpi: int = 80) -> pyvips.Image:
    return pyvips.Image.text(text, dpi=dpi, font="sans")


def put_text(
    canvas: pyvips.Image, text: str, x: int, y: int, colour: tuple[int, int, int], dpi: int = 80
) -> pyvips.Image:
    mask = text_mask(text, dpi)
    w, h = min(mask.width, canvas.width - x), min(mask.height, canvas.height - y)
    if w <= 0 or h <= 0:
        return canvas
    mask = mask.crop(0, 0, w, h)
    under = canvas.crop(x, y, w, h)
    painted = mask.ifthenelse(list(colour), under, blend=True)
    return canvas.insert(painted, x, y)


def frame(
    canvas: pyvips.Image, box: tuple[float, float, float, float], colour: Any, width: int
) -> pyvips.Image:
    """A rectangle outline ``width`` px thick, centred on the box's edge."""
    x, y, w, h = (round(v) for v in box)
    half = width // 2
    for k in range(-half, width - half):
        if w + 2 * k > 0 and h + 2 * k > 0:
            canvas = canvas.draw_rect(list(colour), x - k, y - k, w + 2 * k, h + 2 * k)
    return canvas


def verdict(case: Case, strategy: str) -> str:
    crop = case.crops[strategy]
    cut = sum(s < KEEP_SHARE for s in crop.shares)
    if case.fits:
        said = "keeps all" if crop.keeps_all else f"cuts {cut}"
    else:
        said = f"keeps {crop.kept}/{len(crop.shares)} (best {case.best})"
    if not case.eligible:
        return said
    return said.upper() if case.keeps(strategy) else f"MISS: {said}"


def panel(source: pyvips.Image, result: ImageResult, case: Case) -> pyvips.Image:
    scale = PANEL / max(source.width, source.height)
    image = source.resize(scale)
    pad = 12
    canvas = image.embed(
        pad,
        pad + 48,
        max(image.width + 2 * pad, PANEL_MIN_WIDTH),
        image.height + 2 * pad + 48,
        extend="background",
        background=[255, 255, 255],
    )

    def scaled(x: float, y: float, w: float, h: float) -> tuple[float, float, float, float]:
        return pad + x * scale, pad + 48 + y * scale, w * scale, h * scale

    for strategy in STRATEGIES[::-1]:  # attention (thickest) first
        r = case.crops[strategy].rect
        canvas = frame(canvas, scaled(r.x, r.y, r.w, r.h), COLOURS[strategy], WIDTHS[strategy])
    smart = case.crops["smart"]
    for face, share in zip(result.labelled.faces, smart.shares, strict=True):
        colour = COLOURS["face"] if share >= KEEP_SHARE else COLOURS["face-missed"]
        canvas = frame(canvas, scaled(face.x, face.y, face.w, face.h), colour, 2)
    status = "no cut" if not case.eligible else ("all fit" if case.fits else "not all fit")
    title = f"{case.aspect}   window {case.window[0]}x{case.window[1]}   {status}"
    canvas = put_text(canvas, title, pad, 4, (0, 0, 0), dpi=90)
    x = pad
    for strategy in STRATEGIES:
        crop = case.crops[strategy]
        used = "" if crop.used == strategy else f" (as {crop.used})"
        label = f"{strategy}{used}: {verdict(case, strategy)}"
        canvas = put_text(canvas, label, x, 26, COLOURS[strategy], dpi=80)
        x += text_mask(label).width + 18
    return canvas


def legend(width: int, title: str) -> pyvips.Image:
    canvas = pyvips.Image.black(width, 64, bands=3).new_from_image([255, 255, 255])
    canvas = put_text(canvas, title, 12, 6, (0, 0, 0), dpi=100)
    x = 12
    entries = [
        ("smart", "smart"),
        ("center", "center"),
        ("attention", "attention"),
        ("face", "labelled person kept by smart"),
        ("face-missed", "labelled person smart cuts"),
    ]
    for key, text in entries:
        canvas = canvas.draw_rect(list(COLOURS[key]), x, 38, 26, 14, fill=True)
        canvas = put_text(canvas, text, x + 32, 36, (0, 0, 0), dpi=80)
        x += 32 + text_mask(text).width + 24
    return canvas


def contact_sheet(blob: bytes, result: ImageResult, out: Path) -> Path:
    source = pyvips.Image.new_from_buffer(blob, "").autorot().colourspace("srgb")
    if source.hasalpha():
        source = source.flatten(background=[255, 255, 255])
    source = source.cast("uchar")
    panels = [panel(source, result, case) for case in result.cases]
    across = 4 if source.height > source.width else 2  # portrait panels side by side
    grid = pyvips.Image.arrayjoin(panels, across=across, shim=8, background=[255, 255, 255])
    item = result.labelled
    hand = sum(f.source == "hand-added" for f in item.faces)
    title = (
        f"{item.name} [{item.klass}, {item.split}]: {len(item.faces)} labelled people "
        f"({hand} hand-added), "
        f"YuNet found {len(result.detected)}"
    )
    sheet = legend(grid.width, title).join(grid, "vertical", background=[255, 255, 255])
    path = out / (item.name.replace("/", "_").rsplit(".", 1)[0] + ".png")
    sheet.write_to_file(str(path))
    return path


# --------------------------------------------------------------------------------------
# Report.


def pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "n/a"


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def share_line(label: str, cases: Sequence[Case], goal: float | None) -> tuple[str, bool]:
    """One row: each strategy's share of ``cases`` that keep the people, and the verdict."""
    cells = []
    for strategy in STRATEGIES:
        kept = sum(c.keeps(strategy) for c in cases)
        cells.append(f"{kept:>3}/{len(cases):<3} {pct(kept, len(cases)):>6}")
    smart = sum(c.keeps("smart") for c in cases) / len(cases) if cases else None
    if goal is None:
        verdict_text, ok = "", True
    elif smart is None:
        verdict_text, ok = "n/a (no labelled photos)", True
    else:
        ok = smart >= goal
        verdict_text = f"smart >= {goal:.0%}: {'PASS' if ok else 'FAIL'}"
    return f"  {label:<22} " + "  ".join(f"{c:<14}" for c in cells) + f"  {verdict_text}", ok


def report_crops(results: Sequence[ImageResult]) -> tuple[bool, dict[str, Any]]:
    print(
        "\nper image and aspect (K = keeps the people, . = misses; '-' = the window does not cut)"
    )
    print(
        f"{'image':<24} {'class':<8} {'split':<8} {'aspect':<5} {'window':>10}  {'people':<16} "
        f"{'smart':<6} {'center':<6} {'attn':<6} yunet/labels"
    )
    for result in results:
        for case in result.cases:
            if not case.eligible:
                status = "no cut"
            elif case.fits:
                status = "all fit"
            else:
                status = f"best window {case.best}/{len(result.labelled.faces)}"
            marks = []
            for strategy in STRATEGIES:
                crop = case.crops[strategy]
                mark = "K" if case.keeps(strategy) else "."
                if crop.used != strategy and case.cuts:
                    mark += f"({crop.used})"
                marks.append(mark if case.eligible else f"-{mark}")
            print(
                f"{case.image:<24} {case.klass:<8} {case.split:<8} {case.aspect:<5} "
                f"{case.window[0]:>5}x{case.window[1]:<4}  {status:<16} "
                f"{marks[0]:<6} {marks[1]:<6} {marks[2]:<6} "
                f"{len(result.detected)}/{len(result.labelled.faces)}"
            )

    eligible = [c for r in results for c in r.cases if c.eligible]
    print(
        f"\nkeeps the people (>= {KEEP_SHARE:.0%} of each labelled box inside; when they cannot "
        "all fit, as many as the best window holds, less at most one), over "
        f"{len(eligible)} (image, aspect) pairs that cut the source, of "
        f"{sum(len(r.cases) for r in results)}:"
    )
    print(f"  {'':<22} " + "  ".join(f"{s:<14}" for s in STRATEGIES))
    verdicts: list[bool] = []
    figures: dict[str, Any] = {"eligible": len(eligible)}
    for strategy in STRATEGIES:
        figures[strategy] = sum(c.keeps(strategy) for c in eligible)
    line, ok = share_line("all", eligible, GOAL_SMART)
    print(line)
    verdicts.append(ok and bool(eligible))
    for split in SPLITS:
        part = [c for c in eligible if c.split == split]
        figures[f"split:{split}"] = {s: sum(c.keeps(s) for c in part) for s in STRATEGIES}
        figures[f"split:{split}"]["pairs"] = len(part)
        line, ok = share_line(f"{split} part", part, GOAL_SMART if split == "held-out" else None)
        print(line)
        verdicts.append(ok)
    for klass in CLASSES:
        part = [c for c in eligible if c.klass == klass]
        figures[f"class:{klass}"] = {s: sum(c.keeps(s) for c in part) for s in STRATEGIES}
        figures[f"class:{klass}"]["pairs"] = len(part)
        images = len({c.image for c in part})
        line, ok = share_line(f"class {klass} ({images} img)", part, GOAL_CLASS)
        print(line)
        verdicts.append(ok)
    fit = [c for c in eligible if c.fits]
    line, _ = share_line("(info) all fit", fit, None)
    print(line)
    line, _ = share_line("(info) not all fit", [c for c in eligible if not c.fits], None)
    print(line)
    smart_ok = all(verdicts)
    print(f"  (comparison) center was about {CENTER_BEFORE:.0%} of the pairs when the goal was set")

    by_name = {r.labelled.name: r for r in results}

    def all_seen(case: Case) -> bool:
        result = by_name[case.image]
        return all(
            any(iou(face, *d) >= MATCH_IOU for d in result.detected)
            for face in result.labelled.faces
        )

    seen = [c for c in eligible if all_seen(c)]
    kept = sum(c.keeps("smart") for c in seen)
    figures["smart_where_yunet_found_all"] = [kept, len(seen)]
    print(
        f"  (info) smart where YuNet found every labelled box: {kept} / {len(seen)} "
        f"{pct(kept, len(seen))}; where it missed one: "
        f"{figures['smart'] - kept} / {len(eligible) - len(seen)}"
    )

    misses = [c for c in eligible if not c.keeps("smart")]
    if misses:
        print("\nsmart misses (pairs where it does not keep the people):")
    for case in misses:
        result = by_name[case.image]
        crop = case.crops["smart"]
        cut = []
        for face, share in zip(result.labelled.faces, crop.shares, strict=True):
            if share < KEEP_SHARE:
                found = any(iou(face, *d) >= MATCH_IOU for d in result.detected)
                label = "seen by YuNet" if found else "missed by YuNet"
                cut.append(
                    f"[{face.x:.0f},{face.y:.0f},{face.w:.0f},{face.h:.0f}] {face.kind} "
                    f"{share:.0%} inside, {face.source}, {label}"
                )
        r = crop.rect
        need = "all" if case.fits else f"{case.required} (best window {case.best})"
        print(
            f"  {case.image} {case.aspect} [{case.klass}, {case.split}]: rect {r.x},{r.y},{r.w},"
            f"{r.h} ({crop.used}) keeps {crop.kept}, needs {need}; "
            f"reasons: {'; '.join(case.reasons) or '-'}"
        )
        for line in cut:
            print(f"      cuts {line}")
    return smart_ok, figures


def report_timing(timing: Timing) -> bool:
    """The verdict is on CPU time: with one thread it is what one core spends, and unlike
    wall time it hardly moves when other processes share the machine."""
    runs = len(timing.total_cpu) // max(len(timing.pixels), 1)
    print(
        f"\nanalysis without saliency, 1 MP JPEG sources ({len(timing.pixels)} images x "
        f"{runs} runs), one thread (libvips concurrency 1, onnxruntime 1 thread):"
    )
    print(f"  {'component':<10} {'cpu median':>11} {'cpu p90':>8} {'wall median':>12}")
    for name in COMPONENTS:
        cpus = sorted(timing.cpu[name])
        p90 = cpus[int(0.9 * (len(cpus) - 1))] if cpus else float("nan")
        print(f"  {name:<10} {median(cpus):>11.1f} {p90:>8.1f} {median(timing.wall[name]):>12.1f}")
    cpu = median(timing.total_cpu)
    wall = median(timing.total_wall)
    totals = sorted(timing.total_cpu)
    p90 = totals[int(0.9 * (len(totals) - 1))] if totals else float("nan")
    print(f"  {'total':<10} {cpu:>11.1f} {p90:>8.1f} {wall:>12.1f}")
    base = median(timing.baseline_cpu)
    print(
        f"  {'baseline':<10} {base:>11.1f} {'':>8} {median(timing.baseline_wall):>12.1f}"
        "   (raw pyvips thumbnail of the same source: 400 px, JPEG)"
    )
    per_mp = median(timing.per_mp_cpu)
    ratio = median(timing.ratio)
    ok = per_mp <= GOAL_ANALYSIS_MS
    print(
        f"  analysis per source megapixel: {per_mp:.1f} ms CPU = {ratio:.2f} x the raw "
        "thumbnail of the same source, same run (median of per-run ratios)"
    )
    print(
        f"  goal: <= {GOAL_ANALYSIS_MS:.0f} ms per megapixel on one core: {per_mp:.1f} ms  "
        f"{'PASS' if ok else 'FAIL'}"
    )
    if cpu < 0.8 * wall:
        print(
            f"  note: wall time ({wall:.0f} ms) well above CPU time: other processes held the "
            "cores; rerun on an idle machine for wall figures"
        )
    print(f"  (info) saliency alone, once per image: {median(timing.saliency_wall):.0f} ms wall")
    return ok


def case_dict(result: ImageResult, case: Case) -> dict[str, Any]:
    def crop(c: Crop) -> dict[str, Any]:
        return {
            "rect": [c.rect.x, c.rect.y, c.rect.w, c.rect.h],
            "used": c.used,
            "keeps_all": c.keeps_all,
            "kept": c.kept,
            "shares": [round(v, 3) for v in c.shares],
        }

    return {
        "image": case.image,
        "aspect": case.aspect,
        "window": list(case.window),
        "eligible": case.eligible,
        "class": case.klass,
        "split": case.split,
        "fits": case.fits,
        "best": case.best,
        "required": case.required,
        **{f"{s}_keeps": case.keeps(s) for s in STRATEGIES},
        "yunet_faces": len(result.detected),
        **{s: crop(case.crops[s]) for s in STRATEGIES},
    }


def run_crops(
    images: Sequence[Labelled], blobs: dict[str, bytes], models: Path, cache: Path, out: Path
) -> tuple[bool, dict[str, Any]]:
    """Goals (1) and the saliency count; contact sheets into ``out``."""
    analyzer = Analyzer(models, cache / "analysis", PhashMemo())
    counter = SaliencyCounter(analyzer)
    conf = make_settings(analyzer, analyzer.fingerprint)
    results: list[ImageResult] = []
    try:
        for item in images:
            started = time.perf_counter()
            result = evaluate(item, blobs[item.name], conf, counter)
            results.append(result)
            sheet = contact_sheet(blobs[item.name], result, out)
            print(
                f"  {item.name:<24} {time.perf_counter() - started:5.1f} s  "
                f"saliency runs {result.saliency_runs} in {result.renders} renders  "
                f"-> {sheet.name}"
            )
    finally:
        analyzer.close()
    smart_ok, figures = report_crops(results)

    worst = max(r.saliency_runs for r in results)
    once = worst <= 1
    print(
        f"\nsaliency runs per source while rendering {2 * len(ASPECTS)} smart sizes and the "
        f"center/attention crops: max {worst} "
        f"({sum(r.saliency_runs for r in results)} over {len(results)} sources)  "
        f"{'PASS' if once else 'FAIL'}"
    )
    first = images[0].name
    racing, threads = concurrent_saliency_runs(blobs[first], models, cache / "race")
    print(
        f"  (info) {len(ASPECTS)} simultaneous smart requests for a new source ({first}), "
        f"{threads} render threads as in the server: {racing} saliency runs"
    )
    summary = {
        "crops": figures,
        "saliency_runs_max": worst,
        "saliency_runs_concurrent": racing,
        "cases": [case_dict(r, c) for r in results for c in r.cases],
    }
    return smart_ok and once, summary


def run_timing(
    images: Sequence[Labelled], blobs: dict[str, bytes], models: Path, repeats: int
) -> tuple[bool, dict[str, Any]]:
    analyzer = Analyzer(models, None, PhashMemo())
    try:
        sources = [one_megapixel(blobs[i.name]) for i in images]
        timing = time_analysis(sources, analyzer, max(1, repeats))
    finally:
        analyzer.close()
    ok = report_timing(timing)
    return ok, {
        "median_total_cpu": median(timing.total_cpu),
        "median_total_wall": median(timing.total_wall),
        **{f"median_{c}_cpu": median(timing.cpu[c]) for c in COMPONENTS},
        **{f"median_{c}_wall": median(timing.wall[c]) for c in COMPONENTS},
        "median_saliency_wall": median(timing.saliency_wall),
        "median_baseline_cpu": median(timing.baseline_cpu),
        "median_per_mp_cpu": median(timing.per_mp_cpu),
        "median_ratio_to_baseline": median(timing.ratio),
    }


def run_replay_cases(path: Path, root: Path, models: Path) -> int:
    """Humans' crop picks from ``loupe feedback replay`` as an evaluation set: does
    ``crop=smart``, rendered through the real pipeline, land within IoU 0.8 of each pick?"""
    from proxy.commands.replay import IOU_AGREES, iou

    cases = [c for c in json.loads(path.read_text())["cases"] if c["component"] == "crop"]
    configure_process()
    analyzer = Analyzer(models, None)
    conf = make_settings(analyzer, PhashMemo())
    agree, scored, rows = 0, 0, []
    try:
        for case in cases:
            source = root / case["path"]
            if not source.is_file():
                rows.append(f"  {case['path']}: missing under {root}")
                continue
            width, height = case["human"]["box"]
            rendered = run_render(source.read_bytes(), crop_query("smart", width, height), conf)
            rect = rendered.plan.crop.rect
            overlap = iou((rect.x, rect.y, rect.w, rect.h), case["human"]["rect"])
            scored += 1
            agree += overlap >= IOU_AGREES
            rows.append(f"  {case['path']} {width}x{height}: IoU {overlap:.2f}")
    finally:
        analyzer.close()
    print("\n".join(rows))
    share = f"{agree / scored:.1%}" if scored else "n/a"
    print(f"replayed human crops: {agree}/{scored} within IoU {IOU_AGREES} ({share})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=SHARED / "data")
    parser.add_argument("--models", type=Path, default=SHARED / "models")
    parser.add_argument("--labels", type=Path, default=LABELS)
    parser.add_argument("--out", type=Path, default=HERE / "out")
    parser.add_argument("--only", help="one image: its path under --data, or its file stem")
    parser.add_argument(
        "--split",
        choices=("all", *SPLITS),
        default="all",
        help="tuning runs use --split tuning: the held-out part stays unseen",
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--skip-timing", action="store_true", help="crops and sheets only")
    which.add_argument("--timing-only", action="store_true", help="the analysis timing only")
    parser.add_argument("--repeats", type=int, default=TIMING_REPEATS, help="timing runs")
    parser.add_argument(
        "--replay", type=Path, help="JSON of loupe feedback replay: score its crop cases only"
    )
    parser.add_argument("--root", type=Path, help="the source root of the --replay cases")
    args = parser.parse_args(argv)
    if args.replay is not None:
        if args.root is None:
            print("setup: --replay needs --root (where its sources are)", file=sys.stderr)
            return 2
        return run_replay_cases(args.replay, args.root, args.models)

    if not args.labels.is_file():
        print(f"setup: no labels at {args.labels}", file=sys.stderr)
        return 2
    images, excluded = load_labels(args.labels)
    if args.split != "all":
        images = [i for i in images if i.split == args.split]
    if args.only:
        images = [i for i in images if args.only in (i.name, Path(i.name).stem)]
        if not images:
            print(f"setup: no labelled image {args.only!r}", file=sys.stderr)
            return 2
    missing = [i.name for i in images if not (args.data / i.name).is_file()]
    if missing:
        print(f"setup: images missing under {args.data}: {', '.join(missing)}", file=sys.stderr)
        return 2
    configure_process()
    probe = Analyzer(args.models, None)
    usable = probe.faces.available and probe.saliency.available
    reasons = f"faces: {probe.faces.reason}; saliency: {probe.saliency.reason}"
    probe.close()
    if not usable:
        print(f"setup: models not usable in {args.models}: {reasons}", file=sys.stderr)
        return 2
    blobs = {i.name: (args.data / i.name).read_bytes() for i in images}
    faces = sum(len(i.faces) for i in images)
    hand = sum(f.source == "hand-added" for i in images for f in i.faces)
    print(
        f"{len(images)} labelled images, {faces} faces ({hand} hand-added); "
        f"{len(excluded)} people images left out (see faces.json)"
    )

    verdicts: list[bool] = []
    summary: dict[str, Any] = {}
    cache = Path(tempfile.mkdtemp(prefix="loupe-crops-"))
    try:
        if not args.timing_only:
            args.out.mkdir(parents=True, exist_ok=True)
            ok, summary = run_crops(images, blobs, args.models, cache, args.out)
            verdicts.append(ok)
        if not args.skip_timing:
            ok, summary["timing_ms"] = run_timing(images, blobs, args.models, args.repeats)
            verdicts.append(ok)
    finally:
        shutil.rmtree(cache, ignore_errors=True)

    partial = " (part of the goals: --skip-timing / --timing-only)" if len(verdicts) < 2 else ""
    print(f"\noverall: {'PASS' if all(verdicts) else 'FAIL'}{partial}")
    if not args.timing_only:
        (args.out / "results.json").write_text(json.dumps(summary, indent=1))
        print(f"contact sheets and results.json in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
