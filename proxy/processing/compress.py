"""``q=auto``: predicted first, measured in the lane, final once verified.

``choose_encoding`` picks the plan's encoding strategy (see ``rendered``) once, in prepare:
``fixed`` when there is nothing to choose (a URL's ``q``, no quality tools, a lossless
policy, an output too small to measure), ``predicted`` on the request path, ``searched``
in the lane. Both ``q=auto`` strategies are here.

On the request path (``PredictedEncode``, ``QualityTools.verify`` off) nothing is scored:
a verified decision for this picture, format, size bucket and policy is encoded once and is
final; without one the predictor's guess plus its learned margin is encoded once and served
*provisional*, and the lane's ``verify`` job measures it. Outputs above
``QualityTools.fixed_above_pixels`` take the policy's fixed quality in one lazy pass
(``FixedEncode``), final at once, so their cost stays that of a fixed-quality request.

The ``verify`` job (``SearchedEncode``, ``verify`` on) searches for the lowest quality
whose SSIMULACRA2 score meets the policy's target, from the first answer's quality (so the
first probe is the served answer, scored). The output-size image is materialised once as the
lossless reference; an output above ``windows.SCORED_PIXELS`` is probed on a mosaic of its
tiles at full resolution (``quality.windows``) and encoded whole once, at the quality the
tiles chose. Every encode runs under the deadline watchdog. If the metric fails, the
policy's fixed quality is used and the notes say so.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import pyvips

from proxy.errors import DeadlineExceeded
from proxy.feedback.costs import CostMeter, saving_of
from proxy.geometry import Rect
from proxy.policies import Policy
from proxy.processing.finalize import (
    EncoderSettings,
    FixedEncode,
    assemble,
    materialize,
    save,
    save_options,
)
from proxy.processing.plan import RenderPlan, Stage
from proxy.processing.rendered import EncodeJob, Encoding, Rendered
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


FIXED_ABOVE_PIXELS = 4_000_000
VERIFY_PROBES = 6  # the lane's search: narrows down further than a request could afford


@dataclass(frozen=True)
class QualityTools:
    metric: Metric
    predictor: QualityPredictor
    decisions: QualityDecisions
    policies: Mapping[str, Policy]
    encoder: EncoderSettings
    meter: CostMeter | None = None  # q=auto searches run and saved (feedback.costs)
    verify: bool = False  # measure (the lane); off: predict and serve provisional
    fixed_above_pixels: int = FIXED_ABOVE_PIXELS  # first answers above: the fixed quality
    # AVIF in a first answer only when its encode is expected within avif_first_answer_s,
    # at avif_s_per_mp (the calibration budget: the chosen effort encodes 1 MP within it).
    avif_s_per_mp: float = 0.6
    avif_first_answer_s: float = 0.05
    # Provisional WebP answers at a lower libwebp effort (the lane re-encodes at the
    # encoder's): the predicted answer costs about 0.4x the encode, scores the same.
    webp_first_answer_effort: int = 1

    def first_answer_options(self, fmt: str, options: dict[str, Any]) -> dict[str, Any]:
        """``options`` for a provisional answer: WebP at the faster first-answer effort."""
        if fmt != "webp" or options.get("lossless"):
            return options
        return {**options, "effort": min(self.webp_first_answer_effort, self.encoder.webp_effort)}


def mosaic(image: pyvips.Image, windows: tuple[Rect, ...]) -> pyvips.Image:
    """The ``windows`` of ``image`` joined into one (the image itself when one covers it)."""
    if len(windows) == 1 and (windows[0].w, windows[0].h) == (image.width, image.height):
        return image
    tiles = [image.crop(w.x, w.y, w.w, w.h) for w in windows]
    return pyvips.Image.arrayjoin(tiles, across=columns_of(windows))


def decision_key(plan: RenderPlan, tools: QualityTools, pixels: int) -> str | None:
    if not plan.phash:
        return None
    model = tools.predictor.identity
    return tools.decisions.key(plan.phash, plan.format, pixels, plan.policy.name, model)


def first_quality(
    features: npt.NDArray[np.float32] | None, plan: RenderPlan, policy: Policy, tools: QualityTools
) -> tuple[int, bool]:
    """(quality of a first answer, whether the predictor gave it): the guess plus the margin,
    never under the policy's floor."""
    assert policy.target is not None
    guess = (
        tools.predictor.first_answer(features, plan.format, policy.target)
        if features is not None
        else None
    )
    quality = guess if guess is not None else policy.quality_for(plan.format)
    return max(quality, policy.min_quality or 1), guess is not None


def choose_encoding(plan: RenderPlan, tools: QualityTools | None) -> RenderPlan:
    """The plan with its encoding strategy: ``q=auto`` of a lossy policy with a target is
    predicted (searched in the lane) when the output is large enough to measure."""
    if tools is None or not plan.quality_auto:
        return plan
    policy = plan.policy
    if not policy.lossy or policy.target is None:
        return plan
    canvas = plan.layout.canvas  # the size of the image the encoder gets
    if canvas.width < MIN_SIDE or canvas.height < MIN_SIDE:
        return replace(plan, notes=(*plan.notes, "too-small-to-measure"))
    return replace(plan, encoding="searched" if tools.verify else "predicted")


def encoding_of(plan: RenderPlan, tools: QualityTools | None) -> Encoding:
    """The strategy that ``plan.encoding`` names."""
    if plan.encoding == "fixed":
        return FixedEncode()
    assert tools is not None
    return SearchedEncode(tools) if plan.encoding == "searched" else PredictedEncode(tools)


def _features(image: pyvips.Image) -> npt.NDArray[np.float32] | None:
    try:
        return extract(image)
    except Exception:  # features only tune and predict; never fail on them
        log.exception("q=auto features failed")
        return None


@dataclass(frozen=True)
class PredictedEncode:
    """The request path (``predicted``): ``predicted``."""

    tools: QualityTools

    def encode(self, frames: list[pyvips.Image], plan: RenderPlan, job: EncodeJob) -> Rendered:
        (frame,) = frames  # q=auto is never animated
        return predicted(frame, plan, self.tools, job)


def predicted(
    frame: pyvips.Image, plan: RenderPlan, tools: QualityTools, job: EncodeJob
) -> Rendered:
    """The request path: one encode, no metric. Final when a verified decision exists."""
    policy = plan.policy
    pixels = frame.width * frame.height
    key = decision_key(plan, tools, pixels)
    known = tools.decisions.decision(key) if key else None
    stage: Stage = "final" if known is not None else "provisional"
    if known is not None and key and tools.meter is not None:
        # a verified decision answers: the search (and its verify job) is saved
        tools.meter.saved("quality", saving_of(tools.decisions.origin(key), *plan.origin))
    if pixels > tools.fixed_above_pixels:
        # Planned to fit the deadline: no materialised copy, no features; libvips streams
        # the pipeline into the encoder once, at the policy's fixed quality. That is the
        # answer for outputs this large (final: verifying it would cost a core for tens of
        # seconds per format).
        quality = max(policy.quality_for(plan.format), policy.min_quality or 1)
        return FixedEncode(quality, ("fixed-quality:large-output",)).encode([frame], plan, job)
    reference = materialize(assemble([frame], plan), tools.encoder, plan.deadline)
    features = _features(reference)
    tuning = encoder_tuning(plan.format, features) if features is not None else {}
    suffix, _ = save_options(plan, tools.encoder)
    if known is not None and known[1] is None and plan.format == "webp":
        # Verified: lossless WebP won (screenshots).
        options = {"lossless": True, "effort": tools.encoder.webp_effort}
        body = save(reference, ".webp", options, tools.encoder, plan.deadline)
        job.lap("compress")
        return Rendered(body, plan, None, True, plan.notes, "final", encodes=0)
    missing: list[str] = []
    if known is not None and known[1] is not None:
        quality, encodes = known[1], 0
    else:
        quality, from_model = first_quality(features, plan, policy, tools)
        encodes = 1
        if not from_model:
            missing.append("predictor-unavailable")
    _, encoding = save_options(plan, tools.encoder, quality, pixels)
    if stage == "provisional":
        encoding = tools.first_answer_options(plan.format, encoding)
    body = save(reference, suffix, {**encoding, **tuning}, tools.encoder, plan.deadline)
    job.lap("compress")
    return Rendered(
        body,
        plan,
        quality,
        plan.lossless,
        (*plan.notes, *missing),
        stage,
        encodes=encodes,
        features=tuple(float(x) for x in features) if features is not None else None,
    )


@dataclass(frozen=True)
class SearchedEncode:
    """The lane's ``verify`` job (``searched``): ``measured``."""

    tools: QualityTools

    def encode(self, frames: list[pyvips.Image], plan: RenderPlan, job: EncodeJob) -> Rendered:
        (frame,) = frames  # q=auto is never animated
        return measured(frame, plan, self.tools, job)


def measured(
    frame: pyvips.Image, plan: RenderPlan, tools: QualityTools, job: EncodeJob
) -> Rendered:
    """The lane (or a caller that wants the measurement): search from the first answer.
    When the metric fails, the policy's fixed quality (``FixedEncode``)."""
    policy = plan.policy
    assert policy.target is not None
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
    features = _features(reference)
    tuning = encoder_tuning(plan.format, features) if features is not None else {}

    pixels = reference.width * reference.height

    def encode_at(image: pyvips.Image, quality: int) -> bytes:
        # Tiles and the whole at the same effort: the one the whole image gets.
        _, options = save_options(plan, tools.encoder, quality, pixels)
        return save(image, suffix, {**options, **tuning}, tools.encoder, plan.deadline)

    key = decision_key(plan, tools, pixels)
    # Without a decision the served answer was provisional, at the first-answer options.
    provisional = not key or tools.decisions.decision(key) is None
    notes: list[str] = []  # the search's, after the plan's
    wall, cpu = time.perf_counter(), time.thread_time()  # one search: the metric and probes
    try:
        # The first answer's quality is probed first: its score is the served answer's.
        served, from_model = first_quality(features, plan, policy, tools)
        if not from_model:
            notes.append("predictor-unavailable")
        guess = (
            tools.predictor.predict(features, plan.format, policy.target)
            if features is not None
            else None
        )
        measure = tools.metric(sample)
        scores: dict[bytes, float] = {}

        def score(body: bytes) -> float:
            if body not in scores:
                scores[body] = measure(pyvips.Image.new_from_buffer(body, ""))
            return scores[body]

        probe_seconds: list[float] = []
        bodies: dict[int, bytes] = {}

        def probe(quality: int) -> bytes:
            if quality not in bodies:
                began = time.monotonic()
                bodies[quality] = encode_at(sample, quality)
                probe_seconds.append(time.monotonic() - began)
            return bodies[quality]

        _, searched = save_options(plan, tools.encoder, served, pixels)
        as_served = tools.first_answer_options(plan.format, searched) if provisional else searched
        extra = int(as_served != searched)
        if extra:
            # Scored as it was served: faster options than the search's (WebP's effort).
            options = {**as_served, **tuning}
            served_score = score(save(sample, suffix, options, tools.encoder, plan.deadline))
        else:
            served_score = score(probe(served))
        floor = policy.min_quality or 1
        result = search(
            probe,
            score,
            target=policy.target,
            floor=floor,
            start=guess if guess is not None else served,
            max_probes=VERIFY_PROBES,
            refine=True,
        )
        if served_score >= policy.target and (served < result.quality or not result.met_target):
            # The first answer's quality is the lowest passing one measured; the final
            # answer is its encode at the search's options, scored as such.
            body = probe(served)
            measured_score = score(body)
            if measured_score >= policy.target or measured_score > result.score:
                result = replace(result, quality=served, score=measured_score, body=body)
        result = replace(
            result, encodes=len(bodies) + extra, first_quality=served, first_score=served_score
        )
        if tools.meter is not None:
            spent = (time.perf_counter() - wall, time.thread_time() - cpu)
            tools.meter.ran("quality", *spent)
    except DeadlineExceeded:
        raise  # the request is over: no fallback encode either
    except Exception:  # the metric is not allowed to fail a request
        log.exception("q=auto failed; using the policy's fixed quality")
        notes.append("quality-fallback:metric-failed")
        return FixedEncode(notes=tuple(notes)).encode([reference], plan, job)
    if not result.met_target:
        notes.append("target-unreached")
    if not whole:
        # libwebp and libjpeg cannot be stopped once they hold the whole image: an encode
        # that cannot end before the deadline is not started (the tiles timed the encoder).
        per_pixel = min(probe_seconds) / max(1, sample.width * sample.height)
        if time.monotonic() + per_pixel * pixels > plan.deadline:
            raise DeadlineExceeded("the whole-image encode cannot finish before the deadline")
    body = result.body if whole else encode_at(reference, result.quality)
    chosen = Rendered(
        body,
        plan,
        result.quality,
        plan.lossless,
        (),  # the notes, below
        score=result.score,
        encodes=result.encodes + (0 if whole else 1),
        features=tuple(float(x) for x in features) if features is not None else None,
        first_quality=result.first_quality,
        first_score=result.first_score,
    )
    if policy.consider_lossless and plan.format == "webp":
        options = {"lossless": True, "effort": tools.encoder.webp_effort}
        lossless = save(sample, ".webp", options, tools.encoder, plan.deadline)
        if len(lossless) < len(result.body):  # judged on the tiles, like the quality
            if not whole:
                lossless = save(reference, ".webp", options, tools.encoder, plan.deadline)
            chosen = replace(chosen, lossless=True, quality=None, score=100.0, body=lossless)
    if key and plan.phash:
        # Measured (even a target no quality reaches): any size in the bucket is final now.
        tools.decisions.record(
            key,
            phash=plan.phash,
            fmt=plan.format,
            pixels=pixels,
            policy=plan.policy.name,
            model=tools.predictor.identity,
            quality=chosen.quality,
            score=chosen.score,
            origin=plan.origin,
        )
    job.lap("compress")
    return replace(chosen, notes=(*plan.notes, *notes))
