"""Run the detectors on one downscaled copy of a source, in parallel, and cache the
result by perceptual hash (diskcache), so other sizes and re-uploads reuse it.

Every component may be unavailable (missing model): its part stays empty and its reason
is recorded, and the pipeline degrades (``crop=smart`` falls back to attention). Saliency
costs about 0.5 s on one core: it runs at most once per source.

The cache key carries :attr:`Analyzer.identity` (the code version and the sha256 of every
model): adding, removing or upgrading a model makes the next request analyse again.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pyvips
from cachetools import LRUCache

from proxy.analysis.result import Analysis, ModelUsed, SaliencyResult
from proxy.cache.disk import open_disk_cache
from proxy.cache.shared import SharedKV
from proxy.detectors import content as content_features
from proxy.detectors import text as text_detector
from proxy.detectors.base import OnnxComponent
from proxy.detectors.content import ContentClassifier
from proxy.detectors.faces import FaceDetector
from proxy.detectors.people import person_regions
from proxy.detectors.saliency import Saliency, SaliencyDetector
from proxy.feedback.costs import CostMeter, bytes_digest, saving_of
from proxy.fingerprint import PhashMemo
from proxy.geometry import Box
from proxy.providers import CPU_ONLY

log = logging.getLogger(__name__)
T = TypeVar("T")
ANALYSIS_SIDE = 640  # the detectors' working size: enough for faces of ~2% of the width
MIN_ANALYSIS_SIDE = 512  # a cheap JPEG decode may land below ANALYSIS_SIDE, never below this
GRID_SIDE = 16
VERSION = 5  # bump when a component's output changes meaning (4: possible faces, 5: people)


def identity_of(version: int, models: Iterable[tuple[str, str | None]]) -> str:
    """A short digest of the analysis code version and each (model, sha256 or None)."""
    text = f"analysis-v{version}|" + "|".join(f"{name}={sha or '-'}" for name, sha in models)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Analyzer:
    def __init__(
        self,
        models_dir: Path,
        cache_dir: Path | None,
        fingerprint: Callable[[bytes], str] | None = None,
        workers: int = 2,
        shared: SharedKV | None = None,
        providers: Sequence[str] = CPU_ONLY,
        meter: CostMeter | None = None,
    ) -> None:
        self.meter = meter if meter is not None else CostMeter(None)  # what each model costs
        self.shared = shared  # other nodes' analyses (Redis), behind the local disk cache
        self._guard = threading.Lock()
        self._running: dict[str, threading.Lock] = {}
        # text and class found on the request path (content_of), taken by the analysis of
        # the same picture so neither runs twice; bounded, as most pictures are never analysed
        self._early: LRUCache[str, tuple[text_detector.TextResult, tuple[str, float] | None]]
        self._early = LRUCache(maxsize=256)
        self.faces = FaceDetector(models_dir, providers=providers)
        self.saliency = SaliencyDetector(models_dir, providers=providers)
        self.content = ContentClassifier(models_dir, providers=providers)
        self.fingerprint = fingerprint or PhashMemo()
        self._cache = open_disk_cache(cache_dir) if cache_dir is not None else None
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="loupe-analysis")

    @property
    def components(self) -> tuple[tuple[str, OnnxComponent], ...]:
        return (("faces", self.faces), ("saliency", self.saliency), ("content", self.content))

    @property
    def models(self) -> tuple[ModelUsed, ...]:
        """The models this analyzer runs (the loaded ones), for /meta and the cache key."""
        return tuple(
            ModelUsed(component, part.model_name, part.sha256)
            for component, part in self.components
            if part.available and part.sha256
        )

    @property
    def identity(self) -> str:
        """Code version and every model's sha256 (absent ones too): part of every key of
        what this analyzer produced, and of results rendered from it."""
        return identity_of(VERSION, ((part.model_name, part.sha256) for _, part in self.components))

    @property
    def can_place_crops(self) -> bool:
        """Faces or saliency work: smart crops have something to go on."""
        return self.faces.available or self.saliency.available

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self.shared is not None:
            self.shared.close()
        if self._cache is not None:
            self._cache.close()

    def _key(self, phash: str) -> str:
        return f"analysis:{self.identity}:{phash}"

    def _raw(self, phash: str) -> dict[str, Any] | None:
        key = self._key(phash)
        raw = self._cache.get(key) if self._cache is not None else None
        if raw is None and self.shared is not None:
            raw = self.shared.get(key)
            if isinstance(raw, dict) and self._cache is not None:
                self._cache.set(key, raw)
        return raw if isinstance(raw, dict) else None

    def cached(self, phash: str) -> Analysis | None:
        raw = self._raw(phash)
        return Analysis.from_dict(raw) if raw is not None else None

    def _would_run(self) -> tuple[str, ...]:
        """The components an analysis runs here (text needs no model)."""
        parts = [name for name, part in self.components if part.available]
        return tuple(sorted({*parts, "text"}, key=("faces", "saliency", "text", "content").index))

    def _hit(self, raw: dict[str, Any], path: str, digest: str) -> Analysis:
        """A cached analysis: every inference it holds was saved, by one cache."""
        how = saving_of(raw.get("origin"), path, digest)
        for component in self._would_run():
            self.meter.saved(component, how)
        return Analysis.from_dict(raw)

    def content_of(
        self, blob: bytes, phash: str, small: pyvips.Image | None = None
    ) -> tuple[str, float] | None:
        """The content class alone, for the request path (it picks the ``q=auto`` policy):
        the full analysis when known, else the classifier on the same analysis copy the
        lane reads, so both agree and the policy never depends on request order. ``small``:
        that copy (``analysis_copy(blob)`` in memory), when the caller decoded it already."""
        known = self.cached(phash)
        if known is not None:
            return known.content
        key = f"content:{self.identity}:{phash}"
        raw = self._cache.get(key) if self._cache is not None else None
        if isinstance(raw, list) and len(raw) == 2:
            return str(raw[0]), float(raw[1])
        if not self.content.available:
            return None
        if small is None:
            small = analysis_copy(blob).copy_memory()
        text, content = self._text_and_content(small)
        with self._guard:  # the analysis that follows (smart crop, lane) reads the same copy
            self._early[phash] = (text, content)
        if content is not None and self._cache is not None:
            self._cache.set(key, [content[0], content[1]])
        return content

    def analyse(self, blob: bytes, path: str = "") -> Analysis:
        """The analysis of a source (cached by perceptual hash). Concurrent calls for one
        picture wait for the first, so saliency runs once per source even then. ``path``
        names the source, so the cost tallies can say which cache saved a hit."""
        phash = self.fingerprint(blob)
        digest = bytes_digest(blob)
        known = self._raw(phash)
        if known is not None:
            return self._hit(known, path, digest)
        with self._guard:
            lock = self._running.setdefault(phash, threading.Lock())
        with lock:
            try:
                known = self._raw(phash)
                if known is not None:
                    return self._hit(known, path, digest)
                return self._analyse(blob, phash, (path, digest))
            finally:
                with self._guard:
                    self._running.pop(phash, None)

    def _analyse(self, blob: bytes, phash: str, origin: tuple[str, str]) -> Analysis:
        found = self._run(blob, phash)
        key = self._key(phash)
        raw = {**found.to_dict(), "origin": list(origin)}
        if self._cache is not None:
            self._cache.set(key, raw)
        if self.shared is not None:
            self.shared.set(key, raw)
        return found

    def _run(self, blob: bytes, phash: str) -> Analysis:
        header = pyvips.Image.new_from_buffer(blob, "")
        small = analysis_copy(blob, header).copy_memory()  # decoded once, read by all
        turned = "orientation" in header.get_fields() and int(header.get("orientation")) in (
            5,
            6,
            7,
            8,
        )
        width, height = (header.height, header.width) if turned else (header.width, header.height)
        scale = width / small.width  # thumbnail_buffer applied the orientation already
        faces = self._pool.submit(self._timed, "faces", self.faces, self.faces.detect_all, small)
        saliency = self._pool.submit(
            self._timed, "saliency", self.saliency, self.saliency.detect, small
        )
        with self._guard:
            early = self._early.pop(phash, None)
        text, content = early if early is not None else self._text_and_content(small)
        unavailable = {
            name: component.state for name, component in self.components if not component.available
        }
        detections = faces.result()
        salient = saliency.result()
        people = (
            person_regions(salient.mask, (small.width, small.height), detections.possible)
            if salient is not None and salient.found
            else []
        )
        return Analysis(
            phash=phash,
            width=width,
            height=height,
            faces=_scaled(detections.faces, scale),
            possible_faces=_scaled(detections.possible, scale),
            people=_scaled(people, scale),
            saliency=_saliency(salient, scale),
            text=_scaled(text.regions, scale),
            text_coverage=text.coverage,
            content=content,
            unavailable=unavailable,
            models=self.models,
            version=VERSION,
        )

    def _text_and_content(
        self, small: pyvips.Image
    ) -> tuple[text_detector.TextResult, tuple[str, float] | None]:
        """One analysis-size copy and one text search serve the text regions and the
        content features (finding text boxes is most of either's cost)."""
        with self.meter.measure("text"):
            rgb = content_features.rgb_array(small)
            grey = content_features.luma_of(rgb)
            boxes = text_detector.find_boxes(grey)
            scale = rgb.shape[1] / small.width
            text = text_detector.from_boxes(boxes, grey.shape, scale, small.width, small.height)
        if not self.content.available:
            return text, None
        with self.meter.measure("content"):
            features = content_features.features_from_rgb(rgb, boxes)
            probabilities = self.content.probabilities_from_features(features)
        if not probabilities:  # the model could not answer: no class (never "unknown")
            return text, None
        label = max(probabilities, key=lambda name: probabilities[name])
        return text, (label, probabilities[label])

    def _timed(self, component: str, part: OnnxComponent, run: Callable[[Any], T], arg: Any) -> T:
        """``run(arg)`` in a worker thread, tallied as one inference of a loaded model."""
        with self.meter.measure(component, counted=part.available):
            return run(arg)


def analysis_copy(blob: bytes, header: pyvips.Image | None = None) -> pyvips.Image:
    """The downscaled copy every detector reads. libvips' thumbnail never shrinks on load
    below its target, but the detectors are as good at 512 px as at 640: a large JPEG is
    decoded at 1/2, 1/4 or 1/8 (its cheapest decode, about half the cost at 1 MP) as long
    as its long side stays at least ``MIN_ANALYSIS_SIDE``. ``header``: the blob's header,
    when the caller has parsed it already."""
    if header is None:
        header = pyvips.Image.new_from_buffer(blob, "")
    if str(header.get("vips-loader")).startswith("jpegload"):
        long_side = max(header.width, header.height)
        for shrink in (8, 4, 2):
            if long_side // shrink >= MIN_ANALYSIS_SIDE:
                image = pyvips.Image.new_from_buffer(blob, "", shrink=shrink).autorot()
                if max(image.width, image.height) > ANALYSIS_SIDE:
                    image = image.thumbnail_image(ANALYSIS_SIDE, height=ANALYSIS_SIDE)
                return image
    return pyvips.Image.thumbnail_buffer(blob, ANALYSIS_SIDE, height=ANALYSIS_SIDE)


def _scaled(found: Iterable[Box], scale: float) -> tuple[Box, ...]:
    """Boxes found on the analysis copy, in source pixels (a face's landmarks dropped)."""
    return tuple(box.scaled(scale) for box in found)


def _saliency(found: Saliency | None, scale: float) -> SaliencyResult | None:
    if found is None or not found.found:
        return None
    mask = found.mask.astype(np.float32) / 255.0
    rows = np.linspace(0, mask.shape[0], min(GRID_SIDE, mask.shape[0]) + 1).astype(int)
    cols = np.linspace(0, mask.shape[1], min(GRID_SIDE, mask.shape[1]) + 1).astype(int)
    grid = [
        [float(mask[r0:r1, c0:c1].mean()) for c0, c1 in itertools.pairwise(cols)]
        for r0, r1 in itertools.pairwise(rows)
    ]
    return SaliencyResult(
        box=found.box.scaled(scale),
        mass=found.mass,
        centroid=(found.centroid[0] * scale, found.centroid[1] * scale),
        grid=tuple(tuple(row) for row in grid),
    )
