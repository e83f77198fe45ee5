#!/usr/bin/env python3
"""Train the ``q=auto`` quality predictor: content features -> the lowest quality that meets
a SSIMULACRA2 target, per format.

    python3 models/quality/train.py                 # full run (labels cached, ~10 min cold)
    python3 models/quality/train.py --smoke --out /tmp/q.onnx   # tiny run, ~20 s
    python3 models/quality/train.py --limit 20 --sizes 320,800 --jobs 2

What it does, in order:

1. **Images**: ``../shared/data`` (or ``$LOUPE_SHARED_DIR/data``, or ``--data``), the
   kodak, wikipedia, skimage, icinfo and generated collections; SVG, animated and tiny
   (< 64 px) sources are left out. Derived copies (``generated/*kodim07*``, the upscaled
   flower) are grouped with their original, so the held-out split never sees a twin.
2. **References**: each image at each output width (``pyvips.Image.thumbnail``, never
   upscaled), brought to 8-bit sRGB like ``proxy.processing.colorspace`` and tagged like
   ``finalize.assemble``: the lossless image ``compress`` scores against. JPEG gets
   the alpha flattened over white, as the pipeline does; WebP and AVIF keep it.
3. **Labels**: for each format and each target in {75, 80, 85}, the minimal quality whose
   SSIMULACRA2 (``proxy.quality.ssimulacra2.score``) reaches the target, by binary search
   over 1..100 with the encoder settings of ``finalize.save_options`` (AVIF at a fixed
   effort, 2 by default). Probes are memoised per (image, size, format); scores are only
   near-monotonic in the quality, so after the binary search a few qualities below the
   answer are probed too and the lowest passing one wins. A target even q=100 misses is
   labelled 100 and counted.
4. **Model**: a small scikit-learn regressor on ``features.model_input`` rows, trained on
   the training images only (the split is by image group, not by row), exported with
   skl2onnx (float input ``input``, shape [None, n]) and checked against onnxruntime.
5. **Evaluation** on the held-out images: MAE in quality steps, and how often the predicted
   quality (and the predicted + 2) really meets the target, measured by encoding and
   scoring, plus the encodes that ``proxy.quality.search`` needs from the prediction.

The labelling is the expensive part and is cached per (image, size) under ``--cache-dir``
(default: ``$TMPDIR/loupe-quality-dataset``); re-training reads the cache and takes seconds.
``--refresh`` relabels (needed if the metric or the encoders change what they produce).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pyvips

HERE = Path(__file__).resolve().parent
# Train this checkout's code (and the shared corpus helpers), whatever is installed.
sys.path[:0] = [str(HERE.parents[1]), str(HERE.parent)]

from corpus import group_of, progress, shared_data_dir  # noqa: E402

from proxy.processing.avif_effort import AvifEffort  # noqa: E402
from proxy.processing.colorspace import _to_srgb  # noqa: E402
from proxy.processing.finalize import EncoderSettings, save_options, srgb_profile  # noqa: E402
from proxy.quality import features as features_module  # noqa: E402
from proxy.quality import ssimulacra2  # noqa: E402
from proxy.quality.features import FEATURE_NAMES, extract, model_input  # noqa: E402
from proxy.quality.search import search  # noqa: E402

REPO = HERE.parents[1]
DEFAULT_OUT = HERE / "quality_predictor.onnx"
COLLECTIONS = ("kodak", "wikipedia", "skimage", "icinfo", "generated")
EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff")
FORMATS = ("jpeg", "webp", "avif")
TARGETS = (75.0, 80.0, 85.0)
DEFAULT_SIZES = (320, 480, 800)
MIN_SIDE = 64  # sources smaller than this are "tiny" and left out
LOOK_BELOW = 2  # qualities probed below the binary search's answer (non-monotonic curves)
HOLDOUT_EVERY = 5  # one image group in five (per collection) is held out
LABEL_VERSION = 1  # bump when the labelling procedure changes
SMOKE_IMAGES = (
    "kodak/kodim03.png",
    "kodak/kodim08.png",
    "skimage/camera.png",
    "generated/screenshot_ui.png",
    "wikipedia/001.png",
)
SMOKE_HOLDOUT = ("kodak/kodim08", "generated/screenshot_ui")


# --------------------------------------------------------------------------------------
# Progress: tqdm when installed, plain lines otherwise.


# --------------------------------------------------------------------------------------
# Images and tasks.


@dataclass(frozen=True)
class Task:
    path: str  # relative to the data folder, e.g. "kodak/kodim01.png"
    width: int  # requested output width (the thumbnail never upscales)
    out_width: int  # the width it really gets


def oriented_size(path: Path) -> tuple[int, int, int]:
    """(width, height, pages) from the header, EXIF orientation applied."""
    image = pyvips.Image.new_from_file(str(path))
    width, height = image.width, image.height
    orientation = image.get("orientation") if image.get_typeof("orientation") else 1
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    pages = image.get("n-pages") if image.get_typeof("n-pages") else 1
    return width, height, pages


def find_images(data: Path, limit: int | None, only: Sequence[str] = ()) -> list[str]:
    """Eligible images, interleaved across collections (so ``--limit`` keeps variety)."""
    per_collection: list[list[str]] = []
    for collection in COLLECTIONS:
        found = []
        for path in sorted((data / collection).glob("*")):
            relative = f"{collection}/{path.name}"
            if path.suffix.lower() not in EXTENSIONS or (only and relative not in only):
                continue
            try:
                width, height, pages = oriented_size(path)
            except pyvips.Error:
                continue
            if pages > 1 or min(width, height) < MIN_SIDE:
                continue  # animated or tiny
            found.append(relative)
        per_collection.append(found)
    ordered = [name for row in itertools.zip_longest(*per_collection) for name in row if name]
    return ordered[:limit] if limit else ordered


def make_tasks(data: Path, images: Sequence[str], sizes: Sequence[int]) -> list[Task]:
    tasks = []
    for relative in images:
        width, _height, _ = oriented_size(data / relative)
        seen = set()
        for size in sizes:
            out_width = min(size, width)
            if out_width not in seen:
                seen.add(out_width)
                tasks.append(Task(relative, size, out_width))
    return tasks


def split_groups(images: Sequence[str], smoke: bool) -> set[str]:
    """Held-out groups: every ``HOLDOUT_EVERY``-th group of each collection, in a stable
    hash order, so the split does not move when images are added elsewhere."""
    groups = sorted({group_of(name) for name in images})
    if smoke:
        return {g for g in groups if g in SMOKE_HOLDOUT}
    held: set[str] = set()
    for collection in COLLECTIONS:
        members = sorted(
            (g for g in groups if g.startswith(collection + "/")),
            key=lambda g: hashlib.sha1(g.encode()).hexdigest(),
        )
        held.update(members[2::HOLDOUT_EVERY] if len(members) > 2 else [])
    if not held and len(groups) >= 2:  # a small --limit: still hold one picture out
        held.add(max(groups, key=lambda g: hashlib.sha1(g.encode()).hexdigest()))
    return held


# --------------------------------------------------------------------------------------
# Labelling (runs in worker processes).


def encoder_settings(avif_effort: int) -> EncoderSettings:
    """Loupe's defaults (``ImagesConfig``) with a fixed AVIF effort."""
    return EncoderSettings(avif=AvifEffort.fixed(avif_effort))


def reference_image(path: Path, width: int) -> pyvips.Image:
    """The output-size image as ``compress`` sees it: 8-bit sRGB (alpha kept), sRGB-tagged."""
    image = pyvips.Image.thumbnail(str(path), width, height=10_000_000, size="down")
    image = _to_srgb(image)
    if image.bands == 2:
        image = image.colourspace("srgb")
    image = image.copy()
    if image.bands >= 3:
        image.set_type(pyvips.GValue.blob_type, "icc-profile-data", srgb_profile())
    return image.copy_memory()


def for_format(reference: pyvips.Image, fmt: str) -> pyvips.Image:
    """JPEG cannot carry alpha: the pipeline flattens it over the default white."""
    if fmt == "jpeg" and reference.hasalpha():
        flat = reference.flatten(background=[255, 255, 255]).cast("uchar").copy()
        flat.set_type(pyvips.GValue.blob_type, "icc-profile-data", srgb_profile())
        return flat.copy_memory()
    return reference


def encoder_for(image: pyvips.Image, fmt: str, encoder: EncoderSettings) -> Callable[[int], bytes]:
    plan: Any = SimpleNamespace(format=fmt, lossless=False, quality=None, progressive=False)

    def encode(quality: int) -> bytes:
        suffix, options = save_options(plan, encoder, quality)
        return bytes(image.write_to_buffer(suffix, **options))

    return encode


class Curve:
    """Memoised quality -> SSIMULACRA2 of one (image, size, format)."""

    def __init__(self, image: pyvips.Image, fmt: str, encoder: EncoderSettings) -> None:
        self.image = image
        self.encode = encoder_for(image, fmt, encoder)
        self.scores: dict[int, float] = {}
        self.sizes: dict[int, int] = {}

    def at(self, quality: int) -> float:
        if quality not in self.scores:
            body = self.encode(quality)
            decoded = pyvips.Image.new_from_buffer(body, "")
            self.scores[quality] = ssimulacra2.score(self.image, decoded)
            self.sizes[quality] = len(body)
        return self.scores[quality]

    def minimal(self, target: float, low: int = 1) -> tuple[int, bool]:
        """(lowest quality meeting ``target``, reachable). Binary search on the assumption
        of monotonicity, then a look below the answer for dips in the curve."""
        if self.at(100) < target:
            return 100, False
        low, high = max(1, low), 100  # invariant: at(high) >= target
        if self.at(low) >= target:
            high = low
        while low < high:
            middle = (low + high) // 2
            if self.at(middle) >= target:
                high = middle
            else:
                low = middle + 1
        answer = high
        while True:
            below = [q for q in range(answer - 1, max(0, answer - 1 - LOOK_BELOW), -1)
                     if self.at(q) >= target]  # fmt: skip
            if not below:
                return answer, True
            answer = min(below)


@dataclass(frozen=True)
class TaskResult:
    task: Task
    features: np.ndarray  # (n_features,)
    labels: np.ndarray  # (formats, targets) minimal quality
    reachable: np.ndarray  # (formats, targets) bool
    probes: np.ndarray  # (formats,) encodes spent
    out_size: tuple[int, int]
    seconds: float


def _features_digest() -> str:
    source = Path(features_module.__file__).read_bytes()
    return hashlib.sha1(source).hexdigest()[:16]


def _task_key(data: Path, task: Task, avif_effort: int) -> str:
    stat = (data / task.path).stat()
    encoder = encoder_settings(avif_effort)
    settings = {f.name: getattr(encoder, f.name) for f in fields(encoder) if f.name != "avif"}
    raw = json.dumps(
        [LABEL_VERSION, task.path, stat.st_size, task.out_width, FORMATS, TARGETS, avif_effort,
         LOOK_BELOW, settings],
        default=str,
    )  # fmt: skip
    return hashlib.sha1(raw.encode()).hexdigest()[:20]


def _worker_init() -> None:
    pyvips.concurrency_set(1)  # one process per core instead
    pyvips.cache_set_max(0)


def label_task(
    data: Path, task: Task, avif_effort: int, cache_dir: Path | None, refresh: bool
) -> TaskResult:
    started = time.perf_counter()
    digest = _features_digest()
    cached_file = cache_dir / f"{_task_key(data, task, avif_effort)}.npz" if cache_dir else None
    reference = reference_image(data / task.path, task.width)
    if cached_file and cached_file.is_file() and not refresh:
        with np.load(cached_file) as stored:
            feats = stored["features"]
            if str(stored["features_digest"]) != digest:
                feats = extract(reference)  # features.py changed: recompute, keep labels
            return TaskResult(
                task, feats, stored["labels"], stored["reachable"], stored["probes"],
                (reference.width, reference.height), time.perf_counter() - started,
            )  # fmt: skip
    encoder = encoder_settings(avif_effort)
    feats = extract(reference)
    labels = np.zeros((len(FORMATS), len(TARGETS)), dtype=np.int32)
    reachable = np.zeros((len(FORMATS), len(TARGETS)), dtype=bool)
    probes = np.zeros(len(FORMATS), dtype=np.int32)
    for i, fmt in enumerate(FORMATS):
        curve = Curve(for_format(reference, fmt), fmt, encoder)
        low = 1
        for j, target in enumerate(sorted(TARGETS)):
            quality, ok = curve.minimal(target, low)
            labels[i, TARGETS.index(target)] = quality
            reachable[i, TARGETS.index(target)] = ok
            # A higher target needs at least about this quality: start a little lower.
            low = max(1, quality - 10) if j < len(TARGETS) - 1 else low
        probes[i] = len(curve.scores)
    if cached_file:
        cached_file.parent.mkdir(parents=True, exist_ok=True)
        temporary = cached_file.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(
            temporary, features=feats, labels=labels, reachable=reachable, probes=probes,
            features_digest=np.array(digest),
        )  # fmt: skip
        temporary.replace(cached_file)
    return TaskResult(
        task, feats, labels, reachable, probes, (reference.width, reference.height),
        time.perf_counter() - started,
    )  # fmt: skip


def _label_star(args: tuple[Path, Task, int, Path | None, bool]) -> TaskResult:
    return label_task(*args)


def run_tasks(
    fn: Callable[[Any], Any], arguments: Sequence[Any], jobs: int, desc: str
) -> list[Any]:
    if jobs <= 1 or len(arguments) <= 1:
        _worker_init()
        return list(progress(map(fn, arguments), len(arguments), desc))
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # libvips' threads do not survive fork
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=_worker_init) as pool:
        return list(progress(pool.map(fn, arguments), len(arguments), desc))


# --------------------------------------------------------------------------------------
# Dataset rows.


@dataclass
class Dataset:
    X: np.ndarray  # (rows, model inputs)
    y: np.ndarray  # minimal quality
    reachable: np.ndarray
    image: np.ndarray  # relative path per row
    group: np.ndarray
    width: np.ndarray  # output width per row
    fmt: np.ndarray
    target: np.ndarray
    task_index: np.ndarray  # index into the task list per row


def build_rows(results: Sequence[TaskResult]) -> Dataset:
    rows: dict[str, list[Any]] = {k: [] for k in Dataset.__dataclass_fields__}
    for index, result in enumerate(results):
        for i, fmt in enumerate(FORMATS):
            for j, target in enumerate(TARGETS):
                rows["X"].append(model_input(result.features, fmt, target)[0])
                rows["y"].append(int(result.labels[i, j]))
                rows["reachable"].append(bool(result.reachable[i, j]))
                rows["image"].append(result.task.path)
                rows["group"].append(group_of(result.task.path))
                rows["width"].append(result.out_size[0])
                rows["fmt"].append(fmt)
                rows["target"].append(target)
                rows["task_index"].append(index)
    arrays = {k: np.asarray(v) for k, v in rows.items()}
    arrays["X"] = arrays["X"].astype(np.float32)
    return Dataset(**arrays)


# --------------------------------------------------------------------------------------
# Model.


def make_model(kind: str, smoke: bool) -> Any:
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.linear_model import Ridge
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "gbr":
        return GradientBoostingRegressor(
            loss="huber", n_estimators=40 if smoke else 150, max_depth=3, learning_rate=0.08,
            subsample=0.8, min_samples_leaf=5, random_state=0,
        )  # fmt: skip
    if kind == "mlp":
        return make_pipeline(
            StandardScaler(),
            MLPRegressor(hidden_layer_sizes=(32, 16), alpha=1e-3, max_iter=3000, random_state=0),
        )
    if kind == "linear":
        return make_pipeline(StandardScaler(), Ridge(alpha=1.0))
    raise SystemExit(f"unknown --model {kind!r}")


def export_onnx(model: Any, n_inputs: int, out: Path) -> bytes:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    onx = convert_sklearn(
        model, initial_types=[("input", FloatTensorType([None, n_inputs]))], target_opset=17
    )
    onx.graph.name = "loupe_quality_predictor"  # skl2onnx picks a random one: keep runs equal
    onx.doc_string = (
        "Loupe q=auto quality predictor: input = proxy.quality.features.model_input "
        f"({', '.join(FEATURE_NAMES)}, one-hot jpeg/webp/avif, target/100); "
        "output = predicted minimal quality 1-100"
    )
    blob: bytes = onx.SerializeToString()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(blob)
    return blob


def onnx_predict(path: Path, X: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {session.get_inputs()[0].name: X.astype(np.float32)})[:1]
    return np.asarray(output, dtype=np.float64).reshape(-1)


# --------------------------------------------------------------------------------------
# Measured evaluation on held-out images (worker processes).


@dataclass(frozen=True)
class EvalJob:
    data: Path
    task: Task
    avif_effort: int
    predictions: tuple[tuple[str, float, int], ...]  # (format, target, predicted quality)


def evaluate_task(job: EvalJob) -> list[tuple[str, float, int, bool, bool, int, int, bool]]:
    """Per (format, target): predicted, meets at pred, meets at pred+2, search encodes,
    search quality, search met the target."""
    reference = reference_image(job.data / job.task.path, job.task.width)
    encoder = encoder_settings(job.avif_effort)
    curves: dict[str, Curve] = {}
    out = []
    for fmt, target, predicted in job.predictions:
        if fmt not in curves:
            curves[fmt] = Curve(for_format(reference, fmt), fmt, encoder)
        curve = curves[fmt]
        hit = curve.at(predicted) >= target
        hit2 = curve.at(min(100, predicted + 2)) >= target
        result = search(
            lambda q, curve=curve: str(q).encode(),
            lambda body, curve=curve: curve.at(int(body)),
            target=target, floor=1, start=predicted,
        )  # fmt: skip
        out.append(
            (fmt, target, predicted, hit, hit2, result.encodes, result.quality, result.met_target)
        )
    return out


def measured_eval(
    data: Path,
    tasks: Sequence[Task],
    dataset: Dataset,
    test: np.ndarray,
    predicted: np.ndarray,
    args: argparse.Namespace,
) -> dict[str, float]:
    """Encode and score the held-out references at the predicted qualities, and run
    ``quality.search`` from each prediction, as ``compress`` would (floor 1)."""
    jobs, row_ids = [], []
    for index in sorted(set(dataset.task_index[test].tolist())):
        rows = np.flatnonzero(test & (dataset.task_index == index))
        preds = tuple(
            (str(dataset.fmt[r]), float(dataset.target[r]), int(predicted[r])) for r in rows
        )
        jobs.append(EvalJob(data, tasks[index], args.avif_effort, preds))
        row_ids.extend(rows.tolist())
    measured = [row for rows in run_tasks(evaluate_task, jobs, args.jobs, "evaluate")
                for row in rows]  # fmt: skip
    labels = dataset.y[row_ids]
    hits = np.array([m[3] for m in measured])
    hits2 = np.array([m[4] for m in measured])
    encodes = np.array([m[5] for m in measured])
    chosen = np.array([m[6] for m in measured])
    over = chosen - labels
    met = np.array([m[7] for m in measured])
    print(
        f"held-out, measured: predicted quality meets the target {hits.mean():.0%}, "
        f"predicted+2 {hits2.mean():.0%}"
    )
    print(
        f"quality.search from the prediction: median {np.median(encodes):.1f} encodes, "
        f"mean {encodes.mean():.2f}, 3 encodes {np.mean(encodes == 3):.0%}, target met "
        f"{met.mean():.1%}; chosen quality - minimal: mean {over.mean():+.2f}, "
        f"median {np.median(over):+.0f}"
    )
    fmts = np.array([m[0] for m in measured])
    for fmt in FORMATS:
        sel = fmts == fmt
        print(
            f"  {fmt:>5}: hit {hits[sel].mean():.0%}, +2 {hits2[sel].mean():.0%}, "
            f"encodes {encodes[sel].mean():.2f}, chosen - minimal {over[sel].mean():+.2f}"
        )
    return {
        "measured_hit": float(hits.mean()),
        "measured_hit_plus2": float(hits2.mean()),
        "search_encodes_median": float(np.median(encodes)),
        "search_encodes_mean": float(encodes.mean()),
        "search_three_encodes": float(np.mean(encodes == 3)),
        "search_overshoot_mean": float(over.mean()),
        "search_met_target": float(met.mean()),
    }


# --------------------------------------------------------------------------------------
# Main.


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="image folder (shared/data)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="ONNX file to write")
    parser.add_argument("--limit", type=int, default=None, help="use at most N images")
    parser.add_argument(
        "--sizes", default=",".join(map(str, DEFAULT_SIZES)), help="output widths, e.g. 320,800"
    )
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes")
    parser.add_argument("--avif-effort", type=int, default=2)
    parser.add_argument(
        "--model",
        default="gbr",
        choices=["gbr", "mlp", "linear"],
        help="gbr (default); HistGradientBoosting is left out: skl2onnx 1.20 fails on it",
    )
    parser.add_argument(
        "--offset",
        type=float,
        default=0.0,
        help="quality steps added to the labels: a start a little above the minimum saves "
        "the search a third probe more often than it costs bytes",
    )
    parser.add_argument(
        "--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "loupe-quality-dataset"
    )
    parser.add_argument("--no-cache", action="store_true", help="label without any cache")
    parser.add_argument("--refresh", action="store_true", help="relabel, overwrite the cache")
    parser.add_argument("--no-eval", action="store_true", help="skip the measured evaluation")
    parser.add_argument("--metrics-json", type=Path, help="also write the metrics here")
    parser.add_argument(
        "--smoke", action="store_true", help="5 images at 256 px, a few trees: ~20 s, for tests"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.sizes = "256"
        args.limit = None
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    data = (args.data or shared_data_dir()).resolve()
    if not data.is_dir():
        print(f"train: image folder {data} not found (set LOUPE_SHARED_DIR or --data)")
        return 2
    sizes = [int(s) for s in str(args.sizes).split(",") if s.strip()]
    images = find_images(data, args.limit, SMOKE_IMAGES if args.smoke else ())
    if len(images) < 2:
        print(f"train: need at least 2 images under {data}, found {len(images)}")
        return 2
    tasks = make_tasks(data, images, sizes)
    cache_dir = None if args.no_cache else args.cache_dir
    print(
        f"train: {len(images)} images x widths {sizes} = {len(tasks)} references, "
        f"{len(FORMATS)} formats x {len(TARGETS)} targets; cache: {cache_dir or 'off'}",
        flush=True,
    )
    results: list[TaskResult] = run_tasks(
        _label_star,
        [(data, task, args.avif_effort, cache_dir, args.refresh) for task in tasks],
        args.jobs,
        "label",
    )
    dataset = build_rows(results)
    probes = sum(int(r.probes.sum()) for r in results)
    unreachable = int((~dataset.reachable).sum())
    print(
        f"dataset: {len(dataset.y)} rows from {len(tasks)} references "
        f"({probes} encode+score probes this labelling; {unreachable} rows unreachable even "
        f"at q=100, labelled 100) in {time.monotonic() - started:.0f} s",
        flush=True,
    )
    if cache_dir:
        np.savez(
            cache_dir / "dataset.npz", X=dataset.X, y=dataset.y, image=dataset.image,
            fmt=dataset.fmt, target=dataset.target, width=dataset.width,
            reachable=dataset.reachable, feature_names=np.array(FEATURE_NAMES),
        )  # fmt: skip

    held_groups = split_groups(images, args.smoke)
    test = np.isin(dataset.group, sorted(held_groups))
    train = ~test
    held_images = sorted({str(x) for x in dataset.image[test]})
    print(
        f"split by image: {len(set(dataset.image[train]))} training images "
        f"({int(train.sum())} rows), {len(held_images)} held out ({int(test.sum())} rows): "
        + ", ".join(held_images)
    )
    model = make_model(args.model, args.smoke)
    model.fit(dataset.X[train], dataset.y[train] + args.offset)
    metrics: dict[str, Any] = {
        "images": len(images), "references": len(tasks), "rows": len(dataset.y),
        "train_rows": int(train.sum()), "test_rows": int(test.sum()),
        "held_out_images": held_images, "model": args.model, "sizes": sizes,
        "unreachable_rows": unreachable, "offset": args.offset,
    }  # fmt: skip

    blob = export_onnx(model, dataset.X.shape[1], args.out)
    sk = model.predict(dataset.X)
    ox = onnx_predict(args.out, dataset.X)
    gap = float(np.max(np.abs(sk - ox)))
    print(f"onnx: {args.out} ({len(blob)} bytes); max |onnxruntime - sklearn| = {gap:.2e}")
    if gap > 0.05:
        print("train: the ONNX model does not match scikit-learn")
        return 1
    metrics["onnx_bytes"] = len(blob)
    metrics["onnx_max_abs_diff"] = gap

    predicted = np.clip(np.rint(ox), 1, 100).astype(int)
    for name, mask in (("train", train), ("held-out", test)):
        if mask.any():
            mae = float(np.mean(np.abs(predicted[mask] - dataset.y[mask])))
            proxy_hit = float(np.mean(predicted[mask] >= dataset.y[mask]))
            proxy_hit2 = float(np.mean(predicted[mask] + 2 >= dataset.y[mask]))
            bias = float(np.mean(predicted[mask] - dataset.y[mask]))
            print(
                f"{name:>8}: MAE {mae:.2f} quality steps (mean error {bias:+.2f}); "
                f"pred >= label {proxy_hit:.0%}, pred+2 >= label {proxy_hit2:.0%}"
            )
            metrics[f"{name}_bias"] = bias
            metrics[f"{name}_mae"] = mae
            metrics[f"{name}_label_hit"] = proxy_hit
            metrics[f"{name}_label_hit_plus2"] = proxy_hit2
    if test.any():
        print("held-out MAE by format / target:")
        for fmt in FORMATS:
            cells = []
            for target in TARGETS:
                mask = test & (dataset.fmt == fmt) & (dataset.target == target)
                mae = float(np.mean(np.abs(predicted[mask] - dataset.y[mask])))
                metrics[f"held-out_mae_{fmt}_{int(target)}"] = mae
                cells.append(f"t{int(target)} {mae:5.2f}")
            print(f"  {fmt:>5}: " + "  ".join(cells))

    if test.any() and not args.no_eval:
        metrics.update(measured_eval(data, tasks, dataset, test, predicted, args))
    metrics["seconds"] = round(time.monotonic() - started, 1)
    if args.metrics_json:
        args.metrics_json.write_text(json.dumps(metrics, indent=2))
    print(f"done in {metrics['seconds']:.0f} s")
    return 0 if math.isfinite(gap) else 1


if __name__ == "__main__":
    sys.exit(main())
