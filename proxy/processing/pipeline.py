"""The one function that renders a request, ``render``, and the pixel steps it runs.

``render`` runs, in this order (each a stage of ``Rendered.timings``):

1. ``validate``: the bytes and the header, before any pixel is decoded;
2. ``prepare``: the plan (``prepare.make_plan``: geometry, format, policy), the content
   class's policy and the first answer's format for ``q=auto``, and the plan's encoding
   strategy (``compress.choose_encoding``);
3. ``analyse``, only when a smart or faces crop needs the models;
4. ``load``: decode, shrinking on load, split into frames;
5. the pixel steps of ``STEPS``, in order, each on every frame. A step is
   ``(frame, plan) -> (frame, plan)``: it sees only the pixels and the immutable plan, and
   returns a new plan only when it decided something (``focus``, ``flatten``);
6. ``encode``: the plan's encoding strategy (``rendered``) makes the bytes; its
   timings are ``compress`` (choosing the quality), ``frames`` (an animation's frames
   materialised) and ``encode``.

QA is not a stage of ``render``: the gate (``proxy.qa.gate``) checks what ``render``
returns and, on a failure, renders again with safe settings.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import pyvips

from proxy.analysis.analyzer import Analyzer, analysis_copy
from proxy.config import LimitsConfig
from proxy.cropping.overrides import CropOverride
from proxy.errors import DamagedImage, DeadlineExceeded
from proxy.feedback.costs import bytes_digest
from proxy.fingerprint import PhashMemo
from proxy.negotiate import AcceptClass
from proxy.params import TransformParams
from proxy.policies import Policy
from proxy.processing.colorspace import colorspace
from proxy.processing.compress import QualityTools, choose_encoding, encoding_of
from proxy.processing.crop import crop
from proxy.processing.effects import effects
from proxy.processing.finalize import EncoderSettings
from proxy.processing.flatten import flatten
from proxy.processing.focus import focus
from proxy.processing.load import load
from proxy.processing.orient import orient
from proxy.processing.pad import pad
from proxy.processing.plan import RenderPlan, SourceInfo
from proxy.processing.prepare import PrepareOptions, make_plan
from proxy.processing.rendered import EncodeJob, Rendered
from proxy.processing.scale import scale
from proxy.processing.turn import turn
from proxy.processing.validate import Scanner, ValidationRules, validate

log = logging.getLogger(__name__)
Step = Callable[[pyvips.Image, RenderPlan], tuple[pyvips.Image, RenderPlan]]

# The pixel steps, in order, each run on every frame.
STEPS: tuple[tuple[str, Step], ...] = (
    ("orient", orient),
    ("turn", turn),
    ("colorspace", colorspace),
    ("focus", focus),
    ("crop", crop),
    ("scale", scale),
    ("effects", effects),
    ("pad", pad),
    ("flatten", flatten),
)


@dataclass(frozen=True)
class RenderSettings:
    limits: LimitsConfig
    policies: Mapping[str, Policy]
    encoder: EncoderSettings
    allow_svg: bool = False
    scan: Scanner | None = None
    default_policy: str = "general"
    quality: QualityTools | None = None
    analyzer: Analyzer | None = None
    fingerprint: Callable[[bytes], str] = field(default_factory=PhashMemo)


# Fits that cut a window out of the source (a crop strategy places it).
CROPPING_FITS = frozenset({"crop"})


def models_identity(params: TransformParams, settings: RenderSettings) -> str:
    """The identity (code version, sha256 of each model) of what a render of ``params`` may
    consult: the analysis for smart and faces crops and for ``q=auto`` (its content class
    picks the policy), the quality predictor for ``q=auto``. It belongs in the result's
    cache key: a result made without a model, or with an older one, is then not served once
    the model changes; the next request renders again, no purge needed."""
    parts: list[str] = []
    auto = params.quality is None
    crops = params.fit in CROPPING_FITS and params.crop in ("smart", "faces")
    if settings.analyzer is not None and (crops or auto):
        parts.append(f"analysis={settings.analyzer.identity}")
    if settings.quality is not None and auto:
        parts.append(f"quality={settings.quality.predictor.identity[:16]}")
    return ",".join(parts)


CLASS_POLICIES = {"screenshot": "screenshot", "diagram": "screenshot", "art": "art"}
CLASS_CONFIDENCE = 0.6


def _fingerprint(blob: bytes, params: TransformParams, settings: RenderSettings) -> str | None:
    """The perceptual hash, once per render, when ``q=auto`` may use it (its decisions and the
    content class are remembered by it); a lossless output has no quality to choose. A
    damaged source gets None: load reports it as such, q=auto just cannot remember."""
    if params.quality is not None or params.fm in ("png", "gif"):
        return None
    if settings.quality is None and settings.analyzer is None:
        return None
    try:
        return settings.fingerprint(blob)
    except pyvips.Error:
        return None


def _hash_and_copy(
    blob: bytes, params: TransformParams, settings: RenderSettings
) -> tuple[str | None, pyvips.Image | None]:
    """The perceptual hash and, when the classifier will need it (a source not hashed yet,
    so not classified by this process either), its analysis copy: decoded here while a
    worker thread hashes, so the two decodes of the source overlap (libvips and numpy
    release the GIL). The same hash and copy as one after the other, in less wall time."""
    analyzer, memo = settings.analyzer, settings.fingerprint
    cold = (
        params.policy is None
        and params.quality is None
        and params.fm not in ("png", "gif")
        and analyzer is not None
        and analyzer.content.available
        and isinstance(memo, PhashMemo)
        and memo.known(blob) is None
    )
    if not cold:
        return _fingerprint(blob, params, settings), None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="loupe-phash") as pool:
        hashed = pool.submit(_fingerprint, blob, params, settings)
        try:
            small = analysis_copy(blob).copy_memory()
        except pyvips.Error:
            small = None  # the classifier decodes (and reports) it itself
        return hashed.result(), small


def _policy_from_class(
    blob: bytes,
    params: TransformParams,
    phash: str | None,
    settings: RenderSettings,
    small: pyvips.Image | None = None,
) -> tuple[TransformParams, str | None]:
    """With no policy from the URL or the source's config, ``q=auto`` takes the policy of the
    content class. The classifier runs here when the lane has not classified the picture
    yet (on the same analysis copy, so both agree): the policy never depends on whether a
    size was asked for before or after the lane ran."""
    if params.policy is not None or phash is None or settings.analyzer is None:
        return params, None
    try:
        content = settings.analyzer.content_of(blob, phash, small)
    except pyvips.Error as exc:  # a damaged source: load reports it to the client
        log.warning("content classification could not decode the source: %s", _vips_message(exc))
        content = None
    except Exception:  # an AI part never fails the request: the default policy applies
        log.exception("content classification failed")
        content = None
    if content is None:
        return params, None
    label, confidence = content
    policy = CLASS_POLICIES.get(label)
    if policy is None or confidence < CLASS_CONFIDENCE or policy not in settings.policies:
        return params, None
    return replace(params, policy=policy), label  # type: ignore[arg-type]


def narrowed(accept: AcceptClass, fmt: str) -> AcceptClass:
    """The Accept class under which ``choose_format`` picks ``fmt`` (or the next leaner)."""
    if fmt == "avif":
        return accept
    if fmt == "webp":
        return AcceptClass(avif=False, webp=accept.webp)
    return AcceptClass(avif=False, webp=False)


def _first_answer_format(
    info: SourceInfo,
    params: TransformParams,
    accept: AcceptClass,
    plan: RenderPlan,
    settings: RenderSettings,
    override: CropOverride | None,
) -> tuple[RenderPlan, bool]:
    """``fm=auto`` with ``q=auto``: the format a verified decision says wins for this
    picture, size bucket, policy and Accept class; without one, the best accepted format
    that fits the request's time: AVIF only for outputs small enough to encode within
    ``avif_first_answer_s``, and JPEG (when no alpha needs keeping) above the fixed-quality
    size, whose WebP or AVIF would take several times as long (that plan is the answer for
    such sizes). Returns the plan and whether its format is settled."""
    tools = settings.quality
    assert tools is not None
    pixels = plan.layout.canvas.width * plan.layout.canvas.height
    winner = None
    if plan.phash:
        key = tools.decisions.format_key(
            plan.phash, pixels, plan.policy.name, accept.key, tools.predictor.identity
        )
        winner = tools.decisions.winner(key)
    if winner is not None:
        fmt, note = winner, None
    elif plan.format == "avif" and tools.avif_s_per_mp * pixels / 1e6 > tools.avif_first_answer_s:
        fmt, note = "webp", "avif-after-verification"
    else:
        fmt, note = plan.format, None
    large = pixels > tools.fixed_above_pixels  # a fixed quality and format: final at once
    if large and fmt in ("webp", "avif"):
        fmt, note = "jpeg", "planned-for-deadline"
    verified = winner is not None or large
    if fmt == plan.format:
        return plan, verified
    options = PrepareOptions(settings.limits, settings.default_policy)
    replanned = make_plan(info, params, narrowed(accept, fmt), settings.policies, options, override)
    if replanned.lossless and not plan.lossless:
        return plan, verified  # only PNG was left (alpha): keep the lossy format
    notes = (*plan.notes, note) if note else plan.notes
    replanned = replace(replanned, notes=notes, deadline=plan.deadline, phash=plan.phash)
    return replanned, verified


def pending_keys(
    plan: RenderPlan, accept: AcceptClass, auto_format: bool, tools: QualityTools
) -> tuple[str, ...]:
    """The decisions whose verification supersedes a provisional answer of ``plan``: its
    quality decision, and for ``fm=auto`` the format decision of its Accept class."""
    if plan.phash is None:
        return ()
    pixels = plan.layout.canvas.width * plan.layout.canvas.height
    model = tools.predictor.identity
    keys = [tools.decisions.key(plan.phash, plan.format, pixels, plan.policy.name, model)]
    if auto_format:
        keys.append(
            tools.decisions.format_key(plan.phash, pixels, plan.policy.name, accept.key, model)
        )
    return tuple(keys)


def _prepare(
    blob: bytes,
    info: SourceInfo,
    params: TransformParams,
    accept: AcceptClass,
    settings: RenderSettings,
    *,
    deadline: float,
    override: CropOverride | None,
    path: str,
) -> tuple[RenderPlan, bool]:
    """The plan (geometry, format, policy, encoding), and whether its format is settled."""
    options = PrepareOptions(settings.limits, settings.default_policy)
    # Planned before the fingerprint decodes a frame, so every size and animation budget
    # refuses from the header alone; a class policy re-plans below (it only ever picks
    # lossy policies, which change neither the geometry nor the animation).
    plan = replace(
        make_plan(info, params, accept, settings.policies, options, override), deadline=deadline
    )
    phash, small = _hash_and_copy(blob, params, settings)
    params, classed = _policy_from_class(blob, params, phash, settings, small)
    if classed:
        plan = make_plan(info, params, accept, settings.policies, options, override)
        notes = (*plan.notes, f"policy-from-class:{classed}")
        plan = replace(plan, notes=notes, deadline=deadline)
    if plan.quality_auto and settings.quality is not None and phash is not None:
        # the cost tallies say which cache a remembered decision saved (see feedback.costs)
        origin = (path, bytes_digest(blob))
        plan = replace(plan, phash=phash, origin=origin)
    format_verified = True
    if plan.quality_auto and params.fm == "auto" and settings.quality is not None:
        plan, format_verified = _first_answer_format(info, params, accept, plan, settings, override)
    return choose_encoding(plan, settings.quality), format_verified


def _vips_message(exc: pyvips.Error) -> str:
    """libvips' distinct lines on one line, cut short: it repeats one per tile."""
    lines = dict.fromkeys(line.strip() for line in str(exc).splitlines() if line.strip())
    return "; ".join(lines)[:240] or type(exc).__name__


def _wants_analysis(plan: RenderPlan, settings: RenderSettings) -> bool:
    """A smart or faces crop has a window to place, and the models can place it."""
    analyzer = settings.analyzer
    wanted = plan.layout.needs_window and plan.crop_strategy in ("smart", "faces")
    return analyzer is not None and analyzer.can_place_crops and wanted


def _analyse(blob: bytes, plan: RenderPlan, settings: RenderSettings, path: str) -> RenderPlan:
    """The plan with what the models saw (in the turned picture's coordinates)."""
    assert settings.analyzer is not None
    try:
        analysis = settings.analyzer.analyse(blob, path).turned(plan.rotate, plan.flip)
        return replace(plan, analysis=analysis)
    except pyvips.Error as exc:  # a damaged source: load reports it to the client
        log.warning("analysis could not decode the source: %s", _vips_message(exc))
        return plan
    except Exception:  # an AI part never fails the request: focus falls back
        log.exception("analysis failed; the crop falls back to attention")
        return plan


def render(
    blob: bytes,
    params: TransformParams,
    accept: AcceptClass,
    settings: RenderSettings,
    *,
    deadline: float,
    override: CropOverride | None = None,
    path: str = "",
) -> Rendered:
    """Run the whole pipeline for one source and one request (in a worker thread), in the
    order the module docstring lists; each stage's seconds are in ``Rendered.timings``.
    ``override`` is the human crop that applies to this request's aspect and context."""
    timings: list[tuple[str, float]] = []
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings.append((stage, now - clock))
        clock = now
        if time.monotonic() > deadline:
            raise DeadlineExceeded(f"processing passed the request deadline during {stage}")

    info, header = validate(
        blob, ValidationRules(settings.limits, settings.allow_svg, settings.scan)
    )
    lap("validate")
    plan, format_verified = _prepare(
        blob, info, params, accept, settings, deadline=deadline, override=override, path=path
    )
    lap("prepare")
    if _wants_analysis(plan, settings):
        plan = _analyse(blob, plan, settings, path)
        lap("analyse")
    frames, plan, animation = load(blob, plan, header)
    lap("load")
    try:
        for name, step in STEPS:
            done = []
            for frame in frames:
                frame, plan = step(frame, plan)
                done.append(frame)
            frames = done
            lap(name)
        job = EncodeJob(settings.encoder, deadline, lap, animation.delays, animation.loop)
        rendered = encoding_of(plan, settings.quality).encode(frames, plan, job)
    except pyvips.Error as exc:
        raise DamagedImage(f"cannot process the image: {str(exc).splitlines()[0]}") from None
    if not format_verified and rendered.stage == "final":
        rendered = replace(rendered, stage="provisional")  # a better format may still win
    lap("encode")
    return replace(rendered, timings=tuple(timings))
