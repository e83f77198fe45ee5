"""``q=auto``: the lowest quality whose SSIMULACRA2 score meets the policy's target.

The output-size image is materialised once and serves as the lossless reference; the
predictor proposes a start, ``quality.search`` verifies it in a few probes, and the
winning probe's bytes go out as they are. An output above ``windows.SCORED_PIXELS`` is probed
on a mosaic of its tiles at full resolution (``quality.windows``) and encoded whole once, at
the quality the tiles chose: the metric's memory (about 100 bytes per pixel) and the probes'
encodes stay bounded whatever the output size. Every encode runs under the request's
deadline watchdog. Decisions are remembered by (perceptual hash,
format, size bucket, policy), so other sizes and refetches skip the search. If the metric
fails, the policy's fixed quality is used and the response says so.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
import pyvips

from proxy.errors import DeadlineExceeded
from proxy.feedback.costs import CostMeter, saving_of
from proxy.params import Rect
from proxy.policies import Policy
from proxy.processing.finalize import (
    EncoderSettings,
    assemble,
    materialize,
    save,
    save_options,
)
from proxy.processing.plan import RenderPlan
from proxy.quality.decisions import QualityDecisions
from proxy.quality.features import FEATURE_NAMES, extract
from proxy.quality.predictor import QualityPredictor
from proxy.quality.search import search
from proxy.quality.windows import columns_of, score_windows

log = logging.getLogger(__name__)
# Given the lossless reference, a scorer of its encodes (``ssimulacra2.Reference``): the
# reference's half of the metric is computed once for all of the search's probes.
Metric = Callable[[pyvips.Image], Callable[[pyvips.Image], float]]


# Graphics (flat areas, hard coloured edges) suffer from chroma subsampling: there,
# sharp-YUV WebP and full-resolution JPEG chroma pay for their cost; on photos they do not.
MIN_SIDE = 8  # SSIMULACRA2 needs 8x8; smaller outputs keep the policy's fixed quality
FLAT_GRAPHICS = 0.45  # share of flat 8x8 blocks above which an image counts as graphics


def encoder_tuning(fmt: str, features: npt.NDArray[np.float32]) -> dict[str, object]:
    """Per-image encoder options that pay on this content."""
    graphics = float(features[FEATURE_NAMES.index("flat_block_fraction")]) > FLAT_GRAPHICS
    if graphics and fmt == "webp":
        return {"smart_subsample": True}
    if graphics and fmt == "jpeg":
        return {"subsample_mode": "off"}
    return {}


@dataclass(frozen=True)
class QualityTools:
    metric: Metric
    predictor: QualityPredictor
    decisions: QualityDecisions
    policies: Mapping[str, Policy]
    encoder: EncoderSettings
    meter: CostMeter | None = None  # q=auto searches run and saved (feedback.costs)


def mosaic(image: pyvips.Image, windows: tuple[Rect, ...]) -> pyvips.Image:
    """The ``windows`` of ``image`` joined into one (the image itself when one covers it)."""
    if len(windows) == 1 and (windows[0].w, windows[0].h) == (image.width, image.height):
        return image
    tiles = [image.crop(w.x, w.y, w.w, w.h) for w in windows]
    return pyvips.Image.arrayjoin(tiles, across=columns_of(windows))


def compress(
    frame: pyvips.Image, plan: RenderPlan, tools: QualityTools | None
) -> tuple[pyvips.Image, RenderPlan]:
    if tools is None or not plan.quality_auto or plan.body is not None:
        return frame, plan
    policy = tools.policies[plan.policy]
    if not policy.lossy or policy.target is None:
        return frame, plan
    if frame.width < MIN_SIDE or frame.height < MIN_SIDE:
        return frame, replace(plan, notes=(*plan.notes, "too-small-to-measure"))
    reference = materialize(assemble([frame], plan), tools.encoder, plan.deadline)
    suffix, _ = save_options(plan, tools.encoder)
    # A large output is probed on its tiles (encoded and scored at full resolution, a few
    # MP in all) and encoded whole once, at the quality they chose.
    windows = score_windows(reference.width, reference.height)
    whole = len(windows) == 1
    sample = (
        reference
        if whole
        else materialize(mosaic(reference, windows), tools.encoder, plan.deadline)
    )
    try:
        features: npt.NDArray[np.float32] | None = extract(reference)
    except Exception:  # features only tune and start the search; never fail on them
        log.exception("q=auto features failed")
        features = None
    tuning = encoder_tuning(plan.format, features) if features is not None else {}

    pixels = reference.width * reference.height

    def encode_at(image: pyvips.Image, quality: int) -> bytes:
        # Tiles and the whole at the same effort: the one the whole image gets.
        _, options = save_options(plan, tools.encoder, quality, pixels)
        return save(image, suffix, {**options, **tuning}, tools.encoder, plan.deadline)

    key = (
        tools.decisions.key(plan.phash, plan.format, pixels, plan.policy, tools.predictor.identity)
        if plan.phash
        else None
    )
    found = tools.decisions.lookup(key) if key else None
    if found is not None:
        remembered, origin = found
        if tools.meter is not None:
            tools.meter.saved("quality", saving_of(origin, *plan.origin))
        body = encode_at(reference, remembered)
        return reference, replace(plan, quality=remembered, encodes=0, body=body)
    notes = list(plan.notes)
    wall, cpu = time.perf_counter(), time.thread_time()  # one search: the metric and probes
    try:
        start = (
            tools.predictor.predict(features, plan.format, policy.target)
            if features is not None
            else None
        )
        if start is None:
            notes.append("predictor-unavailable")
            start = policy.quality_for(plan.format)

        measure = tools.metric(sample)

        def score(body: bytes) -> float:
            return measure(pyvips.Image.new_from_buffer(body, ""))

        probe_seconds: list[float] = []

        def probe(quality: int) -> bytes:
            began = time.monotonic()
            body = encode_at(sample, quality)
            probe_seconds.append(time.monotonic() - began)
            return body

        result = search(
            probe,
            score,
            target=policy.target,
            floor=policy.min_quality or 1,
            start=start,
        )
        if tools.meter is not None:
            spent = (time.perf_counter() - wall, time.thread_time() - cpu)
            tools.meter.ran("quality", *spent)
    except DeadlineExceeded:
        raise  # the request is over: no fallback encode either
    except Exception:  # the metric is not allowed to fail a request
        log.exception("q=auto failed; using the policy's fixed quality")
        notes.append("quality-fallback:metric-failed")
        return reference, replace(plan, notes=tuple(notes))
    if not result.met_target:
        notes.append("target-unreached")
    if not whole:
        # libwebp and libjpeg cannot be stopped once they hold the whole image: an encode
        # that cannot end before the deadline is not started (the tiles timed the encoder).
        per_pixel = min(probe_seconds) / max(1, sample.width * sample.height)
        if time.monotonic() + per_pixel * pixels > plan.deadline:
            raise DeadlineExceeded("the whole-image encode cannot finish before the deadline")
    body = result.body if whole else encode_at(reference, result.quality)
    chosen = replace(
        plan,
        quality=result.quality,
        score=result.score,
        encodes=result.encodes + (0 if whole else 1),
        body=body,
    )
    if policy.consider_lossless and plan.format == "webp":
        options = {"lossless": True, "effort": tools.encoder.webp_effort}
        lossless = save(sample, ".webp", options, tools.encoder, plan.deadline)
        if len(lossless) < len(result.body):  # judged on the tiles, like the quality
            if not whole:
                lossless = save(reference, ".webp", options, tools.encoder, plan.deadline)
            chosen = replace(chosen, lossless=True, quality=None, score=100.0, body=lossless)
    if key:
        tools.decisions.put(key, result.quality, plan.origin)
    return reference, replace(chosen, notes=tuple(notes))
